import Foundation
import TestSupport
import XCTest

/// The ceremony controls: authorization from the kernel's peer credentials, the hash-chained audit
/// log, the two-person rule, many clients at once, and systemd's socket activation protocol.
/// A second operator is played by uid 65534 (usually nobody), through setpriv: the tests that need
/// one check that they run as root (setpriv must change uid) and that the uid exists, and say so
/// when they cannot run. The operator running the tests is whoever runs them (root in CI).
final class CeremonyTests: XCTestCase {
    static let pin = "ceremony-pin-5417"

    /// The user running the tests (and byokctl): uid and name.
    static let me: (uid: UInt32, name: String) = (getuid(), getpwuid(getuid()).map { String(cString: $0.pointee.pw_name) } ?? "\(getuid())")

    /// The second operator, uid 65534, when this process can act as them; otherwise the test is skipped.
    func secondOperator() throws -> (uid: UInt32, name: String) {
        guard geteuid() == 0 else {
            throw XCTSkip("needs root: a second operator is played through setpriv, which must change uid (CI runs the tests as root)")
        }
        // The name is copied at once: getpwuid's buffer is static, and `Self.me`'s first use calls it again.
        guard let name = getpwuid(65534).map({ String(cString: $0.pointee.pw_name) }) else {
            throw XCTSkip("needs a user with uid 65534 to play the second operator")
        }
        guard Self.me.uid != 65534 else { throw XCTSkip("the tests run as uid 65534 itself") }
        return (65534, name)
    }

    /// A daemon on a fresh SoftHSM token with extra configuration, its socket reachable by the second operator.
    func daemon(_ extraConfig: String = "") throws -> DaemonFixture {
        let dir = TempDir("byokd-daemon")
        chmod(dir.path, 0o755)
        let token = try SoftHSM.makeToken(in: dir, pin: Self.pin)
        let config = dir.write("byokd.json", """
            {"module": "\(SoftHSM.module)", "token": "\(token.label)", "pinFile": "\(token.pinFile)", "socketMode": "0666"\(extraConfig)}
            """)
        return try DaemonFixture(arguments: ["--config", config], environment: token.environment, dir: dir)
    }

    /// byokctl as another user (setpriv: no groups, no privileges).
    func ctlAs(_ uid: UInt32, _ d: DaemonFixture, _ args: [String], cwd: String? = nil) throws -> Tools.Result {
        var env = ProcessInfo.processInfo.environment
        env["BYOKD_SOCKET"] = d.socket
        return try Tools.run("setpriv", ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", Binaries.byokctl] + args, environment: env, cwd: cwd)
    }

    func auditRecords(_ d: DaemonFixture) throws -> [[String: Any]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: d.stateDir + "/audit.jsonl"))
        return try data.split(separator: UInt8(ascii: "\n")).map { try JSONSerialization.jsonObject(with: Data($0)) as! [String: Any] }
    }

    func paramsFile(_ d: DaemonFixture, bits: Int = 2048) throws -> (String, AWSSide.WrappingKeyPair) {
        let aws = try AWSSide.keyPair(bits: bits)
        let p = d.dir.write("p-\(UUID().uuidString).json", AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken()))
        chmod(p, 0o644)
        return (p, aws)
    }

    func testADeniedUserGetsExit4AndAnAuditRecord() throws {
        let other = try secondOperator()
        let d = try daemon()
        // By default only root and the socket's group may do anything; the second operator is neither.
        let r = try ctlAs(other.uid, d, ["keys", "list", "--json"])
        XCTAssertEqual(r.code, 4, r.err)
        XCTAssertEqual((r.json?["error"] as? [String: Any])?["code"] as? String, "DENIED")
        XCTAssertTrue(r.err.contains("uid \(other.uid)"), r.err)
        let denied = try auditRecords(d).filter { $0["result"] as? String == "denied" }
        XCTAssertEqual(denied.count, 1)
        XCTAssertEqual(denied.first?["operation"] as? String, "keys.list")
        XCTAssertEqual((denied.first?["peer"] as? [String: Any])?["uid"] as? Int, Int(other.uid))
        XCTAssertEqual(denied.first?["errorCode"] as? String, "DENIED")
    }

    func testKMSImportNeedsTheRightToWrapAndIsAuditedWhenDenied() throws {
        // The second operator may kms.import but not wrap: importing releases key material as a wrap does.
        let second = try secondOperator()
        let d = try daemon(", \"access\": {\"kms.import\": [\"uid:65534\"], \"wrap\": [\"uid:0\"]}")
        XCTAssertEqual(try d.ctl(["keys", "generate", "--label", "k", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        mkdir(d.dir.file("nobody"), 0o777)
        chmod(d.dir.file("nobody"), 0o777)
        let out = d.dir.file("nobody/out")
        let r = try ctlAs(second.uid, d, ["kms", "import", "--kms-key-id", "1234abcd-12ab-34cd-56ef-1234567890ab", "--key", "k",
                                           "--out", out, "--json"])
        XCTAssertEqual(r.code, 4, r.err)
        XCTAssertEqual((r.json?["error"] as? [String: Any])?["code"] as? String, "DENIED")
        XCTAssertTrue(r.err.contains("wrap (which kms.import needs)"), r.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        let denied = try auditRecords(d).filter { $0["result"] as? String == "denied" }
        XCTAssertEqual(denied.map { $0["operation"] as? String }, ["kms.import"])
        XCTAssertEqual((denied.first?["key"] as? [String: Any])?["label"] as? String, nil, "denied before the body is read")
        XCTAssertEqual((denied.first?["peer"] as? [String: Any])?["uid"] as? Int, Int(second.uid))
    }

    func testAnUnknownOperationOrPrincipalInTheConfigurationIsRefusedAtStart() throws {
        for access in [#"{"wrapp": ["uid:0"]}"#, #"{"wrap.batch": ["uid:0"]}"#, #"{"wrap": ["user:no-such-user-here"]}"#, #"{"wrap": ["someone"]}"#] {
            let dir = TempDir("byokd-daemon")
            let token = try SoftHSM.makeToken(in: dir, pin: Self.pin)
            let config = dir.write("byokd.json", """
                {"module": "\(SoftHSM.module)", "token": "\(token.label)", "pinFile": "\(token.pinFile)", "access": \(access)}
                """)
            let d = try DaemonFixture(arguments: ["--config", config], environment: token.environment, dir: dir, waitReady: false)
            d.process.waitUntilExit()
            XCTAssertNotEqual(d.process.terminationStatus, 0, access)
            XCTAssertTrue(d.log.contains("access"), "\(access): \(d.log)")
        }
    }

    func testTheAccessListGrantsOperationsToNamedUsers() throws {
        let other = try secondOperator()
        let d = try daemon(", \"access\": {\"status\": [\"uid:\(Self.me.uid)\", \"uid:\(other.uid)\"], \"keys.list\": [\"user:\(other.name)\"]}")
        XCTAssertEqual(try ctlAs(other.uid, d, ["status"]).code, 0)
        XCTAssertEqual(try ctlAs(other.uid, d, ["keys", "list"]).code, 0)
        XCTAssertEqual(try ctlAs(other.uid, d, ["keys", "generate", "--label", "x", "--spec", "SYMMETRIC_DEFAULT"]).code, 4)
        // The operator running the tests is not in keys.list's list.
        XCTAssertEqual(try d.ctl(["keys", "list"]).code, 4)
    }

    func testEveryRequestIsAuditedAndTheChainVerifies() throws {
        let d = try daemon()
        XCTAssertEqual(try d.ctl(["keys", "generate", "--label", "k", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        let (params, _) = try paramsFile(d)
        let w = try d.ctl(["wrap", "--key", "k", "--params", params, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--out", d.dir.file("out"), "--json"])
        XCTAssertEqual(w.code, 0, w.err)
        XCTAssertEqual(try d.ctl(["wrap", "--key", "missing", "--params", params, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--out", d.dir.file("o2")]).code, 2)
        let records = try auditRecords(d)
        let wraps = records.filter { $0["operation"] as? String == "wrap" && $0["result"] as? String != "intent" }
        XCTAssertEqual(wraps.count, 2)
        let intents = records.filter { $0["operation"] as? String == "wrap" && $0["result"] as? String == "intent" }
        XCTAssertEqual(Set(wraps.compactMap { $0["intent"] as? Int }), Set(intents.compactMap { $0["seq"] as? Int }),
                       "each wrap's outcome names the write-ahead record made before the token was touched")
        let ok = try XCTUnwrap(wraps.first { $0["result"] as? String == "ok" })
        let manifest = try XCTUnwrap(w.json?["manifest"] as? [String: Any])
        XCTAssertEqual((ok["key"] as? [String: Any])?["label"] as? String, "k")
        XCTAssertEqual((ok["key"] as? [String: Any])?["fingerprint"] as? String, (manifest["key"] as? [String: Any])?["kcv"] as? String)
        XCTAssertEqual(ok["wrappingPublicKeySha256"] as? String, manifest["wrappingPublicKeySha256"] as? String)
        XCTAssertEqual(ok["kmsKeyId"] as? String, AWSSide.keyArn)
        XCTAssertEqual((ok["peer"] as? [String: Any])?["user"] as? String, Self.me.name)
        XCTAssertEqual((ok["peer"] as? [String: Any])?["uid"] as? Int, Int(Self.me.uid))
        XCTAssertNotNil((ok["peer"] as? [String: Any])?["pid"])
        XCTAssertEqual(wraps.first { $0["result"] as? String == "error" }?["errorCode"] as? String, "KEY_NOT_FOUND")
        // No key bytes and no PIN anywhere in the log.
        let text = try String(contentsOfFile: d.stateDir + "/audit.jsonl", encoding: .utf8)
        XCTAssertFalse(text.contains(Self.pin), "no PIN")
        XCTAssertFalse(text.contains((w.json?["encryptedKeyMaterial"] as? String) ?? "<none>"))

        let v = try d.ctl(["audit", "verify", d.stateDir + "/audit.jsonl"])
        XCTAssertEqual(v.code, 0, v.err)
        XCTAssertTrue(v.out.contains("audit log intact: \(records.count) records"), v.out)
        XCTAssertEqual(try d.ctl(["audit", "verify"]).code, 0, "fetched from the daemon")
    }

    func testATamperedAuditLineIsDetected() throws {
        let d = try daemon()
        for i in 0..<4 { XCTAssertEqual(try d.ctl(["keys", "generate", "--label", "k\(i)", "--spec", "SYMMETRIC_DEFAULT"]).code, 0) }
        let path = d.stateDir + "/audit.jsonl"
        var lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        // Rewrite history: the label of the record that generated k1.
        let altered = try XCTUnwrap(lines.firstIndex { $0.contains("\"label\":\"k1\"") && $0.contains("keys.generate") })
        lines[altered] = lines[altered].replacingOccurrences(of: "\"k1\"", with: "\"kX\"")
        let copy = d.dir.write("tampered.jsonl", lines.joined(separator: "\n") + "\n")
        let r = try d.ctl(["audit", "verify", copy, "--json"])
        XCTAssertEqual(r.code, 2, r.out + r.err)
        XCTAssertEqual(r.json?["firstBrokenLine"] as? Int, altered + 1, "the altered line itself is named, not the one after it")
        XCTAssertTrue(r.err.contains("AUDIT_CHAIN_BROKEN"), r.err)
        // Deleting a record is caught too.
        lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map(String.init)
        lines.remove(at: 1)
        let cut = d.dir.write("cut.jsonl", lines.joined(separator: "\n") + "\n")
        let c = try d.ctl(["audit", "verify", cut, "--json"])
        XCTAssertEqual(c.code, 2)
        XCTAssertEqual(c.json?["firstBrokenLine"] as? Int, 2)
        // A restarted daemon continues the chain.
        d.stop()
        let again = try DaemonFixture(arguments: d.process.arguments!.filter { $0 != "--socket" && $0 != d.socket && $0 != "--state-dir" && $0 != d.stateDir } + ["--state-dir", d.stateDir],
                                      environment: d.process.environment!, dir: TempDir("byokd-daemon"))
        XCTAssertEqual(try again.ctl(["status"]).code, 0)
        XCTAssertEqual(try again.ctl(["audit", "verify", path]).code, 0)
    }

    func testTwoPersonRule() throws {
        let other = try secondOperator()
        let d = try daemon(", \"twoPersonRule\": [\"keys.generate\", \"wrap\"], \"access\": {\"approve\": [\"uid:\(Self.me.uid)\", \"uid:\(other.uid)\"]}")
        // Root asks; the request waits with an id.
        let requester = Process()
        requester.executableURL = URL(fileURLWithPath: Binaries.byokctl)
        requester.arguments = ["keys", "generate", "--label", "dual", "--spec", "SYMMETRIC_DEFAULT", "--json"]
        var env = ProcessInfo.processInfo.environment
        env["BYOKD_SOCKET"] = d.socket
        requester.environment = env
        let out = Pipe(), err = Pipe()
        requester.standardOutput = out
        requester.standardError = err
        try requester.run()
        var id: String?
        for _ in 0..<100 {
            let p = try d.ctl(["pending", "--json"])
            if let first = (p.json?["pending"] as? [[String: Any]])?.first {
                id = first["id"] as? String
                XCTAssertEqual(first["summary"] as? String, "generate SYMMETRIC_DEFAULT key \"dual\"")
                break
            }
            usleep(50_000)
        }
        let pendingId = try XCTUnwrap(id)
        XCTAssertTrue(requester.isRunning, "the request waits")
        XCTAssertEqual((try d.ctl(["keys", "list", "--json"]).json?["keys"] as? [[String: Any]])?.count, 0, "nothing happened yet")
        // The requester cannot approve their own request.
        let selfApproval = try d.ctl(["approve", pendingId, "--json"])
        XCTAssertEqual(selfApproval.code, 4)
        XCTAssertTrue(selfApproval.err.contains("cannot approve your own request"), selfApproval.err)
        // A second person approves; the requester gets the result.
        let approval = try ctlAs(other.uid, d, ["approve", pendingId])
        XCTAssertEqual(approval.code, 0, approval.err)
        requester.waitUntilExit()
        let result = out.fileHandleForReading.readDataToEndOfFile()
        XCTAssertEqual(requester.terminationStatus, 0)
        let key = try XCTUnwrap(try JSONSerialization.jsonObject(with: result) as? [String: Any])
        XCTAssertEqual(key["label"] as? String, "dual")
        XCTAssertTrue(String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).contains("byokctl approve \(pendingId)"))
        // Both identities are in the audit record of the operation.
        let records = try auditRecords(d)
        let done = try XCTUnwrap(records.first { $0["operation"] as? String == "keys.generate" && $0["result"] as? String == "ok" })
        XCTAssertEqual((done["requestedBy"] as? [String: Any])?["uid"] as? Int, Int(Self.me.uid))
        XCTAssertEqual((done["approvedBy"] as? [String: Any])?["uid"] as? Int, Int(other.uid))
        XCTAssertEqual(done["approvalId"] as? String, pendingId)
        XCTAssertTrue(records.contains { $0["operation"] as? String == "approve" && $0["result"] as? String == "denied" }, "the self-approval is on record")
        XCTAssertTrue(records.contains { $0["operation"] as? String == "keys.generate" && $0["result"] as? String == "pending" })
    }

    func testAnUnapprovedRequestExpires() throws {
        let d = try daemon(", \"twoPersonRule\": [\"wrap\"], \"approvalTimeoutSeconds\": 1")
        XCTAssertEqual(try d.ctl(["keys", "generate", "--label", "k", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        let (params, _) = try paramsFile(d)
        let out = d.dir.file("out")
        let r = try d.ctl(["wrap", "--key", "k", "--params", params, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--out", out, "--json"])
        XCTAssertEqual(r.code, 4, r.err)
        XCTAssertEqual((r.json?["error"] as? [String: Any])?["code"] as? String, "APPROVAL_EXPIRED")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        XCTAssertTrue(try auditRecords(d).contains { $0["operation"] as? String == "wrap" && $0["result"] as? String == "expired" })
    }

    func testSixtyFourClientsAtOnceAreEachAccountedFor() throws {
        let d = try daemon()
        XCTAssertEqual(try d.ctl(["keys", "generate", "--label", "k", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        let (params, aws) = try paramsFile(d)
        var env = ProcessInfo.processInfo.environment
        env["BYOKD_SOCKET"] = d.socket
        let clients = (0..<64).map { i -> Process in
            let p = Process()
            p.executableURL = URL(fileURLWithPath: Binaries.byokctl)
            p.arguments = ["wrap", "--key", "k", "--params", params, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--out", d.dir.file("c\(i)")]
            p.environment = env
            p.standardOutput = FileHandle.nullDevice
            p.standardError = FileHandle.nullDevice
            return p
        }
        for c in clients { try c.run() }
        for c in clients { c.waitUntilExit() }
        XCTAssertEqual(clients.map(\.terminationStatus), Array(repeating: 0, count: 64))
        let kcv = try XCTUnwrap((try d.ctl(["keys", "list", "--json"]).json?["keys"] as? [[String: Any]])?.first?["kcv"] as? String)
        for i in [0, 31, 63] {
            let key = try AWSSide.decryptOAEP(try Data(contentsOf: URL(fileURLWithPath: d.dir.file("c\(i)/EncryptedKeyMaterial.bin"))), with: aws, hash: "sha1")
            XCTAssertEqual(key.count, 32)
            XCTAssertEqual(try AWSSide.aesKCV(key), kcv)
        }
        let wraps = try auditRecords(d).filter { $0["operation"] as? String == "wrap" && $0["result"] as? String == "ok" }
        XCTAssertEqual(wraps.count, 64, "every wrap is in the audit log")
        XCTAssertEqual(Set(wraps.compactMap { ($0["peer"] as? [String: Any])?["pid"] as? Int }).count, 64)
        XCTAssertEqual(try d.ctl(["audit", "verify", d.stateDir + "/audit.jsonl"]).code, 0)
    }

    /// systemd hands byokd its listening socket as fd 3 (LISTEN_FDS=1, LISTEN_PID=its pid) and
    /// listens for READY=1 and STOPPING=1 on NOTIFY_SOCKET.
    func testSocketActivationAndReadinessNotification() throws {
        let dir = TempDir("byokd-daemon")
        let token = try SoftHSM.makeToken(in: dir)
        let script = """
            import os, socket, subprocess, sys, time, json
            byokd, byokctl, d, module, label, pin = sys.argv[1:7]
            listen = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            listen.bind(d + "/activated.sock"); listen.listen(16)
            notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            notify.bind(d + "/notify.sock"); notify.settimeout(60)
            pid = os.fork()
            if pid == 0:
                if listen.fileno() != 3:
                    os.dup2(listen.fileno(), 3)
                os.set_inheritable(3, True)
                env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), NOTIFY_SOCKET=d + "/notify.sock")
                os.execve(byokd, [byokd, "--module", module, "--token", label, "--pin-file", pin, "--state-dir", d + "/state",
                                  "--socket", d + "/unused.sock"], env)
            ready = notify.recv(4096).decode()
            print("NOTIFY1", ready.replace("\\n", "|"))
            env = dict(os.environ, BYOKD_SOCKET=d + "/activated.sock")
            r = subprocess.run([byokctl, "status", "--json"], env=env, capture_output=True, text=True, timeout=60)
            print("STATUS", r.returncode, json.loads(r.stdout)["token"]["label"])
            print("UNUSED", os.path.exists(d + "/unused.sock"))
            os.kill(pid, 15)
            print("NOTIFY2", notify.recv(4096).decode())
            print("EXIT", os.waitpid(pid, 0)[1] >> 8)
            # systemd keeps the listening socket: byokd must not have shut it down for everyone.
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); c.settimeout(5)
            try:
                c.connect(d + "/activated.sock"); listen.settimeout(5); listen.accept(); print("SOCKET STILL LISTENING")
            except OSError as e:
                print("SOCKET BROKEN", e)
            """
        let r = try Tools.run("python3", ["-c", script, Binaries.byokd, Binaries.byokctl, dir.path, SoftHSM.module, token.label, token.pinFile],
                              environment: token.environment)
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.out.contains("NOTIFY1 READY=1"), r.out)
        XCTAssertTrue(r.out.contains("STATUS 0 \(token.label)"), r.out)
        XCTAssertTrue(r.out.contains("UNUSED False"), "byokd used the passed socket, not its own: \(r.out)")
        XCTAssertTrue(r.out.contains("NOTIFY2 STOPPING=1"), r.out)
        XCTAssertTrue(r.out.contains("EXIT 0"), r.out)
        XCTAssertTrue(r.out.contains("SOCKET STILL LISTENING"), r.out)
    }
}
