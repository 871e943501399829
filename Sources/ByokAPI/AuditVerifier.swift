import Foundation

/// Checks a hash-chained audit log and names the first broken record: the client and the daemon
/// share this one definition of "intact"; the daemon also passes `mac`, which checks a record's
/// token MAC (nil when it cannot).
public enum AuditVerifier {
    public struct Report: Sendable {
        public var records: Int
        public var head: String
        public var firstBroken: (line: Int, reason: String)?
        /// With a MAC checker: records whose MAC the token confirmed, and records that carry none.
        public var macVerified = 0
        public var macMissing = 0
    }

    /// The bytes a record's MAC covers: its line as written, without the `mac` field.
    public static func macInput(_ record: AuditRecord) -> [UInt8] {
        var r = record
        r.mac = nil
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? enc.encode(r)) ?? Data())
    }

    public static func verify(_ data: Data, mac: ((AuditRecord) -> Bool?)? = nil) -> Report {
        var report = Report(records: 0, head: String(repeating: "0", count: 64), firstBroken: nil)
        var seq: UInt64 = 0
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        for (i, raw) in lines.enumerated() {
            if raw.isEmpty && i == lines.count - 1 { break }
            let n = i + 1
            guard !raw.isEmpty, let r = try? JSONDecoder().decode(AuditRecord.self, from: Data(raw)) else {
                report.firstBroken = (n, "line \(n) is not an audit record")
                return report
            }
            if r.prev != report.head {
                report.firstBroken = (n, "record \(r.seq) on line \(n) does not follow the record before it (its prev hash differs): a record was altered, removed or inserted")
                return report
            }
            if r.seq != seq + 1 {
                report.firstBroken = (n, "record on line \(n) has sequence number \(r.seq), expected \(seq + 1)")
                return report
            }
            if let mac {
                switch (r.mac, mac(r)) {
                case (nil, _): report.macMissing += 1
                case (_, true?): report.macVerified += 1
                case (_, false?):
                    report.firstBroken = (n, "record \(r.seq) on line \(n) fails its token MAC: it was rewritten without the HSM's key")
                    return report
                case (_, nil):
                    report.firstBroken = (n, "the token could not check the MAC of record \(r.seq) on line \(n)")
                    return report
                }
            }
            seq = r.seq
            report.head = Digest.sha256(Array(raw)).hex
            report.records += 1
        }
        return report
    }
}
