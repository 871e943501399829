import COpenSSL

/// SHA-256 as lowercase hex, for checking the audit log's chain on the operator's side.
public func sha256Hex(_ bytes: [UInt8]) -> String {
    var out = [UInt8](repeating: 0, count: 32)
    bytes.withUnsafeBufferPointer { _ = SHA256($0.baseAddress, $0.count, &out) }
    return out.map { String(format: "%02x", $0) }.joined()
}
