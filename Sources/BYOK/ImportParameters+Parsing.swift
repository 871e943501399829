import ByokAPI
import Foundation

/// How an import token file is encoded, when the operator says (`--import-token-encoding`).
public enum ImportTokenEncoding: String, Sendable, CaseIterable {
    case raw, base64
}

extension ImportParameters {
    static let maxInput = 1 << 20

    /// The JSON that `aws kms get-parameters-for-import` prints: KeyId, ImportToken and PublicKey
    /// (base64), ParametersValidTo (epoch seconds or ISO 8601).
    public static func parse(awsJSON data: [UInt8]) throws -> ImportParameters {
        guard data.count <= maxInput else { throw ByokError(.paramsInvalid, "the parameters JSON is larger than 1 MiB; is this the right file?") }
        let obj: Any
        do { obj = try JSONSerialization.jsonObject(with: Data(data)) } catch {
            throw ByokError(.paramsInvalid, "the parameters file is not valid JSON; expected the output of `aws kms get-parameters-for-import`")
        }
        guard let dict = obj as? [String: Any] else {
            throw ByokError(.paramsInvalid, "the parameters JSON is not an object; expected the output of `aws kms get-parameters-for-import`")
        }
        func field(_ name: String) throws -> String {
            guard let v = dict[name] else { throw ByokError(.paramsInvalid, "the parameters JSON has no \(name); expected the output of `aws kms get-parameters-for-import`") }
            guard let s = v as? String else { throw ByokError(.paramsInvalid, "\(name) in the parameters JSON is not a string") }
            return s
        }
        let pub = try decodeBase64(try field("PublicKey"), what: "PublicKey in the parameters JSON")
        let token = try decodeBase64(try field("ImportToken"), what: "ImportToken in the parameters JSON")
        var validTo: Date?
        switch dict["ParametersValidTo"] {
        case nil, is NSNull: validTo = nil
        case let n as NSNumber: validTo = Date(timeIntervalSince1970: n.doubleValue)
        case let s as String:
            guard let d = Timestamp.parse(s) else { throw ByokError(.paramsInvalid, "ParametersValidTo \"\(s)\" is neither epoch seconds nor an ISO 8601 time") }
            validTo = d
        default: throw ByokError(.paramsInvalid, "ParametersValidTo in the parameters JSON is neither a number nor a string")
        }
        var p = ImportParameters(publicKeyDER: pub, importToken: token, kmsKeyId: dict["KeyId"] as? String, validTo: validTo, source: "AWS CLI JSON")
        if let a = dict["WrappingAlgorithm"] as? String { p.wrappingAlgorithm = WrappingAlgorithm(name: a) }
        return p
    }

    /// The console's ImportParameters.zip: `wrappingKey_<keyid>_<time>`, `importToken_<keyid>_<time>`
    /// and `README_<keyid>_<time>.txt`, from which the algorithm, specs and expiry are read.
    public static func parse(zip data: [UInt8]) throws -> ImportParameters {
        guard data.count <= maxInput else { throw ByokError(.paramsZip, "the ZIP file is larger than 1 MiB; ImportParameters.zip is a few kilobytes — is this the right file?") }
        let entries: [(path: String, bytes: [UInt8])]
        do { entries = try ZipReader.files(data) } catch let e as ZipReader.Failure {
            throw ByokError(.paramsZip, "the file is not a readable ZIP archive (\(e.reason)); expected the ImportParameters.zip the AWS console downloads")
        }
        var files: [String: [UInt8]] = [:]
        for entry in entries {
            let name = PathName.last(entry.path)
            guard name.hasPrefix("wrappingKey_") || name.hasPrefix("importToken_") || name.hasPrefix("README") else { continue }
            files[name] = entry.bytes
        }
        func one(_ prefix: String) throws -> (String, [UInt8]) {
            let hits = files.filter { $0.key.hasPrefix(prefix) }
            guard hits.count == 1, let hit = hits.first else {
                throw ByokError(.paramsZip, hits.isEmpty ? "the ZIP has no \(prefix)* file; expected the ImportParameters.zip the AWS console downloads"
                                                         : "the ZIP has several \(prefix)* files; unpack it and use --public-key and --import-token")
            }
            return hit
        }
        let (keyName, keyBytes) = try one("wrappingKey_")
        let (_, tokenBytes) = try one("importToken_")
        // The console writes both files as raw bytes: DER for the key, the token as AWS issued it.
        // They are taken as they are — a token whose bytes happen to be base64 characters is still raw.
        guard keyBytes.first == 0x30 else {
            throw ByokError(.paramsDER, "\(keyName) in the ZIP is not a DER SubjectPublicKeyInfo; the console's ImportParameters.zip holds the wrapping key as raw DER — is this the ZIP the AWS console downloaded?")
        }
        var p = ImportParameters(publicKeyDER: keyBytes, importToken: tokenBytes, source: "ImportParameters.zip")
        let parts = keyName.split(separator: "_")
        if parts.count >= 2 { p.kmsKeyId = String(parts[1]) }
        if let readme = files.first(where: { $0.key.hasPrefix("README") })?.value {
            try p.apply(readme: String(decoding: readme, as: UTF8.self))
        }
        return p
    }

    /// Reads what the console's README says: wrapping algorithm, wrapping key spec, KMS key spec,
    /// expiry. Lines are matched loosely, names by AWS's exact spelling.
    mutating func apply(readme: String) throws {
        var algorithms = Set<WrappingAlgorithm>()
        for line in readme.split(whereSeparator: \.isNewline) {
            let lower = line.lowercased()
            let words = line.split { !($0.isLetter || $0.isNumber || $0 == "_") }.map(String.init)
            algorithms.formUnion(words.compactMap { WrappingAlgorithm(rawValue: $0) })
            if lower.contains("wrapping key spec") || lower.contains("wrapping public key spec") || lower.contains("wrapping key type") {
                if let s = words.compactMap({ WrappingKeySpec(rawValue: $0) }).first { wrappingKeySpec = s }
            } else if lower.contains("key spec") || lower.contains("keyspec") {
                if let s = words.compactMap({ KeySpec(rawValue: $0) }).first { kmsKeySpec = s }
            }
            if lower.contains("key id") || lower.contains("keyid") || lower.contains("key arn") {
                if let id = words.first(where: { $0.count == 36 && $0.filter { $0 == "-" }.count == 4 }) ?? line.split(separator: " ").map(String.init).first(where: { $0.hasPrefix("arn:aws") }) {
                    kmsKeyId = id
                }
            }
            if lower.contains("expir") || lower.contains("valid") {
                if let d = Self.findTime(in: String(line)) { validTo = d }
            }
        }
        if algorithms.count > 1 {
            throw ByokError(.paramsZip, "the ZIP's README names several wrapping algorithms (\(algorithms.map(\.rawValue).sorted().joined(separator: ", "))); give the one you chose with --wrapping-algorithm")
        }
        if let a = algorithms.first { wrappingAlgorithm = a }
    }

    /// Finds an ISO 8601 time (or `YYYY-MM-DD HH:MM:SS UTC`) in a line of text.
    static func findTime(in line: String) -> Date? {
        let c = Array(line)
        var i = 0
        while i + 19 <= c.count {
            if c[i].isNumber, c[i + 4] == "-", c[i + 7] == "-" {
                var j = i + 19
                while j < c.count, c[j].isNumber || c[j] == "." || c[j] == ":" || c[j] == "+" || c[j] == "-" || c[j] == "Z" { j += 1 }
                while j > i + 19 {
                    if let d = Timestamp.parse(String(c[i..<j])) { return d }
                    j -= 1
                }
                if let d = Timestamp.parse(String(c[i..<(i + 19)])) { return d }
            }
            i += 1
        }
        return nil
    }

    /// `--public-key` and `--import-token` files: the key DER, base64 or PEM; the token raw or
    /// base64, as `tokenEncoding` says or, without it, as `decodeToken` decides.
    public static func parse(publicKey: [UInt8], importToken: [UInt8], tokenEncoding: ImportTokenEncoding? = nil) throws -> ImportParameters {
        guard publicKey.count <= maxInput, importToken.count <= maxInput else {
            throw ByokError(.paramsInvalid, "a parameters file is larger than 1 MiB; is it the right file?")
        }
        return ImportParameters(publicKeyDER: try decodeFlexible(publicKey, what: "the wrapping public key file"),
                                importToken: try decodeToken(importToken, encoding: tokenEncoding), source: "files")
    }

    /// DER as is; PEM or base64 decoded. Text that is neither is an error, not "DER".
    static func decodeFlexible(_ bytes: [UInt8], what: String) throws -> [UInt8] {
        if bytes.first == 0x30 { return bytes }
        let text = String(decoding: bytes, as: UTF8.self)
        guard bytes.allSatisfy({ $0 == 9 || $0 == 10 || $0 == 13 || (32...126).contains($0) }) else {
            throw ByokError(.paramsDER, "\(what) is neither DER nor base64 nor PEM")
        }
        if text.contains("-----BEGIN") {
            let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            guard let b = lines.firstIndex(where: { $0.hasPrefix("-----BEGIN") }),
                  let e = lines.lastIndex(where: { $0.hasPrefix("-----END") }), e > b else {
                throw ByokError(.paramsEncoding, "\(what) is PEM without a matching END line; the file looks truncated")
            }
            return try decodeBase64(lines[(b + 1)..<e].joined(), what: what)
        }
        return try decodeBase64(text, what: what)
    }

    /// The import token file (`--import-token`). AWS's ImportToken.bin (and the console's file) is
    /// raw bytes; `aws kms get-parameters-for-import --query ImportToken --output text` writes base64
    /// text ending in a newline. With `encoding` given, that decides. Without it:
    /// - a byte that is no base64 character (nor `=`, CR or LF) makes the file raw;
    /// - base64 text that ends with a newline, as tools write it, is decoded;
    /// - anything else — only base64 characters, but no final newline, or not valid base64 — could
    ///   be either a raw token whose bytes happen to be base64 characters or base64 text, and is
    ///   refused with a sentence asking which (`--import-token-encoding raw|base64`).
    static func decodeToken(_ bytes: [UInt8], encoding: ImportTokenEncoding? = nil) throws -> [UInt8] {
        switch encoding {
        case .raw?: return bytes
        case .base64?: return try decodeBase64(String(decoding: bytes, as: UTF8.self), what: "the import token file (--import-token-encoding base64)")
        case nil: break
        }
        func isBase64Character(_ b: UInt8) -> Bool { b == 43 || b == 47 || (48...57).contains(b) || (65...90).contains(b) || (97...122).contains(b) }
        guard !bytes.isEmpty, bytes.allSatisfy({ isBase64Character($0) || $0 == 61 || $0 == 10 || $0 == 13 }) else { return bytes }
        let ask = "say which with --import-token-encoding raw|base64 (AWS's ImportToken.bin is raw; `--query ImportToken --output text` writes base64)"
        let text = String(decoding: bytes, as: UTF8.self)
        guard let decoded = try? decodeBase64(text, what: "the import token") else {
            throw ByokError(.paramsEncoding, "the import token file holds only base64 characters but is not valid base64, so it is either a raw token whose bytes happen to be base64 characters or damaged base64 text; \(ask)")
        }
        guard bytes.last == 10 else {
            throw ByokError(.paramsEncoding, "the import token file holds only base64 characters and does not end with a newline, so it may be a raw token whose bytes happen to be base64 characters or base64 text; \(ask)")
        }
        return decoded
    }

    static func decodeBase64(_ s: String, what: String) throws -> [UInt8] {
        // Byte-wise: whitespace is dropped, anything else that is not base64 makes it invalid.
        var compact = [UInt8]()
        compact.reserveCapacity(s.utf8.count)
        for b in s.utf8 where b != 32 && b != 10 && b != 13 && b != 9 { compact.append(b) }
        guard !compact.isEmpty else { throw ByokError(.paramsEncoding, "\(what) is empty") }
        guard let d = Data(base64Encoded: Data(compact)) else {
            throw ByokError(.paramsEncoding, "\(what) is not valid base64 (broken or truncated); copy it again from AWS")
        }
        return [UInt8](d)
    }
}
