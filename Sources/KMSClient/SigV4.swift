import ByokAPI
import COpenSSL
import Foundation

/// AWS Signature Version 4 for the KMS JSON protocol (POST /, no query string), with OpenSSL's
/// SHA-256 and HMAC. Signs every header given, lower-cased and sorted, plus host and x-amz-date
/// (and x-amz-security-token with temporary credentials), as botocore does.
public struct SigV4 {
    public let credentials: AWSCredentials
    public let region: String
    public let service: String

    public init(credentials: AWSCredentials, region: String, service: String = "kms") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    static func hmac(_ key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var len: UInt32 = 0
        _ = HMAC(EVP_sha256(), key, Int32(key.count), data, data.count, &out, &len)
        return out
    }

    public static func amzDate(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        return String(format: "%04d%02d%02dT%02d%02d%02dZ", Int(tmv.tm_year) + 1900, Int(tmv.tm_mon) + 1, Int(tmv.tm_mday),
                      Int(tmv.tm_hour), Int(tmv.tm_min), Int(tmv.tm_sec))
    }

    /// The headers to send: `headers` plus Host, X-Amz-Date, X-Amz-Security-Token and Authorization.
    public func sign(host: String, path: String = "/", headers: [String: String], body: [UInt8], date: Date) -> [String: String] {
        let amz = Self.amzDate(date)
        let day = String(amz.prefix(8))
        var all = headers
        all["Host"] = host
        all["X-Amz-Date"] = amz
        if let token = credentials.sessionToken { all["X-Amz-Security-Token"] = token }
        let canonical = all.map { (key: $0.key.lowercased(), value: $0.value.trimmingCharacters(in: .whitespaces)) }
            .sorted { $0.key < $1.key }
        let signedHeaders = canonical.map(\.key).joined(separator: ";")
        let canonicalRequest = ["POST", path, "", canonical.map { "\($0.key):\($0.value)\n" }.joined(), signedHeaders,
                                Digest.sha256(body).hex].joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", amz, scope, Digest.sha256(Array(canonicalRequest.utf8)).hex].joined(separator: "\n")
        var key = Self.hmac(Array("AWS4\(credentials.secretAccessKey)".utf8), Array(day.utf8))
        key = Self.hmac(key, Array(region.utf8))
        key = Self.hmac(key, Array(service.utf8))
        key = Self.hmac(key, Array("aws4_request".utf8))
        let signature = Self.hmac(key, Array(stringToSign.utf8)).hex
        all["Authorization"] = "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyId)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        return all
    }
}
