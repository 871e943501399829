import ByokAPI
import COpenSSL
import Foundation

/// Checks a hash-chained audit log and names the first broken record.
public enum AuditVerifier {
    public struct Report {
        public var records: Int
        public var head: String
        public var firstBroken: (line: Int, reason: String)?
    }

    public static func verify(_ data: Data) -> Report {
        var prev = String(repeating: "0", count: 64)
        var seq: UInt64 = 0
        var count = 0
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        for (i, raw) in lines.enumerated() {
            if raw.isEmpty && i == lines.count - 1 { break }
            let n = i + 1
            guard !raw.isEmpty, let r = try? JSONDecoder().decode(AuditRecord.self, from: Data(raw)) else {
                return Report(records: count, head: prev, firstBroken: (n, "line \(n) is not an audit record"))
            }
            if r.prev != prev {
                return Report(records: count, head: prev, firstBroken: (n, "record \(r.seq) on line \(n) does not follow the record before it (its prev hash differs): a record was altered, removed or inserted"))
            }
            if r.seq != seq + 1 {
                return Report(records: count, head: prev, firstBroken: (n, "record on line \(n) has sequence number \(r.seq), expected \(seq + 1)"))
            }
            seq = r.seq
            prev = sha256Hex(Array(raw))
            count += 1
        }
        return Report(records: count, head: prev, firstBroken: nil)
    }
}

func sha256Hex(_ bytes: [UInt8]) -> String {
    var out = [UInt8](repeating: 0, count: 32)
    bytes.withUnsafeBufferPointer { _ = SHA256($0.baseAddress, $0.count, &out) }
    return out.map { String(format: "%02x", $0) }.joined()
}
