import ByokAPI
import Foundation
import Synchronization
import TestSupport
import XCTest

/// A byokd on a fresh SoftHSM token with extra configuration (JSON members after the first),
/// in `dir`, optionally through the forwarding module; its socket reachable by other users.
struct AuditDaemon {
    let daemon: DaemonFixture
    let token: SoftHSM.Token
    let arguments: [String]
    let environment: [String: String]
    var auditPath: String { daemon.stateDir + "/audit.jsonl" }

    init(_ extraConfig: String = "", dir: TempDir = TempDir("byokd-daemon"), faultFile: String? = nil) throws {
        chmod(dir.path, 0o755)
        let token = try SoftHSM.makeToken(in: dir)
        var module = SoftHSM.module
        var env = token.environment
        if let faultFile {
            module = try ForwardingModule.path()
            env = ForwardingModule.environment(forwardingTo: SoftHSM.module, faultFile: faultFile, base: token.environment)
        }
        let config = dir.write("byokd.json", """
            {"module": "\(module)", "token": "\(token.label)", "pinFile": "\(token.pinFile)", "socketMode": "0666"\(extraConfig)}
            """)
        self.token = token
        arguments = ["--config", config]
        environment = env
        daemon = try DaemonFixture(arguments: arguments, environment: env, dir: dir)
    }

    /// The same daemon started again on the same directory (state, socket, token).
    func restart() throws -> DaemonFixture {
        try DaemonFixture(arguments: arguments, environment: environment, dir: daemon.dir)
    }

    func lines(_ path: String? = nil) throws -> [String] {
        try String(contentsOfFile: path ?? auditPath, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    func records(_ path: String? = nil) throws -> [AuditRecord] {
        try lines(path).map { try JSONDecoder().decode(AuditRecord.self, from: Data($0.utf8)) }
    }

    func params() throws -> String {
        let aws = try AWSSide.keyPair(bits: 2048)
        return daemon.dir.write("p-\(UUID().uuidString).json", AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken()))
    }

    func wrap(_ key: String, params: String, out: String) throws -> Tools.Result {
        try daemon.ctl(["wrap", "--key", key, "--params", params, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--out", out, "--json"])
    }
}

func errorCode(_ r: Tools.Result) -> String? { (r.json?["error"] as? [String: Any])?["code"] as? String }

/// Writes `lines` as an audit log file in `dir`.
func writeLog(_ lines: [String], _ dir: TempDir, _ name: String) -> String {
    dir.write(name, lines.joined(separator: "\n") + "\n")
}

/// Re-encodes a record line after `change`, as byokd writes lines.
func rewrite(_ line: String, _ change: (inout AuditRecord) -> Void) throws -> String {
    var r = try JSONDecoder().decode(AuditRecord.self, from: Data(line.utf8))
    change(&r)
    return String(decoding: AuditVerifier.line(r), as: UTF8.self)
}

/// Recomputes every prev hash from line `from` on: what someone with the file but not the HSM can do.
func rechain(_ lines: inout [String], from: Int) throws {
    for j in max(1, from)..<lines.count {
        let prev = Digest.sha256(Array(lines[j - 1].utf8)).hex
        lines[j] = try rewrite(lines[j]) { $0.prev = prev }
    }
}

/// Runs byokd and waits for it to exit (or kills it after `timeout` seconds: nil).
func runByokd(_ arguments: [String], environment: [String: String], timeout: Double = 20) throws -> (Int32?, String) {
    let log = TempDir("byokd-run")
    let p = Process()
    p.executableURL = URL(fileURLWithPath: Binaries.byokd)
    p.arguments = arguments
    p.environment = environment
    let out = try FileHandle(forWritingTo: URL(fileURLWithPath: log.write("log", "")))
    p.standardOutput = out
    p.standardError = out
    try p.run()
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { usleep(20_000) }
    let exited = !p.isRunning
    if !exited { p.terminate() }
    p.waitUntilExit()
    return (exited ? p.terminationStatus : nil, (try? String(contentsOfFile: log.file("log"), encoding: .utf8)) ?? "")
}

/// The audit MAC key is byokd's own, and with it no history rewrite passes `--with-token`.
final class AuditMacTests: XCTestCase {
    func testRewritingHistoryNeedsTheHSM() throws {
        let a = try AuditDaemon(", \"auditMacKey\": \"audit-mac\"")
        let d = a.daemon
        for i in 0..<3 { XCTAssertEqual(try d.ctl(["keys", "generate", "--label", "k\(i)", "--spec", "SYMMETRIC_DEFAULT"]).code, 0) }
        let ok = try d.ctl(["audit", "verify", "--with-token", a.auditPath, "--json"])
        XCTAssertEqual(ok.code, 0, ok.err)
        XCTAssertEqual(ok.json?["intact"] as? Bool, true)
        XCTAssertEqual(ok.json?["macMissing"] as? Int, 1, "only byokd's intent to create its key precedes the key")
        XCTAssertGreaterThanOrEqual(ok.json?["macVerified"] as? Int ?? 0, 7)

        // An attacker with the file but not the HSM: alter k1's record and recompute every later hash.
        var lines = try a.lines()
        let k = try XCTUnwrap(lines.firstIndex { $0.contains("\"label\":\"k1\"") })
        lines[k] = lines[k].replacingOccurrences(of: "\"k1\"", with: "\"kX\"")
        try rechain(&lines, from: k + 1)
        let forged = writeLog(lines, d.dir, "forged.jsonl")
        XCTAssertEqual(try d.ctl(["audit", "verify", forged]).code, 0, "the plain chain cannot tell")
        let caught = try d.ctl(["audit", "verify", "--with-token", forged, "--json"])
        XCTAssertEqual(caught.code, 2, caught.out)
        XCTAssertEqual(caught.json?["firstBrokenLine"] as? Int, k + 1)
        XCTAssertTrue((caught.json?["reason"] as? String ?? "").contains("fails its token MAC"), caught.out)
    }

    func testALogForgedWithoutMACsFailsWithTheToken() throws {
        let a = try AuditDaemon(", \"auditMacKey\": \"audit-mac\"")
        let d = a.daemon
        for i in 0..<4 { XCTAssertEqual(try d.ctl(["keys", "generate", "--label", "k\(i)", "--spec", "SYMMETRIC_DEFAULT"]).code, 0) }
        let lines = try a.lines()

        // Delete k2's records, renumber (and what outcomes name as their intent), strip every MAC,
        // re-chain: a whole history rewritten.
        var forged = try lines.filter { !$0.contains("\"label\":\"k2\"") }.map { try rewrite($0) { $0.mac = nil; $0.macError = nil } }
        var renumbered: [UInt64: UInt64] = [:]
        for j in forged.indices {
            forged[j] = try rewrite(forged[j]) { r in
                renumbered[r.seq] = UInt64(j + 1)
                r.seq = UInt64(j + 1)
                r.intent = r.intent.map { renumbered[$0] ?? $0 }
            }
        }
        try rechain(&forged, from: 1)
        let rewritten = writeLog(forged, d.dir, "rewritten.jsonl")
        XCTAssertEqual(try d.ctl(["audit", "verify", rewritten]).code, 0, "the plain chain cannot tell")
        let r = try d.ctl(["audit", "verify", "--with-token", rewritten, "--json"])
        XCTAssertEqual(r.code, 2, r.out + r.err)
        XCTAssertTrue((r.json?["reason"] as? String ?? "").contains("no record in this log carries a token MAC"), r.out)

        // Only the last records' MACs stripped (and the tail rewritten at will): caught at the first.
        var tail = lines
        let from = tail.count - 3
        for j in from..<tail.count { tail[j] = try rewrite(tail[j]) { $0.mac = nil } }
        try rechain(&tail, from: from)
        let stripped = writeLog(tail, d.dir, "stripped.jsonl")
        let s = try d.ctl(["audit", "verify", "--with-token", stripped, "--json"])
        XCTAssertEqual(s.code, 2, s.out)
        XCTAssertEqual(s.json?["firstBrokenLine"] as? Int, from + 1)
        XCTAssertTrue((s.json?["reason"] as? String ?? "").contains("carries no MAC"), s.out)
    }

    func testTheMACKeyIsByokdsOwnAndNeverLeavesTheToken() throws {
        let a = try AuditDaemon(", \"auditMacKey\": \"audit-mac\"")
        let d = a.daemon
        let keys = try XCTUnwrap(try d.ctl(["keys", "list", "--json"]).json?["keys"] as? [[String: Any]])
        let mac = try XCTUnwrap(keys.first { $0["label"] as? String == "audit-mac" }, "byokd made its MAC key")
        XCTAssertEqual(mac["sensitive"] as? Bool, true)
        XCTAssertEqual(mac["extractable"] as? Bool, false)
        XCTAssertNil(mac["spec"], "not listed as importable")
        XCTAssertEqual(mac["reservedFor"] as? String, "audit-mac")
        // Its creation is on record, write-ahead: intent, then the outcome MACed with the new key.
        let records = try a.records()
        XCTAssertEqual(records.prefix(2).map(\.operation), [AuditEvent.macKey, AuditEvent.macKey])
        XCTAssertEqual(records.prefix(2).map(\.result), ["intent", "ok"])
        XCTAssertEqual(records[1].intent, records[0].seq)
        XCTAssertNotNil(records[1].mac)

        let out = d.dir.file("stolen")
        let w = try a.wrap("audit-mac", params: try a.params(), out: out)
        XCTAssertEqual(w.code, 2, w.err)
        XCTAssertEqual(errorCode(w), "KEY_RESERVED")
        XCTAssertTrue(w.err.contains("never leaves the token"), w.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        XCTAssertEqual(errorCode(try d.ctl(["keys", "generate", "--label", "audit-mac", "--spec", "HMAC_256", "--json"])), "KEY_EXISTS")
        d.stop()

        // An extractable key named as auditMacKey — the attack: one that was wrapped out — is refused.
        let b = try AuditDaemon()
        XCTAssertEqual(try b.daemon.ctl(["keys", "generate", "--label", "copied-mac", "--spec", "HMAC_256"]).code, 0)
        b.daemon.stop()
        let config = b.daemon.dir.write("mac.json", """
            {"module": "\(SoftHSM.module)", "token": "\(b.token.label)", "pinFile": "\(b.token.pinFile)", "auditMacKey": "copied-mac"}
            """)
        let other = TempDir("byokd-daemon")
        let (code, log) = try runByokd(["--config", config, "--socket", other.file("s.sock"), "--state-dir", other.file("state")], environment: b.environment)
        XCTAssertEqual(code, 2, "byokd must refuse the key: \(log)")
        XCTAssertTrue(log.contains("CKA_EXTRACTABLE") && log.contains("forge"), log)
    }

    func testATokenThatCannotSignLeavesExplicitGapsThatVerifyReports() throws {
        let dir = TempDir("byokd-daemon")
        let faults = dir.file("faults")
        let a = try AuditDaemon(", \"auditMacKey\": \"audit-mac\"", dir: dir, faultFile: faults)
        let d = a.daemon
        try ForwardingModule.setFaults(["C_SignInit CKR_DEVICE_ERROR 2"], file: faults)
        XCTAssertEqual(try d.ctl(["status"]).code, 0)
        XCTAssertEqual(try d.ctl(["status"]).code, 0)
        XCTAssertEqual(try d.ctl(["status"]).code, 0)
        let records = try a.records()
        let gaps = records.filter { $0.macError != nil }
        XCTAssertEqual(gaps.count, 2, "\(records.map(\.macError))")
        XCTAssertTrue(gaps.allSatisfy { $0.mac == nil && $0.macError!.contains("CKR_DEVICE_ERROR") }, "\(gaps.map(\.macError))")
        XCTAssertNotNil(records.last?.mac, "signed again once the token can")
        let v = try d.ctl(["audit", "verify", "--with-token", a.auditPath, "--json"])
        XCTAssertEqual(v.code, 0, v.out + v.err)
        XCTAssertEqual(v.json?["macGaps"] as? Int, 2)
        let gapLine = try XCTUnwrap(v.json?["firstGapLine"] as? Int)
        XCTAssertNotNil(records[gapLine - 1].macError)
        let human = try d.ctl(["audit", "verify", "--with-token", a.auditPath])
        XCTAssertTrue(human.out.contains("2 records the token could not sign"), human.out)
    }
}

/// Faults leave a log that verifies whole: a full disk, a kill -9, a torn last record.
final class AuditFaultTests: XCTestCase {
    func testAFullDiskLeavesAVerifiableLogAndNoKeyWithoutARecord() throws {
        guard getuid() == 0 else { throw XCTSkip("mounting a small tmpfs needs root") }
        let dir = TempDir("byokd-daemon")
        let mnt = dir.file("small")
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        guard (try? Tools.run("mount", ["-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", mnt]))?.code == 0 else {
            throw XCTSkip("cannot mount a tmpfs here")
        }
        var mounted = true
        defer { if mounted { _ = try? Tools.run("umount", ["-l", mnt]) } }
        let a = try AuditDaemon(", \"auditMacKey\": \"audit-mac\", \"auditLog\": \"\(mnt)/audit.jsonl\"", dir: dir)
        let d = a.daemon
        let log = mnt + "/audit.jsonl"
        var generated: [String] = []
        var attempted: [String] = []
        var full: Tools.Result?
        for i in 0..<400 {
            let label = "k\(i)"
            attempted.append(label)
            let r = try d.ctl(["keys", "generate", "--label", label, "--spec", "SYMMETRIC_DEFAULT", "--json"])
            if r.code == 0 { generated.append(label); continue }
            full = r
            break
        }
        let refused = try XCTUnwrap(full, "the 64 KiB disk never filled")
        XCTAssertEqual(errorCode(refused), "AUDIT_LOG_FAILED", refused.out + refused.err)
        // More requests on the full disk: each refused, no key made without its record.
        for i in 0..<5 {
            attempted.append("full\(i)")
            XCTAssertNotEqual(try d.ctl(["keys", "generate", "--label", "full\(i)", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        }
        // Even now the file holds whole records only.
        let onFull = try Data(contentsOf: URL(fileURLWithPath: log))
        XCTAssertEqual(onFull.last, UInt8(ascii: "\n"))
        XCTAssertEqual(try d.ctl(["audit", "verify", log]).code, 0)

        XCTAssertEqual(try Tools.run("mount", ["-o", "remount,size=4m", mnt]).code, 0)
        let after = try d.ctl(["keys", "generate", "--label", "after", "--spec", "SYMMETRIC_DEFAULT"])
        XCTAssertEqual(after.code, 0, after.err)
        let plain = try d.ctl(["audit", "verify", log])
        XCTAssertEqual(plain.code, 0, plain.err)
        let withToken = try d.ctl(["audit", "verify", "--with-token", log, "--json"])
        XCTAssertEqual(withToken.code, 0, withToken.out + withToken.err)

        let records = try a.records(log)
        let recorded = Set(records.filter { $0.operation == "keys.generate" && ($0.result == "ok" || $0.result == "intent") }.compactMap { $0.key?.label })
        let onToken = Set(try XCTUnwrap(try d.ctl(["keys", "list", "--json"]).json?["keys"] as? [[String: Any]]).compactMap { $0["label"] as? String })
        let keys = onToken.subtracting(["audit-mac"])
        XCTAssertTrue(keys.isSubset(of: recorded), "keys without a record: \(keys.subtracting(recorded).sorted())")
        XCTAssertTrue(Set(generated + ["after"]).isSubset(of: Set(records.filter { $0.result == "ok" }.compactMap { $0.key?.label })))
        XCTAssertTrue(keys.isSubset(of: Set(attempted + ["after"])))
        d.stop()
        if (try? Tools.run("umount", [mnt]))?.code == 0 { mounted = false }
    }

    func testKill9DuringConcurrentWrapsThenRestartVerifiesWithEveryAnsweredWrap() throws {
        let a = try AuditDaemon(", \"auditMacKey\": \"audit-mac\"")
        let d = a.daemon
        XCTAssertEqual(try d.ctl(["keys", "generate", "--label", "k", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        let params = try a.params()
        let stop = Atomic(false)
        let answered = Shared<[String]>([])
        let group = DispatchGroup()
        for c in 0..<6 {
            group.enter()
            Thread {
                defer { group.leave() }
                var i = 0
                while !stop.value {
                    i += 1
                    guard let r = try? a.wrap("k", params: params, out: d.dir.file("o-\(c)-\(i)")) else { continue }
                    if r.code == 0, let sha = (r.json?["manifest"] as? [String: Any])?["encryptedKeyMaterialSha256"] as? String {
                        answered.withLock { $0.append(sha) }
                    }
                }
            }.start()
        }
        let deadline = Date().addingTimeInterval(30)
        while answered.withLock({ $0.count }) < 20 && Date() < deadline { usleep(50_000) }
        kill(d.process.processIdentifier, SIGKILL)
        stop.value = true
        group.wait()
        d.process.waitUntilExit()
        // A kill -9 in the middle of a write leaves a torn record; make sure there is one.
        let onDisk = try Data(contentsOf: URL(fileURLWithPath: a.auditPath))
        let wholeEnd = (onDisk.lastIndex(of: UInt8(ascii: "\n")) ?? -1) + 1
        let lastWhole = try XCTUnwrap(onDisk[..<wholeEnd].split(separator: UInt8(ascii: "\n")).last)
        let seqBefore = try JSONDecoder().decode(AuditRecord.self, from: Data(lastWhole)).seq
        let added = Data("{\"key\":{\"label\":\"k\"},\"operation\":\"wr".utf8)
        let torn = onDisk.count - wholeEnd + added.count
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: a.auditPath))
        h.seekToEndOfFile()
        h.write(added)
        try h.close()

        let again = try a.restart()
        let v = try again.ctl(["audit", "verify", "--with-token", "--json"])
        XCTAssertEqual(v.code, 0, v.out + v.err)
        XCTAssertEqual(try again.ctl(["audit", "verify", a.auditPath]).code, 0)
        let records = try a.records()
        let recovered = try XCTUnwrap(records.first { $0.operation == AuditEvent.recovered })
        XCTAssertEqual(recovered.seq, seqBefore + 1, "seq continues from the last whole record")
        XCTAssertEqual(recovered.droppedBytes, torn)
        XCTAssertNotNil(recovered.mac)
        let okWraps = Set(records.filter { $0.operation == "wrap" && $0.result == "ok" }.compactMap(\.encryptedKeyMaterialSha256))
        let got = answered.withLock { $0 }
        XCTAssertGreaterThanOrEqual(got.count, 20)
        XCTAssertTrue(Set(got).isSubset(of: okWraps), "answered wraps missing from the log: \(Set(got).subtracting(okWraps).count)")
    }
}

/// The chain cannot show records removed from, or altered at, its end; a kept head can.
final class AuditAnchorTests: XCTestCase {
    func testDeletingOrAlteringTheLastRecordsIsCaughtWithAKeptHead() throws {
        let a = try AuditDaemon()
        let d = a.daemon
        for i in 0..<4 { XCTAssertEqual(try d.ctl(["keys", "generate", "--label", "k\(i)", "--spec", "SYMMETRIC_DEFAULT"]).code, 0) }
        let head = try d.ctl(["audit", "head"])
        XCTAssertEqual(head.code, 0, head.err)
        let anchor = head.out.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertNotNil(AuditAnchor(anchor), anchor)
        XCTAssertTrue(d.log.contains("audit head \(anchor)"), "byokd's journal has the head of every sync")
        XCTAssertEqual(try d.ctl(["audit", "verify", "--head", anchor]).code, 0)
        d.stop()
        // The journal's last head is the log's last record.
        let lastHead = try XCTUnwrap(d.log.components(separatedBy: "audit head ").last?.prefix { !$0.isWhitespace }).description
        let lines = try a.lines()
        XCTAssertEqual(lastHead, "\(lines.count):\(Digest.sha256(Array(lines.last!.utf8)).hex)")

        let cut = writeLog(Array(lines.dropLast(3)), d.dir, "cut.jsonl")
        XCTAssertEqual(try d.ctl(["audit", "verify", cut]).code, 0, "the chain alone cannot tell")
        let c = try d.ctl(["audit", "verify", "--head", lastHead, cut, "--json"])
        XCTAssertEqual(c.code, 2, c.out)
        XCTAssertTrue((c.json?["reason"] as? String ?? "").contains("records were removed from its end"), c.out)
        XCTAssertEqual(try d.ctl(["audit", "verify", "--head", anchor, cut]).code, 2)

        var edited = lines
        edited[edited.count - 1] = try rewrite(edited[edited.count - 1]) { $0.result = "denied" }
        let e = writeLog(edited, d.dir, "edited.jsonl")
        XCTAssertEqual(try d.ctl(["audit", "verify", e]).code, 0, "the chain alone cannot tell")
        let caught = try d.ctl(["audit", "verify", "--head", lastHead, e, "--json"])
        XCTAssertEqual(caught.code, 2)
        XCTAssertEqual(caught.json?["firstBrokenLine"] as? Int, lines.count)
        XCTAssertEqual(try d.ctl(["audit", "verify", "--head", "12:nothex", e]).code, 2, "a malformed head is a usage error")
    }
}

/// One daemon per state directory, and files byokd cannot be tricked into.
final class StateDirectoryTests: XCTestCase {
    func testASecondDaemonOnTheSameStateDirectoryRefusesToStart() throws {
        let a = try AuditDaemon()
        let d = a.daemon
        XCTAssertEqual(try d.ctl(["keys", "generate", "--label", "k", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        let (code, log) = try runByokd(a.arguments + ["--socket", d.dir.file("second.sock"), "--state-dir", d.stateDir], environment: a.environment)
        XCTAssertEqual(code, 2, "a second byokd must not start: \(log)")
        XCTAssertTrue(log.contains("another byokd (pid \(d.process.processIdentifier), socket \(d.socket))"), log)
        XCTAssertFalse(FileManager.default.fileExists(atPath: d.dir.file("second.sock")))
        XCTAssertEqual(try d.ctl(["status"]).code, 0)
        XCTAssertEqual(try d.ctl(["audit", "verify", a.auditPath]).code, 0)
    }

    func testAStateDirectoryAnotherUserOwnsOrOthersCanWriteIsRefused() throws {
        let dir = TempDir("byokd-daemon")
        let token = try SoftHSM.makeToken(in: dir)
        let base = ["--module", SoftHSM.module, "--token", token.label, "--pin-file", token.pinFile, "--socket", dir.file("s.sock")]
        let open = dir.file("open")
        mkdir(open, 0o777)
        chmod(open, 0o777)
        let (code, log) = try runByokd(base + ["--state-dir", open], environment: token.environment)
        XCTAssertEqual(code, 2, log)
        XCTAssertTrue(log.contains("writable by its group or others (mode 777)"), log)
        let theirs = dir.file("theirs")
        mkdir(theirs, 0o700)
        chown(theirs, 65534, 65534)
        let (code2, log2) = try runByokd(base + ["--state-dir", theirs], environment: token.environment)
        XCTAssertEqual(code2, 2, log2)
        XCTAssertTrue(log2.contains("belongs to uid 65534"), log2)
        XCTAssertFalse(FileManager.default.fileExists(atPath: theirs + "/audit.jsonl"))
    }

    func testASymlinkedAuditLogIsRefusedAndTheServedLogIsByokdsOwnFile() throws {
        let dir = TempDir("byokd-daemon")
        let token = try SoftHSM.makeToken(in: dir)
        let secret = dir.write("secret", "root:TOP-SECRET-HASH:19000:0:99999:7:::\n")
        let logs = dir.file("logs")
        mkdir(logs, 0o700)
        symlink(secret, logs + "/audit.jsonl")
        let config = dir.write("byokd.json", """
            {"module": "\(SoftHSM.module)", "token": "\(token.label)", "pinFile": "\(token.pinFile)", "auditLog": "\(logs)/audit.jsonl"}
            """)
        let (code, log) = try runByokd(["--config", config, "--socket", dir.file("s.sock"), "--state-dir", dir.file("state")],
                                                             environment: token.environment)
        XCTAssertEqual(code, 2, log)
        XCTAssertTrue(log.contains("is a symbolic link"), log)
        XCTAssertEqual(try String(contentsOfFile: secret, encoding: .utf8), "root:TOP-SECRET-HASH:19000:0:99999:7:::\n", "nothing appended to it")

        // The log's path swapped for a link while byokd runs: GET /v1/audit still serves byokd's own file.
        unlink(logs + "/audit.jsonl")
        let d = try DaemonFixture(arguments: ["--config", config], environment: token.environment, dir: dir)
        XCTAssertEqual(try d.ctl(["keys", "generate", "--label", "k", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        rename(logs + "/audit.jsonl", logs + "/moved.jsonl")
        symlink(secret, logs + "/audit.jsonl")
        let shown = try d.ctl(["audit", "show"])
        XCTAssertEqual(shown.code, 0, shown.err)
        XCTAssertFalse(shown.out.contains("TOP-SECRET"), shown.out)
        XCTAssertTrue(shown.out.contains("\"label\":\"k\""), shown.out)
    }
}

/// A value shared between threads.
final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func withLock<R: Sendable>(_ body: (inout Value) -> R) -> R { value.withLock { body(&$0) } }
}

final class Atomic: Sendable {
    private let m: Shared<Bool>
    init(_ v: Bool) { m = Shared(v) }
    var value: Bool {
        get { m.withLock { $0 } }
        set { m.withLock { $0 = newValue } }
    }
}
