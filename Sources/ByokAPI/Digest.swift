import COpenSSL

/// SHA-256 (OpenSSL's libcrypto): the one hash of fingerprints, manifests and the audit chain,
/// for the daemon and the client alike.
public enum Digest {
    public static func sha256(_ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        data.withUnsafeBufferPointer { buffer in
            if let md = sha256Method {
                guard EVP_Digest(buffer.baseAddress, buffer.count, &out, nil, md, nil) != 1 else { return }
            }
            _ = SHA256(buffer.baseAddress, buffer.count, &out)
        }
        return out
    }

    /// SHA-256 fetched from OpenSSL's providers once: `SHA256()` fetches it by name on every call
    /// (about half of hashing a wrapped key). A fetched EVP_MD is immutable and may be used from
    /// any thread (OpenSSL's crypto(7), "Performance").
    nonisolated(unsafe) private static let sha256Method: OpaquePointer? = EVP_MD_fetch(nil, "SHA256", nil)
}
