import ByokAPI
import ByokClient
import Foundation
import TestSupport
import XCTest

/// The daemon as a service: its HTTP API on the socket, its limits, its configuration, its stop.
final class DaemonTests: XCTestCase {
    func testCurlReachesTheStatusEndpoint() throws {
        let (daemon, token) = try DaemonFixture.softHSM()
        let r = try Tools.check("curl", ["-sS", "--unix-socket", daemon.socket, "http://byokd/v1/status"])
        let status = try XCTUnwrap(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
        XCTAssertEqual((status["token"] as? [String: Any])?["label"] as? String, token.label)
        XCTAssertEqual(status["tokenAvailable"] as? Bool, true)
        let algorithms = try XCTUnwrap(status["algorithms"] as? [[String: Any]])
        let passed = algorithms.filter { $0["state"] as? String == "passed" }.compactMap { $0["name"] as? String }
        // The self-test's verdicts are what the token does when the test asks it directly.
        XCTAssertEqual(Set(passed), try Verdicts.expected(softHSM: token), "\(algorithms)")
        XCTAssertFalse(passed.isEmpty)
        let human = try daemon.ctl(["status"])
        XCTAssertEqual(human.code, 0)
        XCTAssertTrue(human.out.contains(token.label), human.out)
        for a in algorithms {
            let (name, state) = (a["name"] as? String ?? "?", a["state"] as? String ?? "?")
            XCTAssertTrue(human.out.split(separator: "\n").contains { $0.contains(name) && $0.contains(state) }, "\(name) \(state): \(human.out)")
        }
        let notFound = try Tools.run("curl", ["-sS", "-w", "%{http_code}", "-o", "/dev/null", "--unix-socket", daemon.socket, "http://byokd/v2/nothing"])
        XCTAssertEqual(notFound.out, "404")
    }

    func testARequestOverTheSizeLimitIsRefused() throws {
        let dir = TempDir("byokd-daemon")
        let token = try SoftHSM.makeToken(in: dir)
        let config = dir.write("byokd.json", """
            {"module": "\(SoftHSM.module)", "token": "\(token.label)", "pinFile": "\(token.pinFile)", "maxRequestBytes": 4096}
            """)
        let daemon = try DaemonFixture(arguments: ["--config", config], environment: token.environment, dir: dir)
        XCTAssertEqual(try daemon.ctl(["keys", "generate", "--label", "k", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        let aws = try AWSSide.keyPair(bits: 4096)
        let params = dir.write("p.json", AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken(3000)))
        let out = dir.file("out")
        let r = try daemon.ctl(["wrap", "--key", "k", "--params", params, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--out", out, "--json"])
        XCTAssertEqual(r.code, 2, r.err)
        XCTAssertEqual((r.json?["error"] as? [String: Any])?["code"] as? String, "REQUEST_TOO_LARGE")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        let big = dir.write("big", Data(count: 100_000))
        let c = try Tools.run("curl", ["-sS", "-w", "\n%{http_code}", "--unix-socket", daemon.socket, "-X", "POST", "--data-binary", "@\(big)", "http://byokd/v1/wrap"])
        XCTAssertTrue(c.out.hasSuffix("413"), c.out)
        XCTAssertTrue(c.out.contains("REQUEST_TOO_LARGE"), c.out)
        // The daemon is still fine afterwards.
        XCTAssertEqual(try daemon.ctl(["status"]).code, 0)
    }

    func testMalformedRequestsGetAClearError() throws {
        let (daemon, _) = try DaemonFixture.softHSM()
        let r = try Tools.run("curl", ["-sS", "--unix-socket", daemon.socket, "-X", "POST", "-d", "{not json", "http://byokd/v1/keys"])
        XCTAssertTrue(r.out.contains("\"code\":\"BAD_REQUEST\""), r.out)
        let s = try Tools.run("curl", ["-sS", "--unix-socket", daemon.socket, "-X", "POST", "-d", "{\"label\":\"x\"}", "http://byokd/v1/keys"])
        XCTAssertTrue(s.out.contains("lacks \\\"spec\\\""), s.out)
    }

    func testASilentClientTimesOutWithoutHoldingOthersUp() throws {
        let dir = TempDir("byokd-daemon")
        let token = try SoftHSM.makeToken(in: dir)
        let config = dir.write("byokd.json", """
            {"module": "\(SoftHSM.module)", "token": "\(token.label)", "pinFile": "\(token.pinFile)", "readTimeoutSeconds": 2}
            """)
        let daemon = try DaemonFixture(arguments: ["--config", config], environment: token.environment, dir: dir)
        // A client that sends half a request and then nothing.
        let slow = try UnixSocket(daemon.socket)
        try slow.send("POST /v1/keys HTTP/1.1\r\nContent-Length: 50\r\n\r\n{")
        let sent = Date()
        // Meanwhile others are served, and the silent one has had no answer yet.
        XCTAssertEqual(try daemon.ctl(["status"]).code, 0)
        let othersServed = Date()
        let answer = try slow.receiveAll(timeout: 60)
        let timedOut = Date()
        XCTAssertTrue(answer.hasPrefix("HTTP/1.1 408 ") && answer.contains("REQUEST_TIMEOUT"), answer)
        XCTAssertLessThan(othersServed, timedOut, "status was answered while the silent client still waited")
        // The 2 s read timeout is what ended it: not before, and well before the 10 s default.
        let waited = timedOut.timeIntervalSince(sent)
        XCTAssertGreaterThanOrEqual(waited, 1.9, "it waited readTimeoutSeconds for the rest of the request")
        XCTAssertLessThan(waited, 8, "readTimeoutSeconds (2 s) ended it, not the 10 s default")
        XCTAssertEqual(try daemon.ctl(["status"]).code, 0, "and the daemon serves afterwards")
    }

    func testTheDaemonNotRunningIsExit5() throws {
        let dir = TempDir()
        var env = ProcessInfo.processInfo.environment
        env["BYOKD_SOCKET"] = dir.file("nothing.sock")
        let r = try Tools.run(Binaries.byokctl, ["status", "--json"], environment: env)
        XCTAssertEqual(r.code, 5)
        XCTAssertEqual((r.json?["error"] as? [String: Any])?["code"] as? String, "DAEMON_UNREACHABLE")
        XCTAssertTrue(r.err.contains("is byokd running?"), r.err)
        let w = try Tools.run(Binaries.byokctl, ["--help"], environment: env)
        XCTAssertEqual(w.code, 0)
    }

    func testSIGTERMStopsCleanly() throws {
        let (daemon, _) = try DaemonFixture.softHSM()
        XCTAssertEqual(daemon.stop(), 0, daemon.log)
        XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.socket), "the socket is removed")
        XCTAssertTrue(daemon.log.contains("stopping") && daemon.log.contains("stopped"), daemon.log)
    }

    func testConfigurationFileAndFlagsThatOverrideIt() throws {
        let dir = TempDir("byokd-daemon")
        let token = try SoftHSM.makeToken(in: dir)
        let config = dir.write("byokd.json", """
            {"module": "\(SoftHSM.module)", "token": "no-such-token", "pinFile": "\(token.pinFile)", "logLevel": "debug"}
            """)
        // The flag wins over the file's token.
        let daemon = try DaemonFixture(arguments: ["--config", config, "--token", token.label], environment: token.environment, dir: dir)
        XCTAssertEqual(try daemon.ctl(["status"]).code, 0)
        daemon.stop()
        // Without the flag the file's token is used, and its absence is a clear startup error.
        let d2 = try DaemonFixture(arguments: ["--config", config], environment: token.environment, dir: TempDir("byokd-daemon"), waitReady: false)
        d2.process.waitUntilExit()
        XCTAssertEqual(d2.process.terminationStatus, 3)
        XCTAssertTrue(d2.log.contains("no token matches label or serial \"no-such-token\""), d2.log)
        // A typo in the file is refused, not ignored.
        let bad = dir.write("bad.json", "{\"modul\": \"x\"}")
        let d3 = try DaemonFixture(arguments: ["--config", bad], dir: TempDir("byokd-daemon"), waitReady: false)
        d3.process.waitUntilExit()
        XCTAssertEqual(d3.process.terminationStatus, 2)
        XCTAssertTrue(d3.log.contains("unknown setting \"modul\""), d3.log)
    }

    func testAWrongPINIsAClearStartupErrorAndNeverLogged() throws {
        let dir = TempDir("byokd-daemon")
        let token = try SoftHSM.makeToken(in: dir)
        let wrong = dir.write("wrong-pin", "987654\n")
        let d = try DaemonFixture(arguments: ["--module", SoftHSM.module, "--token", token.label, "--pin-file", wrong],
                                  environment: token.environment, dir: dir, waitReady: false)
        d.process.waitUntilExit()
        XCTAssertEqual(d.process.terminationStatus, 3)
        XCTAssertTrue(d.log.contains("CKR_PIN_INCORRECT") && d.log.contains("the PIN is wrong"), d.log)
        XCTAssertFalse(d.log.contains("987654"))
        // And a good one, with its trailing newline, works; the PIN appears in no log line.
        let ok = try DaemonFixture(arguments: ["--module", SoftHSM.module, "--token", token.label, "--pin-file", token.pinFile, "--log-level", "trace"],
                                   environment: token.environment, dir: TempDir("byokd-daemon"))
        XCTAssertEqual(try ok.ctl(["keys", "generate", "--label", "k", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        ok.stop()
        XCTAssertFalse(ok.log.contains(token.pin), "the PIN must not be logged")
    }
}

/// The PIN from systemd's credential directory, SIGTERM with work in flight.
final class ServiceLifecycleTests: XCTestCase {
    func testThePINComesFromTheCredentialsDirectory() throws {
        let dir = TempDir("byokd-daemon")
        let token = try SoftHSM.makeToken(in: dir)
        let creds = dir.file("credentials")
        try FileManager.default.createDirectory(atPath: creds, withIntermediateDirectories: true)
        _ = dir.write("credentials/pin", token.pin + "\n")
        var env = token.environment
        env["CREDENTIALS_DIRECTORY"] = creds
        let d = try DaemonFixture(arguments: ["--module", SoftHSM.module, "--token", token.label], environment: env, dir: dir)
        XCTAssertEqual(try d.ctl(["keys", "generate", "--label", "k", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        // Without it, and without --pin-file, the daemon says what is missing.
        var bare = token.environment
        bare["CREDENTIALS_DIRECTORY"] = nil
        let none = try DaemonFixture(arguments: ["--module", SoftHSM.module, "--token", token.label], environment: bare,
                                     dir: TempDir("byokd-daemon"), waitReady: false)
        none.process.waitUntilExit()
        XCTAssertEqual(none.process.terminationStatus, 3)
        XCTAssertTrue(none.log.contains("LoadCredential=pin:/etc/byokd/pin"), none.log)
    }

    /// SIGTERM while a batch is streaming: the batch is shown to be in flight (its first results
    /// came, the client holds the rest back, and the audit log is short of the total after byokd
    /// logged "stopping"); then every entry still arrives, is audited, and byokd exits 0.
    func testSIGTERMLetsInFlightWrapsFinishAndBeAudited() throws {
        let (d, _) = try DaemonFixture.softHSM()
        XCTAssertEqual(try d.ctl(["keys", "generate", "--label", "a", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        let algorithm = try XCTUnwrap(["RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1"].first(where: try Verdicts.passed(d).contains), "an OAEP algorithm passed")
        let aws = try AWSSide.keyPair(bits: 2048)
        // Large import tokens make each result line ~7 kB: a group of results is more than the
        // socket holds, so byokd cannot finish the batch while the client is not reading.
        let params = AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken(4000)).base64EncodedString()
        let total = 400
        let entries = (0..<total).map { BatchWrapRequest.Entry(name: "e\($0)", key: "a", parameters: ParametersInput(awsJSON: params), wrappingAlgorithm: algorithm) }
        let auditPath = d.stateDir + "/audit.jsonl"
        func auditedBatchWraps() -> [Substring] {
            ((try? String(contentsOfFile: auditPath, encoding: .utf8)) ?? "").split(separator: "\n").filter { $0.contains("\"batchIndex\"") }
        }
        var results: [BatchResult] = []
        var auditedWhenStopping: Int?
        var stoppingLogged = false
        // One connection, closed after the batch (a kept-alive idle connection would hold byokd's
        // stop until its grace period ends).
        var client: DaemonClient? = DaemonClient(socketPath: d.socket, timeout: 120)
        _ = try client!.batch(BatchWrapRequest(entries: entries)) { r in
            if results.isEmpty {
                // The first result is here: the batch is under way. Stop byokd now, while this
                // callback keeps the client from reading on.
                kill(d.process.processIdentifier, SIGTERM)
                let deadline = Date().addingTimeInterval(30)
                while Date() < deadline, !d.log.contains("stopping") { usleep(10_000) }
                stoppingLogged = d.log.contains("stopping")
                auditedWhenStopping = auditedBatchWraps().count
            }
            results.append(r)
        }
        client = nil
        XCTAssertTrue(stoppingLogged, "byokd took the SIGTERM: \(d.log)")
        let inFlight = try XCTUnwrap(auditedWhenStopping)
        XCTAssertGreaterThan(inFlight, 0)
        XCTAssertLessThan(inFlight, total, "the batch was still in flight when byokd began stopping")
        print("SIGTERM with the batch in flight: \(inFlight) of \(total) wraps done and audited when byokd logged \"stopping\"")
        // The rest came anyway, every entry wrapped.
        XCTAssertEqual(results.map(\.index), Array(0..<total))
        XCTAssertEqual(results.filter { $0.result != nil && $0.error == nil }.count, total, "\(results.compactMap(\.error).first.map { "\($0)" } ?? "")")
        // byokd then stops on its own, cleanly, with every wrap on record in an intact chain.
        let deadline = Date().addingTimeInterval(60)
        while d.process.isRunning && Date() < deadline { usleep(20_000) }
        XCTAssertFalse(d.process.isRunning, "byokd stopped after the batch")
        XCTAssertEqual(d.stop(), 0, d.log)
        let audited = auditedBatchWraps()
        XCTAssertEqual(audited.count, total)
        XCTAssertEqual(audited.filter { $0.contains("\"result\":\"ok\"") }.count, total)
        XCTAssertEqual(try d.ctl(["audit", "verify", auditPath]).code, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: d.socket), "and then it stopped")
        XCTAssertTrue(d.log.contains("stopped"), d.log)
    }
}
