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
        XCTAssertTrue(passed.contains("RSAES_OAEP_SHA_1"), "\(algorithms)")
        XCTAssertFalse(passed.contains("RSAES_OAEP_SHA_256"), "SoftHSM 2.6.1 cannot do OAEP with SHA-256")
        let human = try daemon.ctl(["status"])
        XCTAssertEqual(human.code, 0)
        XCTAssertTrue(human.out.contains("RSAES_OAEP_SHA_1") && human.out.contains(token.label), human.out)
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
            {"module": "\(SoftHSM.module)", "token": "\(token.label)", "pinFile": "\(token.pinFile)", "readTimeoutSeconds": 1}
            """)
        let daemon = try DaemonFixture(arguments: ["--config", config], environment: token.environment, dir: dir)
        // A client that sends half a request and then nothing.
        let slow = try Tools.run("python3", ["-c", """
            import socket,sys,time
            s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"POST /v1/keys HTTP/1.1\\r\\nContent-Length: 50\\r\\n\\r\\n{")
            t=time.time(); d=s.recv(4096); print(round(time.time()-t,1)); print(d.decode())
            """, daemon.socket])
        XCTAssertTrue(slow.out.contains("408") && slow.out.contains("REQUEST_TIMEOUT"), slow.out + slow.err)
        // Meanwhile (and after) others are served.
        XCTAssertEqual(try daemon.ctl(["status"]).code, 0)
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

    func testSIGTERMLetsInFlightWrapsFinishAndBeAudited() throws {
        let (d, _) = try DaemonFixture.softHSM()
        XCTAssertEqual(try d.ctl(["keys", "generate", "--label", "a", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        let aws = try AWSSide.keyPair(bits: 2048)
        _ = d.dir.write("p.json", AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken()))
        let lines = (0..<400).map { "{\"key\": \"a\", \"params\": \"p.json\", \"out\": \"o/\($0)\"}" }.joined(separator: "\n")
        let file = d.dir.write("batch.jsonl", lines + "\n")
        let client = Process()
        client.executableURL = URL(fileURLWithPath: Binaries.byokctl)
        client.arguments = ["wrap", "--batch", file, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--json"]
        var env = ProcessInfo.processInfo.environment
        env["BYOKD_SOCKET"] = d.socket
        client.environment = env
        let out = Pipe()
        client.standardOutput = out
        client.standardError = FileHandle.nullDevice
        try client.run()
        // Stop the daemon once the batch is under way.
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline, (try? FileManager.default.contentsOfDirectory(atPath: d.dir.file("o")))?.isEmpty ?? true { usleep(2000) }
        XCTAssertEqual(d.stop(), 0, d.log)
        // Read before waiting: the --json summary (one entry per wrap) is larger than a pipe holds.
        let printed = out.fileHandleForReading.readDataToEndOfFile()
        client.waitUntilExit()
        XCTAssertEqual(client.terminationStatus, 0, "the batch in flight finished")
        let summary = try JSONSerialization.jsonObject(with: printed) as? [String: Any]
        XCTAssertEqual(summary?["succeeded"] as? Int, 400)
        let audit = try String(contentsOfFile: d.stateDir + "/audit.jsonl", encoding: .utf8)
        XCTAssertEqual(audit.split(separator: "\n").filter { $0.contains("\"batchIndex\"") && $0.contains("\"result\":\"ok\"") }.count, 400)
        XCTAssertFalse(FileManager.default.fileExists(atPath: d.socket), "and then it stopped")
    }
}
