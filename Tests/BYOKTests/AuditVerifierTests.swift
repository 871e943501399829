@testable import BYOK
@testable import ByokAPI
@testable import ByokDaemon
import Foundation
import TestSupport
import XCTest

/// The audit chain check (`AuditVerifier`), in process: an intact chain, and each way history can
/// be rewritten (edit, deletion, insertion, reordering, a damaged line) found at the right line;
/// the token MAC callback's three answers.
final class AuditVerifierTests: XCTestCase {
    static let genesis = String(repeating: "0", count: 64)

    func sha256Hex(_ b: [UInt8]) -> String { Digest.sha256(b).hex }

    /// A chain of `n` records as byokd writes it: sorted keys, `prev` the SHA-256 of the line before.
    func chain(_ n: Int, mac: ((AuditRecord) -> String?)? = nil) -> [String] {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var lines: [String] = []
        var head = Self.genesis
        for i in 1...n {
            var r = AuditRecord(time: "2026-11-29T03:08:0\(i % 10)Z", requestId: "r\(i)", operation: "keys.generate", result: "ok")
            r.seq = UInt64(i)
            r.prev = head
            r.key = .init(label: "k\(i)")
            r.mac = mac?(r)
            let line = String(decoding: try! enc.encode(r), as: UTF8.self)
            lines.append(line)
            head = sha256Hex(Array(line.utf8))
        }
        return lines
    }

    func verify(_ lines: [String], mac: ((AuditRecord) -> Bool?)? = nil) -> AuditVerifier.Report {
        AuditVerifier.verify(Data((lines.joined(separator: "\n") + "\n").utf8), mac: mac)
    }

    func testAnIntactChainVerifiesAndItsHeadIsTheLastLinesHash() throws {
        let lines = chain(5)
        let r = verify(lines)
        XCTAssertNil(r.firstBroken.map { "\($0)" })
        XCTAssertEqual(r.records, 5)
        // The head, by the openssl command: SHA-256 of the last line's bytes, without its newline.
        XCTAssertEqual(r.head, try Tools.check("openssl", ["dgst", "-sha256", "-binary"], stdin: Data(lines[4].utf8)).stdout.hex)
        let empty = AuditVerifier.verify(Data())
        XCTAssertNil(empty.firstBroken.map { "\($0)" })
        XCTAssertEqual(empty.records, 0)
        XCTAssertEqual(empty.head, Self.genesis)
        // No newline after the last line: a torn write (a crash mid-record); the whole records before it count.
        XCTAssertEqual(AuditVerifier.verify(Data(lines.joined(separator: "\n").utf8)).records, 4, "no newline after the last line")
    }

    func testAnEditedRecordIsNamedAtItsOwnLine() {
        var lines = chain(5)
        lines[2] = lines[2].replacingOccurrences(of: "\"k3\"", with: "\"kX\"")
        let r = verify(lines)
        XCTAssertEqual(r.firstBroken?.line, 3, "record 3 still names record 2, but record 4 no longer names record 3: line 3 was altered")
        XCTAssertTrue(r.firstBroken?.reason.hasPrefix("line 3 was altered") == true, "\(String(describing: r.firstBroken))")
        // The last record edited: the chain cannot tell, but its head changes (what the token MAC or a copy elsewhere pins).
        var last = chain(5)
        last[4] = last[4].replacingOccurrences(of: "\"k5\"", with: "\"kX\"")
        let l = verify(last)
        XCTAssertNil(l.firstBroken.map { "\($0)" })
        XCTAssertNotEqual(l.head, verify(chain(5)).head)
    }

    func testADeletedRecordIsFoundWhereTheGapIs() {
        var lines = chain(5)
        lines.remove(at: 1)
        XCTAssertEqual(verify(lines).firstBroken?.line, 2)
        var first = chain(5)
        first.removeFirst()
        XCTAssertEqual(verify(first).firstBroken?.line, 1, "the first record must follow the genesis hash")
    }

    func testAnInsertedRecordIsFound() {
        let lines = chain(5)
        // A copy of record 2 after itself.
        var copy = lines
        copy.insert(lines[1], at: 2)
        XCTAssertTrue([2, 3].contains(verify(copy).firstBroken?.line ?? 0), "the copy or the record it copies")
        // A forged record that follows record 2 correctly (right prev, right seq): the one after it breaks.
        var forged = lines
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var r = AuditRecord(time: "2026-11-29T03:09:00Z", requestId: "evil", operation: "wrap", result: "ok")
        r.seq = 3
        r.prev = sha256Hex(Array(lines[1].utf8))
        forged.insert(String(decoding: try! enc.encode(r), as: UTF8.self), at: 2)
        let f = verify(forged)
        XCTAssertEqual(f.firstBroken?.line, 3, "the forged record itself")
    }

    func testReorderedRecordsAreFound() {
        var lines = chain(5)
        lines.swapAt(2, 3)
        XCTAssertEqual(verify(lines).firstBroken?.line, 3)
    }

    func testASequenceGapWithAConsistentHashIsFound() {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var lines = chain(2)
        var r = AuditRecord(time: "2026-11-29T03:09:00Z", requestId: "r", operation: "status", result: "ok")
        r.seq = 7
        r.prev = sha256Hex(Array(lines[1].utf8))
        lines.append(String(decoding: try! enc.encode(r), as: UTF8.self))
        let v = verify(lines)
        XCTAssertEqual(v.firstBroken?.line, 3)
        XCTAssertTrue(v.firstBroken?.reason.hasPrefix("record on line 3 has sequence number 7, expected 3") == true, "\(String(describing: v.firstBroken))")
    }

    func testALineThatIsNoRecordIsNamed() {
        for bad in ["{not json", "", "{\"seq\": 3}", "[1,2,3]"] {
            var lines = chain(4)
            lines[2] = bad
            let r = verify(lines)
            XCTAssertEqual(r.firstBroken?.line, 3, bad)
            XCTAssertEqual(r.firstBroken?.reason, "line 3 is not an audit record", bad)
        }
    }

    func testTheTokenMACCallbackDecides() {
        // Records 1–2 written before the MAC key existed, 3–5 with a MAC.
        let lines = chain(5) { $0.seq >= 3 ? "mac-of-\($0.seq)" : nil }
        var asked: [UInt64] = []
        let ok = verify(lines) { r in asked.append(r.seq); return r.mac == "mac-of-\(r.seq)" }
        XCTAssertNil(ok.firstBroken.map { "\($0)" })
        XCTAssertEqual(ok.macVerified, 3)
        XCTAssertEqual(ok.macMissing, 2)
        XCTAssertTrue(Set([3, 4, 5]).isSubset(of: asked), "every MAC was checked: \(asked)")
        let wrong = verify(lines) { r in r.seq == 4 ? false : true }
        XCTAssertEqual(wrong.firstBroken?.line, 4)
        XCTAssertEqual(wrong.firstBroken?.reason, "record 4 on line 4 fails its token MAC: it was rewritten without the HSM's key")
        XCTAssertEqual(wrong.macVerified, 1)
        let unknown = verify(lines) { r in r.seq == 5 ? nil : true }
        XCTAssertEqual(unknown.firstBroken?.line, 5)
        XCTAssertEqual(unknown.firstBroken?.reason, "the token could not check the MAC of record 5 on line 5")
        // Without a checker the MACs are not looked at.
        XCTAssertEqual(verify(lines).macVerified, 0)
    }

    /// What byokd's AuditLog writes, the verifier reads: the chain, and the MAC input (the line
    /// without its `mac`) both sides compute.
    func testWhatTheAuditLogWritesVerifies() throws {
        let dir = TempDir("byokd-audit")
        // A stand-in for the token's HMAC: any function of the digest the log hands the token.
        @Sendable func fakeMAC(_ digest: [UInt8]) -> [UInt8] { digest.reversed() }
        var log: AuditLog! = try AuditLog(path: dir.file("audit.jsonl"), signer: { fakeMAC($0) })
        for i in 0..<3 { try log.append(AuditRecord(time: "2026-11-29T03:08:09Z", requestId: "a\(i)", operation: "status", result: "ok")) }
        try log.append([AuditRecord(time: "2026-11-29T03:08:10Z", requestId: "b", operation: "wrap", result: "ok"),
                        AuditRecord(time: "2026-11-29T03:08:11Z", requestId: "c", operation: "wrap", result: "error")])
        let data = Data(try log.contents())
        let check: (AuditRecord) -> Bool? = { r in r.mac == fakeMAC(Digest.sha256(AuditVerifier.macInput(r))).hex }
        let r = AuditVerifier.verify(data, mac: check)
        XCTAssertNil(r.firstBroken.map { "\($0)" })
        XCTAssertEqual(r.records, 5)
        XCTAssertEqual(r.macVerified, 5)
        XCTAssertEqual(r.macMissing, 0)
        let lines = data.split(separator: UInt8(ascii: "\n"))
        XCTAssertEqual(r.head, sha256Hex(Array(lines[4])))
        // The MAC input is the written line without the mac field.
        let written = String(decoding: lines[3], as: UTF8.self)
        let record = try JSONDecoder().decode(AuditRecord.self, from: Data(lines[3]))
        let field = "\"mac\":\"\(try XCTUnwrap(record.mac))\""
        let withoutMAC = written.replacingOccurrences(of: field + ",", with: "").replacingOccurrences(of: "," + field, with: "")
        XCTAssertNotEqual(withoutMAC, written)
        XCTAssertEqual(String(decoding: AuditVerifier.macInput(record), as: UTF8.self), withoutMAC)
        // A log reopened (once the first writer let go of it) continues the chain.
        log = nil
        let again = try AuditLog(path: dir.file("audit.jsonl"))
        try again.append(AuditRecord(time: "2026-11-29T03:08:12Z", requestId: "d", operation: "status", result: "ok"))
        XCTAssertEqual(AuditVerifier.verify(Data(try again.contents())).records, 6)
    }
}
