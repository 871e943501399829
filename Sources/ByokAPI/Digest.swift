import COpenSSL

/// SHA-256 (OpenSSL's libcrypto): the one hash of fingerprints, manifests and the audit chain,
/// for the daemon and the client alike.
public enum Digest {
    public static func sha256(_ data: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        data.withUnsafeBufferPointer { _ = SHA256($0.baseAddress, $0.count, &out) }
        return out
    }
}
