import ByokAPI
@testable import ByokDaemon
import Foundation
import Synchronization
import TestSupport
import XCTest

/// The audit log and its verifier, in process: what each check catches and which line it names,
/// and faults (a failed write, a failed sync) leaving only whole records. A stand-in "MAC" keyed
/// with a secret plays the token: a record's MAC is SHA-256(secret ‖ its MAC input).
final class AuditLogTests: XCTestCase {
    static let secret = Array("the token's key".utf8)
    static func mac(_ digest: [UInt8]) -> [UInt8] { Digest.sha256(secret + digest) }
    /// The verifier's MAC check with the stand-in key.
    static func check(_ r: AuditRecord) -> Bool? {
        guard let m = r.mac else { return nil }
        return m == mac(Digest.sha256(AuditVerifier.macInput(r))).hex
    }

    func record(_ n: Int, _ op: String = "keys.generate") -> AuditRecord {
        var r = AuditRecord(time: "2026-01-01T00:00:00Z", requestId: "\(n)", operation: op, result: "ok")
        r.key = .init(label: "k\(n)")
        return r
    }

    func log(_ dir: TempDir, signer: AuditLog.Signer? = { mac($0) }) throws -> AuditLog {
        try AuditLog(path: dir.file("audit.jsonl"), signer: signer)
    }

    func lines(_ dir: TempDir) throws -> [String] {
        try String(contentsOfFile: dir.file("audit.jsonl"), encoding: .utf8).split(separator: "\n").map(String.init)
    }

    func data(_ lines: [String]) -> Data { Data((lines.joined(separator: "\n") + "\n").utf8) }

    /// Recomputes every prev from line `from` on, as someone with the file but not the key would.
    func rechain(_ lines: inout [String], from: Int) throws {
        for j in max(1, from)..<lines.count {
            var r = try JSONDecoder().decode(AuditRecord.self, from: Data(lines[j].utf8))
            r.prev = Digest.sha256(Array(lines[j - 1].utf8)).hex
            lines[j] = String(decoding: AuditVerifier.line(r), as: UTF8.self)
        }
    }

    func testAnEditIsNamedAtTheLineEditedAndRemovalsAndInsertionsAreNamed() throws {
        let dir = TempDir()
        let audit = try log(dir, signer: nil)
        try audit.append((1...8).map { record($0) })
        let original = try lines(dir)
        XCTAssertNil(AuditVerifier.verify(data(original)).firstBroken)

        var edited = original
        edited[4] = edited[4].replacingOccurrences(of: "\"k5\"", with: "\"kX\"")
        XCTAssertEqual(AuditVerifier.verify(data(edited)).firstBroken?.line, 5, "line 5 was edited: line 5 is named, not line 6")

        var cut = original
        cut.removeSubrange(2...3)
        let c = AuditVerifier.verify(data(cut)).firstBroken
        XCTAssertEqual(c?.line, 3)
        XCTAssertTrue(c?.reason.contains("records 3…4 are missing") == true, c?.reason ?? "")

        var inserted = original
        inserted.insert(original[5], at: 3)
        XCTAssertEqual(AuditVerifier.verify(data(inserted)).firstBroken?.line, 4, "the inserted line is named")

        var respaced = original
        respaced[2] = respaced[2].replacingOccurrences(of: ",", with: ", ")
        XCTAssertEqual(AuditVerifier.verify(data(respaced)).firstBroken?.line, 3, "a line not as byokd writes it is an alteration")

        var torn = data(original)
        torn.append(Data("{\"op".utf8))
        let t = AuditVerifier.verify(torn).firstBroken
        XCTAssertEqual(t?.line, 9)
        XCTAssertTrue(t?.reason.contains("incomplete record") == true, t?.reason ?? "")
    }

    func testTheTailIsProtectedOnlyByAKeptHead() throws {
        let dir = TempDir()
        let audit = try log(dir, signer: nil)
        try audit.append((1...6).map { record($0) })
        let head = audit.head()
        XCTAssertEqual(head.seq, 6)
        let all = try lines(dir)
        XCTAssertEqual(head.hash, Digest.sha256(Array(all[5].utf8)).hex)
        XCTAssertNil(AuditVerifier.verify(data(all), anchors: [head]).firstBroken)

        let shortened = Array(all.prefix(3))
        XCTAssertNil(AuditVerifier.verify(data(shortened)).firstBroken, "the chain alone cannot tell that the last records are gone")
        let caught = AuditVerifier.verify(data(shortened), anchors: [head]).firstBroken
        XCTAssertNotNil(caught)
        XCTAssertTrue(caught?.reason.contains("no record 6") == true, caught?.reason ?? "")

        var lastEdited = all
        lastEdited[5] = lastEdited[5].replacingOccurrences(of: "\"k6\"", with: "\"kX\"")
        XCTAssertNil(AuditVerifier.verify(data(lastEdited)).firstBroken, "nor that the last one was edited")
        XCTAssertEqual(AuditVerifier.verify(data(lastEdited), anchors: [head]).firstBroken?.line, 6)
        XCTAssertEqual(AuditAnchor(head.description), head)
        XCTAssertNil(AuditAnchor("6:abc"))
    }

    func testOnceMACsBeganEveryRecordHasOneOrSaysWhyNot() throws {
        let dir = TempDir()
        // Two records from before a MAC key, then MACs; then the token cannot sign for two records.
        try log(dir, signer: nil).append([record(1), record(2)])
        let failing = Atomic(false)
        let audit = try log(dir, signer: { digest in
            if failing.value { throw ByokError(.tokenUnavailable, "the token was removed") }
            return Self.mac(digest)
        })
        try audit.append([record(3), record(4)])
        failing.value = true
        try audit.append([record(5), record(6)])
        failing.value = false
        try audit.append(record(7))
        let all = try lines(dir)
        let report = AuditVerifier.verify(data(all), mac: Self.check)
        XCTAssertNil(report.firstBroken?.reason)
        XCTAssertEqual(report.macVerified, 3)
        XCTAssertEqual(report.macMissing, 2, "records before the first MAC")
        XCTAssertEqual(report.macGaps, 2)
        XCTAssertEqual(report.firstGapLine, 5)
        XCTAssertEqual(report.uncoveredTail, 0)
        XCTAssertTrue(all[4].contains("the token could not sign this record"), all[4])

        // Stripping a MAC (and re-chaining) is caught, even with gaps about.
        var stripped = all
        var r = try JSONDecoder().decode(AuditRecord.self, from: Data(stripped[6].utf8))
        r.mac = nil
        stripped[6] = String(decoding: AuditVerifier.line(r), as: UTF8.self)
        XCTAssertNil(AuditVerifier.verify(data(stripped)).firstBroken, "the chain alone passes")
        let s = AuditVerifier.verify(data(stripped), mac: Self.check).firstBroken
        XCTAssertEqual(s?.line, 7)
        XCTAssertTrue(s?.reason.contains("carries no MAC") == true, s?.reason ?? "")

        // A rewrite with every MAC stripped, a record removed and renumbered, re-chained.
        var forged = all.map { line -> String in
            var r = try! JSONDecoder().decode(AuditRecord.self, from: Data(line.utf8))
            r.mac = nil
            r.macError = nil
            return String(decoding: AuditVerifier.line(r), as: UTF8.self)
        }
        forged.remove(at: 3)
        for j in 3..<forged.count {
            var r = try JSONDecoder().decode(AuditRecord.self, from: Data(forged[j].utf8))
            r.seq -= 1
            forged[j] = String(decoding: AuditVerifier.line(r), as: UTF8.self)
        }
        try rechain(&forged, from: 1)
        XCTAssertNil(AuditVerifier.verify(data(forged)).firstBroken, "the chain alone passes")
        XCTAssertNotNil(AuditVerifier.verify(data(forged), mac: Self.check).firstBroken, "no history rewrite passes with the token")

        // An edit of a MACed record is named at its own line, re-chained or not.
        var edited = all
        edited[2] = edited[2].replacingOccurrences(of: "\"k3\"", with: "\"kX\"")
        XCTAssertEqual(AuditVerifier.verify(data(edited), mac: Self.check).firstBroken?.line, 3)
        try rechain(&edited, from: 3)
        XCTAssertEqual(AuditVerifier.verify(data(edited), mac: Self.check).firstBroken?.line, 3)
    }

    func testAFailedWriteIsCutBackToTheLastWholeRecord() throws {
        let dir = TempDir()
        let audit = try log(dir)
        try audit.append([record(1), record(2)])
        let size = try FileManager.default.attributesOfItem(atPath: dir.file("audit.jsonl"))[.size] as! Int
        // The file may grow by 100 bytes only: the next record is written in part, then EFBIG.
        signal(SIGXFSZ, SIG_IGN)
        var old = rlimit()
        getrlimit(Int32(RLIMIT_FSIZE.rawValue), &old)
        var limit = rlimit(rlim_cur: rlim_t(size + 100), rlim_max: old.rlim_max)
        setrlimit(Int32(RLIMIT_FSIZE.rawValue), &limit)
        XCTAssertThrowsError(try audit.append(record(3))) { XCTAssertEqual(($0 as? ByokError)?.code, .auditLogFailed) }
        setrlimit(Int32(RLIMIT_FSIZE.rawValue), &old)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: dir.file("audit.jsonl"))[.size] as? Int, size, "the fragment is gone")
        try audit.append(record(4))
        let report = AuditVerifier.verify(data(try lines(dir)), mac: Self.check)
        XCTAssertNil(report.firstBroken?.reason)
        XCTAssertEqual(report.seq, 3, "seq continues from the last whole record")
    }

    func testAFailedSyncUndoesEverythingNotDurable() throws {
        let dir = TempDir()
        let audit = try log(dir)
        try audit.append([record(1), record(2)])
        let before = try lines(dir)
        audit.syncCall = { _ in errno = EIO; return -1 }
        XCTAssertThrowsError(try audit.append(record(3))) { XCTAssertEqual(($0 as? ByokError)?.code, .auditLogFailed) }
        XCTAssertEqual(try lines(dir), before, "what may not be on disk is cut back")
        XCTAssertEqual(audit.head().seq, 2)
        audit.syncCall = { fdatasync($0) }
        try audit.append(record(4))
        XCTAssertNil(AuditVerifier.verify(data(try lines(dir)), mac: Self.check).firstBroken?.reason)
    }

    /// The outcome of `intent` (written at `seq`), as the pipeline writes it: the same request.
    func outcome(_ intent: AuditRecord, _ seq: UInt64) -> AuditRecord {
        var r = intent
        r.intent = seq
        return r
    }

    /// A wrap's intent is written at once (a full disk stops the wrap) and made durable by its
    /// outcome's sync: one fdatasync per wrap, not two.
    func testAWrapsIntentSharesItsOutcomesSync() throws {
        let dir = TempDir()
        let audit = try log(dir)
        let syncs = Counter()
        audit.syncCall = { syncs.add(); return fdatasync($0) }
        let wrap = record(1, "wrap")
        let seq = try audit.intent(wrap, durability: .withOutcome)
        XCTAssertEqual(syncs.value, 0, "the intent is not synced on its own")
        XCTAssertEqual(try lines(dir).count, 1, "the intent is written before the token is touched")
        XCTAssertEqual(audit.head().seq, 0, "the intent is not durable yet")
        try audit.append(outcome(wrap, seq))
        XCTAssertEqual(syncs.value, 1, "one sync makes the intent and the outcome durable")
        XCTAssertEqual(audit.head().seq, 2)
        _ = try audit.intent(record(3, "keys.generate"))
        XCTAssertEqual(syncs.value, 2, "a generate's intent is durable before the token is touched")
        let report = AuditVerifier.verify(data(try lines(dir)), mac: Self.check)
        XCTAssertNil(report.firstBroken?.reason)
        XCTAssertEqual(report.openIntents, [3])
    }

    /// A failed sync between a wrap's intent and its outcome cuts the intent back; the outcome is
    /// then refused (its answer with it), although the next records take the lost intent's seq.
    func testAFailedSyncBetweenAWrapsIntentAndItsOutcomeRefusesTheOutcome() throws {
        let dir = TempDir()
        let audit = try log(dir)
        try audit.append(record(1))
        let before = try lines(dir)
        let wrap = record(2, "wrap")
        let seq = try audit.intent(wrap, durability: .withOutcome)
        XCTAssertEqual(seq, 2)
        audit.syncCall = { _ in errno = EIO; return -1 }
        XCTAssertThrowsError(try audit.append(record(3, "status")))
        audit.syncCall = { fdatasync($0) }
        XCTAssertEqual(try lines(dir), before, "the wrap's intent was cut back with the failed sync")
        // Another wrap's intent now takes seq 2, and its outcome is written.
        let other = record(4, "wrap")
        let otherSeq = try audit.intent(other, durability: .withOutcome)
        XCTAssertEqual(otherSeq, 2)
        XCTAssertThrowsError(try audit.append(outcome(wrap, seq))) {
            XCTAssertEqual(($0 as? ByokError)?.code, .auditLogFailed)
            XCTAssertTrue("\($0)".contains("lost with the failed sync"), "\($0)")
        }
        try audit.append(outcome(other, otherSeq))
        let report = AuditVerifier.verify(data(try lines(dir)), mac: Self.check)
        XCTAssertNil(report.firstBroken?.reason)
        XCTAssertEqual(report.records, 3, "record 1, the other wrap's intent and its outcome; nothing of the lost wrap")
        XCTAssertEqual(report.openIntents, [])
    }

    /// After a failed sync cut a wrap's intent back, an intent of another kind (synced before the
    /// token is touched) takes its seq: that operation's outcome is written, the lost wrap's is not.
    func testAnIntentThatTookALostIntentsSeqKeepsItsOutcome() throws {
        let dir = TempDir()
        let audit = try log(dir)
        try audit.append(record(1))
        let wrap = record(2, "wrap")
        let seq = try audit.intent(wrap, durability: .withOutcome)
        audit.syncCall = { _ in errno = EIO; return -1 }
        XCTAssertThrowsError(try audit.append(record(3, "status")))
        audit.syncCall = { fdatasync($0) }
        let generate = record(4, "keys.generate")
        let generateSeq = try audit.intent(generate)
        XCTAssertEqual(generateSeq, seq, "the generate's intent took the lost wrap intent's seq")
        try audit.append(outcome(generate, generateSeq))
        XCTAssertThrowsError(try audit.append(outcome(wrap, seq)), "the wrap's own intent is lost, whatever now stands at its seq")
        let report = AuditVerifier.verify(data(try lines(dir)), mac: Self.check)
        XCTAssertNil(report.firstBroken?.reason)
        XCTAssertEqual(report.openIntents, [])
    }

    /// A wrap intent that a good sync made durable is not lost to a later failed sync.
    func testAnIntentAnotherSyncMadeDurableSurvivesALaterFailedSync() throws {
        let dir = TempDir()
        let audit = try log(dir)
        let wrap = record(1, "wrap")
        let seq = try audit.intent(wrap, durability: .withOutcome)
        try audit.append(record(2, "status"))  // its sync makes the intent durable too
        audit.syncCall = { _ in errno = EIO; return -1 }
        XCTAssertThrowsError(try audit.append(record(3, "status")))
        audit.syncCall = { fdatasync($0) }
        try audit.append(outcome(wrap, seq))
        let report = AuditVerifier.verify(data(try lines(dir)), mac: Self.check)
        XCTAssertNil(report.firstBroken?.reason)
        XCTAssertEqual(report.openIntents, [])
    }

    /// The verifier holds an outcome to its own write-ahead record: naming another request's
    /// intent (or a record that is no intent) is an alteration, even with the chain recomputed.
    func testAnOutcomeNamingAnotherRequestsIntentIsReported() throws {
        let dir = TempDir()
        let audit = try log(dir, signer: nil)
        let generate = record(1, "keys.generate")
        let seq = try audit.intent(generate)
        try audit.append(outcome(generate, seq))
        var forged = record(3, "wrap")
        forged.intent = seq
        try audit.append(forged)
        let report = AuditVerifier.verify(data(try lines(dir)))
        XCTAssertEqual(report.firstBroken?.line, 3)
        XCTAssertTrue(report.firstBroken?.reason.contains("not an intent of the same request") == true, report.firstBroken?.reason ?? "")
    }

    func testATornTailIsCutOffAtOpenAndSaidSoAndTheChainContinues() throws {
        let dir = TempDir()
        try log(dir).append([record(1), record(2)])
        let fragment = Array("{\"key\":{\"label\":\"k3\"},\"op".utf8)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: dir.file("audit.jsonl")))
        h.seekToEndOfFile()
        h.write(Data(fragment))
        try h.close()
        let audit = try log(dir)
        try audit.recordRecovery()
        try audit.append(record(4))
        let all = try lines(dir)
        let report = AuditVerifier.verify(data(all), mac: Self.check)
        XCTAssertNil(report.firstBroken?.reason)
        XCTAssertEqual(report.seq, 4)
        let recovered = try JSONDecoder().decode(AuditRecord.self, from: Data(all[2].utf8))
        XCTAssertEqual(recovered.operation, AuditEvent.recovered)
        XCTAssertEqual(recovered.seq, 3)
        XCTAssertEqual(recovered.droppedBytes, fragment.count)
        XCTAssertEqual(recovered.droppedSha256, Digest.sha256(fragment).hex)
    }

    func testTheLogIsNeverFollowedThroughASymlinkAndIsReadThroughItsOwnDescriptor() throws {
        let dir = TempDir()
        let secret = dir.write("secret", "TOP SECRET\n")
        symlink(secret, dir.file("audit.jsonl"))
        XCTAssertThrowsError(try log(dir)) { XCTAssertTrue("\($0)".contains("symbolic link"), "\($0)") }
        XCTAssertEqual(try String(contentsOfFile: secret, encoding: .utf8), "TOP SECRET\n")
        unlink(dir.file("audit.jsonl"))
        let audit = try log(dir)
        try audit.append(record(1))
        rename(dir.file("audit.jsonl"), dir.file("moved.jsonl"))
        symlink(secret, dir.file("audit.jsonl"))
        let served = String(decoding: try audit.contents(), as: UTF8.self)
        XCTAssertTrue(served.contains("\"k1\"") && !served.contains("TOP SECRET"), served)
    }
}

/// A Bool shared with a @Sendable closure.
final class Atomic: Sendable {
    private let v: Mutex<Bool>
    init(_ v: Bool) { self.v = Mutex(v) }
    var value: Bool {
        get { v.withLock { $0 } }
        set { v.withLock { $0 = newValue } }
    }
}

/// A thread-safe count, for the sync hook.
final class Counter: Sendable {
    private let n = Mutex(0)
    func add() { n.withLock { $0 += 1 } }
    var value: Int { n.withLock { $0 } }
}
