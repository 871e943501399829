import Foundation

/// Checks a hash-chained audit log and names the first broken record: the client and the daemon
/// share this one definition of "intact"; the daemon also passes `mac`, which checks a record's
/// token MAC (nil when it cannot), and the operator may pass anchors (`SEQ:HASH` heads they kept).
///
/// What each check catches (README, "Audit log"): the chain catches an edit, removal or insertion
/// anywhere but at the end; token MACs catch a rewrite with recomputed hashes, and — once a log
/// carries MACs — a record without one that does not say why (a stripped MAC); an anchor catches
/// records removed from, or altered at, the end.
public enum AuditVerifier {
    public struct Report: Sendable {
        public var records: Int
        /// SHA-256 of the last line checked, and its `seq`.
        public var head: String
        public var seq: UInt64 = 0
        public var firstBroken: (line: Int, reason: String)?
        /// With a MAC checker: records whose MAC the token confirmed.
        public var macVerified = 0
        /// Records before the first MACed one (written before `auditMacKey` was set).
        public var macMissing = 0
        /// Records after MACs began that say the token could not sign them (`macError`).
        public var macGaps = 0
        public var firstGapLine: Int?
        /// Records after the last MACed one: only the chain, and an anchor, protect them.
        public var uncoveredTail = 0
        /// `seq`s of write-ahead records with no outcome in the log: the operation may or may not
        /// have happened (byokd stopped, or its disk filled, between the two).
        public var openIntents: [UInt64] = []

        init(head: String) { records = 0; self.head = head }
    }

    public static let genesis = String(repeating: "0", count: 64)

    /// The bytes a record's MAC covers: its line as written, without the `mac` field.
    public static func macInput(_ record: AuditRecord) -> [UInt8] {
        var r = record
        r.mac = nil
        return line(r)
    }

    /// A record as byokd writes it: JSON, keys sorted, slashes unescaped, no newline. Byte for byte
    /// what `JSONEncoder` with `[.sortedKeys, .withoutEscapingSlashes]` writes (which byokd used
    /// before, so existing logs' hashes and MACs still match), from `JSONWriter` at a fraction of
    /// its cost (`AuditRecord+JSONWriter.swift`, checked by `JSONWriterTests`).
    public static func line(_ record: AuditRecord) -> [UInt8] {
        var json = JSONWriter(capacity: 1024, escapingSlashes: false)
        record.write(to: &json)
        return json.bytes
    }

    public static func verify(_ data: Data, mac: ((AuditRecord) -> Bool?)? = nil, anchors: [AuditAnchor] = []) -> Report {
        var report = Report(head: genesis)
        let bytes = [UInt8](data)
        var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        let terminated = lines.last?.isEmpty ?? true
        if terminated && !lines.isEmpty { lines.removeLast() }
        var previous: (raw: ArraySlice<UInt8>, record: AuditRecord, macVerified: Bool)?
        var hashBefore = genesis  // of the line before `previous`, to recognise an inserted line
        var macsBegan = false
        var anchored: [UInt64: (line: Int, hash: String)] = [:]
        let wanted = Set(anchors.map(\.seq))
        var intents: [UInt64] = []
        var intentRequests: [UInt64: String] = [:]  // an intent's seq → its request id
        var closed = Set<UInt64>()
        let decoder = JSONDecoder()

        func broken(_ line: Int, _ reason: String) -> Report {
            var r = report
            r.firstBroken = (line, reason)
            return r
        }

        for (i, raw) in lines.enumerated() {
            let n = i + 1
            if i == lines.count - 1 && !terminated {
                return broken(n, "line \(n) is an incomplete record (the log does not end with a newline), as a crash in the middle of a write leaves it; byokd cuts it off, with an audit.recovered record, when it next starts")
            }
            guard !raw.isEmpty, let r = try? decoder.decode(AuditRecord.self, from: Data(raw)) else {
                return broken(n, "line \(n) is not an audit record")
            }
            guard line(r)[...] == raw else {
                return broken(n, "line \(n) is not written the way byokd writes records (a field was added, reordered or re-spaced): it was altered")
            }
            if r.prev != report.head {
                if let previous, n > 1 {
                    if r.prev == hashBefore {
                        return broken(n - 1, "line \(n - 1) was inserted: the record on line \(n) follows the line before it")
                    }
                    if r.seq > previous.record.seq + 1 {
                        return broken(n, "records \(previous.record.seq + 1)…\(r.seq - 1) are missing before line \(n): records were removed")
                    }
                    if !previous.macVerified && r.seq == previous.record.seq + 1 {
                        return broken(n - 1, "line \(n - 1) was altered: its hash is not the one record \(r.seq) on line \(n) records as its prev (unless that prev was changed instead)")
                    }
                }
                return broken(n, "record \(r.seq) on line \(n) does not follow the record before it (its prev hash differs): it was altered, or records were removed or inserted before it")
            }
            if r.seq != report.seq + 1 {
                return broken(n, "record on line \(n) has sequence number \(r.seq), expected \(report.seq + 1): it was altered, or records were removed or renumbered")
            }
            var verifiedByMac = false
            if let mac {
                if r.mac != nil {
                    switch mac(r) {
                    case true?:
                        report.macVerified += 1
                        verifiedByMac = true
                        macsBegan = true
                        report.uncoveredTail = 0
                    case false?:
                        return broken(n, "record \(r.seq) on line \(n) fails its token MAC: it was rewritten without the HSM's key")
                    case nil:
                        return broken(n, "the token could not check the MAC of record \(r.seq) on line \(n)")
                    }
                } else if r.macError != nil {
                    report.macGaps += 1
                    report.uncoveredTail += 1
                    if report.firstGapLine == nil { report.firstGapLine = n }
                } else if macsBegan {
                    return broken(n, "record \(r.seq) on line \(n) carries no MAC although the records before it do, and does not say the token could not sign it: its MAC was stripped, or it was written by someone else")
                } else {
                    report.macMissing += 1
                    report.uncoveredTail += 1
                }
            }
            if let i = r.intent {
                // An outcome names the record written ahead of it: an earlier intent of the same request.
                guard intentRequests[i] == r.requestId else {
                    return broken(n, "record \(r.seq) on line \(n) names record \(i) as written ahead of it, but record \(i) is not an intent of the same request (\(Display.escaped(r.requestId))): the outcome stands without its write-ahead record")
                }
                closed.insert(i)
            }
            if r.result == AuditEvent.intentResult {
                intents.append(r.seq)
                intentRequests[r.seq] = r.requestId
            }
            if wanted.contains(r.seq) { anchored[r.seq] = (n, Digest.sha256(Array(raw)).hex) }
            hashBefore = report.head
            report.head = Digest.sha256(Array(raw)).hex
            report.seq = r.seq
            report.records += 1
            previous = (raw, r, verifiedByMac)
        }
        report.openIntents = intents.filter { !closed.contains($0) }
        if mac != nil, report.records > 0, report.macVerified == 0 {
            return broken(1, "no record in this log carries a token MAC, so the token vouches for none of it (byokd MACs every record once auditMacKey is set, beginning with an \(AuditEvent.macKey) record): it was never MACed, or every MAC was stripped")
        }
        for a in anchors {
            guard let found = anchored[a.seq] else {
                return broken(report.records + 1, "the log has no record \(a.seq) (its last is record \(report.seq)), but the head \(a) was taken from it: records were removed from its end, or this is another log")
            }
            if found.hash != a.hash {
                return broken(found.line, "record \(a.seq) on line \(found.line) is not the record anchored by \(a): it was altered")
            }
        }
        return report
    }
}

extension AuditVerifyResponse {
    /// The daemon's answer to `POST /v1/audit/verify`, from the verifier's report.
    public init(_ report: AuditVerifier.Report) {
        self.init(intact: report.firstBroken == nil, records: report.records, head: report.head,
                  firstBrokenLine: report.firstBroken?.line, reason: report.firstBroken?.reason,
                  macVerified: report.macVerified, macMissing: report.macMissing)
        seq = report.seq
        macGaps = report.macGaps
        firstGapLine = report.firstGapLine
        uncoveredTail = report.uncoveredTail
        openIntents = report.openIntents
    }
}
