import ByokAPI
import CCurl
import Foundation

/// An error from AWS KMS or from reaching it, with the AWS error type when there is one.
public struct KMSError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable { case aws(type: String), unreachable, timeout, malformed }
    public let kind: Kind
    public let operation: String
    public let message: String
    /// The HTTP status, when KMS answered.
    public var status: Int = 0
    public var description: String { "\(operation): \(message)" }
    public var awsType: String? { if case .aws(let t) = kind { return t }; return nil }
}

/// A small client for the AWS KMS JSON protocol over HTTPS (libcurl), signed with SigV4.
/// Retries throttling and 5xx answers (and nothing else) with jittered exponential backoff.
public final class KMSClient: @unchecked Sendable {  // immutable configuration; each call makes its own curl handle
    public let config: KMSConfiguration
    public var now: () -> Date = Date.init

    public init(config: KMSConfiguration) {
        self.config = config
        _ = Self.globalInit
    }

    static let globalInit: Void = { curl_global_init(Int(CURL_GLOBAL_DEFAULT)) }()

    /// Calls `TrentService.<operation>` with a JSON body and returns the JSON answer.
    public func call(_ operation: String, _ request: [String: Any]) throws -> [String: Any] {
        let body = Array(try JSONSerialization.data(withJSONObject: request, options: [.sortedKeys]))
        var attempt = 0
        while true {
            attempt += 1
            do {
                return try once(operation, body)
            } catch let e as KMSError {
                // Throttling and 5xx answers only; never a client error, never a transport error.
                let retryable: Bool
                switch e.kind {
                case .aws(let type): retryable = e.status >= 500 || ["ThrottlingException", "Throttling", "RequestLimitExceeded"].contains(type)
                default: retryable = false
                }
                guard retryable, attempt < config.maxAttempts else { throw e }
                let base = 0.1 * pow(2, Double(attempt - 1))
                Thread.sleep(forTimeInterval: Double.random(in: 0...base))
            }
        }
    }

    private func once(_ operation: String, _ body: [UInt8]) throws -> [String: Any] {
        let url = config.endpoint
        var host = url.host ?? ""
        if let port = url.port { host += ":\(port)" }
        let path = url.path.isEmpty ? "/" : url.path
        let headers = SigV4(credentials: config.credentials, region: config.region).sign(
            host: host, path: path,
            headers: ["Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.\(operation)"],
            body: body, date: now())
        let (status, data) = try post(url: url.absoluteString, headers: headers, body: body, operation: operation)
        let json = (try? JSONSerialization.jsonObject(with: Data(data))) as? [String: Any]
        if (200..<300).contains(status) {
            guard let json else { throw KMSError(kind: .malformed, operation: operation, message: "KMS answered with something that is not JSON") }
            return json
        }
        var type = (json?["__type"] as? String) ?? (status >= 500 ? "5xx" : "HTTP\(status)")
        if let hash = type.firstIndex(of: "#") { type = String(type[type.index(after: hash)...]) }
        let message = (json?["message"] as? String) ?? (json?["Message"] as? String) ?? "HTTP \(status)"
        throw KMSError(kind: .aws(type: type), operation: operation, message: message, status: status)
    }

    private final class Sink {
        var bytes: [UInt8] = []
        let limit = 4 << 20
    }

    private func post(url: String, headers: [String: String], body: [UInt8], operation: String) throws -> (Int, [UInt8]) {
        guard let curl = curl_easy_init() else { throw KMSError(kind: .unreachable, operation: operation, message: "libcurl could not start") }
        defer { curl_easy_cleanup(curl) }
        var list: UnsafeMutablePointer<curl_slist>? = nil
        for (k, v) in headers { list = curl_slist_append(list, "\(k): \(v)") }
        list = curl_slist_append(list, "Expect:")
        defer { curl_slist_free_all(list) }
        let sink = Sink()
        let unmanaged = Unmanaged.passRetained(sink)
        defer { unmanaged.release() }
        var errbuf = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        let rc: CURLcode = url.withCString { u in
            body.withUnsafeBufferPointer { b in
                errbuf.withUnsafeMutableBufferPointer { eb in
                    _ = byok_curl_set_ptr(curl, CURLOPT_URL, u)
                    _ = byok_curl_set_long(curl, CURLOPT_POST, 1)
                    _ = byok_curl_set_ptr(curl, CURLOPT_POSTFIELDS, b.baseAddress)
                    _ = byok_curl_set_long(curl, CURLOPT_POSTFIELDSIZE, b.count)
                    _ = byok_curl_set_ptr(curl, CURLOPT_HTTPHEADER, list)
                    _ = byok_curl_set_long(curl, CURLOPT_CONNECTTIMEOUT_MS, Int(config.connectTimeout * 1000))
                    _ = byok_curl_set_long(curl, CURLOPT_TIMEOUT_MS, Int(config.totalTimeout * 1000))
                    _ = byok_curl_set_long(curl, CURLOPT_NOSIGNAL, 1)
                    _ = byok_curl_set_long(curl, CURLOPT_FOLLOWLOCATION, 0)
                    _ = byok_curl_set_ptr(curl, CURLOPT_ERRORBUFFER, eb.baseAddress)
                    _ = byok_curl_set_write(curl, { ptr, size, n, ud in
                        let sink = Unmanaged<Sink>.fromOpaque(ud!).takeUnretainedValue()
                        let count = size * n
                        guard sink.bytes.count + count <= sink.limit else { return 0 }
                        sink.bytes += UnsafeRawBufferPointer(start: ptr, count: count)
                        return count
                    }, unmanaged.toOpaque())
                    return curl_easy_perform(curl)
                }
            }
        }
        guard rc == CURLE_OK else {
            let why = String(cString: errbuf).isEmpty ? String(cString: curl_easy_strerror(rc)) : String(cString: errbuf)
            let kind: KMSError.Kind = rc == CURLE_OPERATION_TIMEDOUT ? .timeout : .unreachable
            throw KMSError(kind: kind, operation: operation, message: "cannot reach \(url): \(why)")
        }
        return (byok_curl_status(curl), sink.bytes)
    }
}

/// The KMS operations byokd uses.
extension KMSClient {
    public func createKey(spec: String, usage: String, multiRegion: Bool, description: String?, tags: [String: String]) throws -> KMSKeyInfo {
        var req: [String: Any] = ["Origin": "EXTERNAL", "KeySpec": spec, "KeyUsage": usage, "MultiRegion": multiRegion]
        if let description { req["Description"] = description }
        if !tags.isEmpty { req["Tags"] = tags.sorted { $0.key < $1.key }.map { ["TagKey": $0.key, "TagValue": $0.value] } }
        let r = try call("CreateKey", req)
        return KMSKeyInfo(keyMetadata: r["KeyMetadata"] as? [String: Any] ?? [:])
    }

    public struct ImportParametersAnswer: Sendable {
        public var keyId: String
        public var publicKey: [UInt8]
        public var importToken: [UInt8]
        public var validTo: Date?
    }

    public func getParametersForImport(keyId: String, wrappingAlgorithm: String, wrappingKeySpec: String) throws -> ImportParametersAnswer {
        let r = try call("GetParametersForImport", ["KeyId": keyId, "WrappingAlgorithm": wrappingAlgorithm, "WrappingKeySpec": wrappingKeySpec])
        guard let pk = (r["PublicKey"] as? String).flatMap({ Data(base64Encoded: $0) }),
              let tok = (r["ImportToken"] as? String).flatMap({ Data(base64Encoded: $0) }) else {
            throw KMSError(kind: .malformed, operation: "GetParametersForImport", message: "the answer lacks PublicKey or ImportToken")
        }
        var validTo: Date?
        if let n = r["ParametersValidTo"] as? NSNumber { validTo = Date(timeIntervalSince1970: n.doubleValue) }
        return ImportParametersAnswer(keyId: r["KeyId"] as? String ?? keyId, publicKey: Array(pk), importToken: Array(tok), validTo: validTo)
    }

    public func importKeyMaterial(keyId: String, encryptedKeyMaterial: [UInt8], importToken: [UInt8], validTo: Date?,
                                  importType: String? = nil, keyMaterialDescription: String? = nil) throws {
        var req: [String: Any] = ["KeyId": keyId, "EncryptedKeyMaterial": Data(encryptedKeyMaterial).base64EncodedString(),
                                  "ImportToken": Data(importToken).base64EncodedString()]
        if let validTo {
            req["ExpirationModel"] = "KEY_MATERIAL_EXPIRES"
            req["ValidTo"] = validTo.timeIntervalSince1970
        } else {
            req["ExpirationModel"] = "KEY_MATERIAL_DOES_NOT_EXPIRE"
        }
        if let importType { req["ImportType"] = importType }
        if let keyMaterialDescription { req["KeyMaterialDescription"] = keyMaterialDescription }
        _ = try call("ImportKeyMaterial", req)
    }

    /// RotateKeyOnDemand: for a key with imported material, makes the newest material imported
    /// with ImportType NEW_KEY_MATERIAL (state PENDING_ROTATION) current.
    public func rotateKeyOnDemand(keyId: String) throws {
        _ = try call("RotateKeyOnDemand", ["KeyId": keyId])
    }

    /// ListKeyRotations with IncludeKeyMaterial ALL_KEY_MATERIAL: every key material of the key,
    /// with its import and rotation state, following NextMarker.
    public func listKeyMaterials(keyId: String) throws -> [KMSKeyMaterial] {
        var out: [KMSKeyMaterial] = []
        var marker: String?
        repeat {
            var req: [String: Any] = ["KeyId": keyId, "IncludeKeyMaterial": "ALL_KEY_MATERIAL"]
            if let marker { req["Marker"] = marker }
            let r = try call("ListKeyRotations", req)
            for j in r["Rotations"] as? [[String: Any]] ?? [] {
                func time(_ k: String) -> String? { (j[k] as? NSNumber).map { Timestamp.string(Date(timeIntervalSince1970: $0.doubleValue)) } }
                out.append(KMSKeyMaterial(keyMaterialId: j["KeyMaterialId"] as? String, description: j["KeyMaterialDescription"] as? String,
                                          importState: j["ImportState"] as? String, state: j["KeyMaterialState"] as? String,
                                          expirationModel: j["ExpirationModel"] as? String, validTo: time("ValidTo"),
                                          rotationDate: time("RotationDate"), rotationType: j["RotationType"] as? String))
            }
            marker = (r["Truncated"] as? Bool) == true ? r["NextMarker"] as? String : nil
        } while marker != nil
        return out
    }

    public func describeKey(keyId: String) throws -> KMSKeyInfo {
        let r = try call("DescribeKey", ["KeyId": keyId])
        return KMSKeyInfo(keyMetadata: r["KeyMetadata"] as? [String: Any] ?? [:])
    }
}

extension KMSKeyInfo {
    /// A key as KMS's `KeyMetadata` describes it (CreateKey, DescribeKey).
    init(keyMetadata j: [String: Any]) {
        self.init(keyId: j["KeyId"] as? String ?? "", arn: j["Arn"] as? String ?? "", keyState: j["KeyState"] as? String ?? "",
                  keySpec: (j["KeySpec"] as? String) ?? (j["CustomerMasterKeySpec"] as? String), keyUsage: j["KeyUsage"] as? String,
                  origin: j["Origin"] as? String, multiRegion: j["MultiRegion"] as? Bool)
    }
}
