import Foundation
import TestSupport
import XCTest

/// A hostile local client cannot starve the daemon: answers must be taken within
/// `writeTimeoutSeconds`, one user holds at most `maxConnectionsPerUser` connections, and
/// requests waiting for approval are bounded. Attackers are Python processes on the local socket,
/// bounded in connections and time; they stop by themselves.
final class ClientLimitTests: XCTestCase {
    static let nobody: UInt32 = 65534

    /// Opens `connections` connections that pipeline many requests and never read an answer,
    /// holds them `hold` seconds, then exits. Prints "ready" once all are sent.
    static let neverReads = """
        import socket, sys, time
        path, n, hold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
        req = b"GET /v1/status HTTP/1.1\\r\\nHost: byokd\\r\\n\\r\\n" * 4000
        socks = []
        for i in range(n):
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(path)
                s.setblocking(False)
                s.send(req)
            except OSError:
                pass
            socks.append(s)
        print("ready", flush=True)
        time.sleep(hold)
        """

    /// Keeps up to `n` connections that send a request line and then a header byte every 0.3 s
    /// (never finishing), reopening any the daemon closes, for `hold` seconds.
    static let slowloris = """
        import socket, sys, time
        path, n, hold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
        end = time.time() + hold
        def opened():
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(path)
                s.send(b"GET /v1/status HTTP/1.1\\r\\nX-Slow: ")
                return s
            except OSError:
                return None
        socks = [opened() for i in range(n)]
        print("ready", flush=True)
        while time.time() < end:
            for i, s in enumerate(socks):
                try:
                    s.send(b"a")
                except (OSError, AttributeError):
                    if s is not None:
                        s.close()
                    time.sleep(0.02)
                    socks[i] = opened()
            time.sleep(0.3)
        """

    /// A daemon on a fresh SoftHSM token, its socket open to other users.
    func daemon(_ extraConfig: String) throws -> DaemonFixture {
        let dir = TempDir("byokd-daemon")
        chmod(dir.path, 0o755)
        let token = try SoftHSM.makeToken(in: dir)
        let config = dir.write("byokd.json", """
            {"module": "\(SoftHSM.module)", "token": "\(token.label)", "pinFile": "\(token.pinFile)", "socketMode": "0666"\(extraConfig)}
            """)
        return try DaemonFixture(arguments: ["--config", config], environment: token.environment, dir: dir)
    }

    /// Starts an attacker script (as `uid`, if given) and waits until it says it is ready.
    func attack(_ script: String, _ args: [String], as uid: UInt32? = nil) throws -> Process {
        let p = Process()
        // Another user cannot run root's python (e.g. a pyenv shim under /root): the system's.
        let python = uid != nil && FileManager.default.isExecutableFile(atPath: "/usr/bin/python3") ? "/usr/bin/python3" : Tools.resolve("python3")
        if let uid {
            p.executableURL = URL(fileURLWithPath: Tools.resolve("setpriv"))
            p.arguments = ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", python, "-c", script] + args
        } else {
            p.executableURL = URL(fileURLWithPath: python)
            p.arguments = ["-c", script] + args
        }
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let ready = out.fileHandleForReading.availableData
        XCTAssertTrue(String(decoding: ready, as: UTF8.self).contains("ready"), "the attacker did not start")
        return p
    }

    /// Runs `status` and returns (exit code, seconds it took).
    func timedStatus(_ d: DaemonFixture) throws -> (Int32, Double) {
        let started = Date()
        let r = try d.ctl(["status", "--json"])
        return (r.code, Date().timeIntervalSince(started))
    }

    func testAClientThatNeverReadsIsDisconnectedAfterTheWriteTimeout() throws {
        // Root is not capped per user, so these four connections can take every slot.
        let d = try daemon(", \"maxConnections\": 4, \"writeTimeoutSeconds\": 1")
        let attacker = try attack(Self.neverReads, [d.socket, "4", "20"])
        defer { attacker.terminate(); attacker.waitUntilExit() }
        let started = Date()
        var served: Double?
        while Date().timeIntervalSince(started) < 15 {
            if try timedStatus(d).0 == 0 { served = Date().timeIntervalSince(started); break }
            usleep(100_000)
        }
        let after = try XCTUnwrap(served, "an honest client got no answer for 15 s while four never-reading clients held every connection")
        XCTAssertLessThan(after, 6, "served only after \(after) s; the write timeout is 1 s")
        XCTAssertTrue(d.log.contains("did not read its answer in time"), d.log)
    }

    func testSlowlorisAndNeverReadingClientsLeaveRoomForOthers() throws {
        // The defaults: 64 connections, 16 per user. One user keeps 70 slow connections going,
        // another holds 20 that never read.
        let d = try daemon("")
        let slow = try attack(Self.slowloris, [d.socket, "70", "12"], as: Self.nobody)
        defer { slow.terminate(); slow.waitUntilExit() }
        let stuck = try attack(Self.neverReads, [d.socket, "20", "12"], as: Self.nobody - 1)
        defer { stuck.terminate(); stuck.waitUntilExit() }
        var times: [Double] = []
        for _ in 0..<10 {
            let (code, seconds) = try timedStatus(d)
            XCTAssertEqual(code, 0, "an honest client was refused while one user held connections open")
            times.append(seconds)
            usleep(300_000)
        }
        XCTAssertLessThan(times.max() ?? 99, 1.0, "honest status took \(times) s")
        XCTAssertTrue(slow.isRunning, "the attack lasted the whole test")
    }

    func testPendingApprovalsPastTheBoundAreRefused() throws {
        let d = try daemon("""
            , "twoPersonRule": ["keys.generate", "wrap"], "maxPendingApprovals": 3, "maxPendingApprovalsPerUser": 2,
            "access": {"keys.generate": ["uid:0", "uid:65534"], "wrap": ["uid:0", "uid:65534"]}
            """)
        func ask(_ label: String, as uid: UInt32? = nil) throws -> (Int, String) {
            let body = "{\"label\": \"\(label)\", \"spec\": \"SYMMETRIC_DEFAULT\"}"
            let curl = ["curl", "-sS", "-w", "\n%{http_code}", "--unix-socket", d.socket, "-X", "POST", "-d", body, "http://byokd/v1/keys"]
            let r = uid.map { try? Tools.run("setpriv", ["--reuid=\($0)", "--regid=\($0)", "--clear-groups"] + curl) }
                ?? (try? Tools.run(curl[0], Array(curl.dropFirst())))
            let out = r?.out ?? ""
            return (Int(out.split(separator: "\n").last ?? "") ?? 0, out)
        }
        XCTAssertEqual(try ask("a1").0, 202)
        XCTAssertEqual(try ask("a2").0, 202)
        let mine = try ask("a3")
        XCTAssertEqual(mine.0, 429, mine.1)
        XCTAssertTrue(mine.1.contains("PENDING_LIMIT") && mine.1.contains("maxPendingApprovalsPerUser"), mine.1)
        XCTAssertEqual(try ask("b1", as: Self.nobody).0, 202)
        let all = try ask("b2", as: Self.nobody)
        XCTAssertEqual(all.0, 429, all.1)
        XCTAssertTrue(all.1.contains("PENDING_LIMIT") && all.1.contains("maxPendingApprovals)"), all.1)
        XCTAssertEqual((try d.ctl(["pending", "--json"]).json?["pending"] as? [[String: Any]])?.count, 3)

        // A held request is small: one carrying 1 MiB of "parameters" is refused, not kept.
        let big = Data(count: 1 << 20).base64EncodedString()
        let body = d.dir.write("big.json", "{\"key\": \"k\", \"parameters\": {\"awsJSON\": \"\(big)\"}}")
        let r = try Tools.run("curl", ["-sS", "-w", "\n%{http_code}", "--unix-socket", d.socket, "-X", "POST", "--data-binary", "@\(body)", "http://byokd/v1/wrap"])
        XCTAssertTrue(r.out.hasSuffix("413") && r.out.contains("REQUEST_TOO_LARGE"), r.out)
        XCTAssertEqual((try d.ctl(["pending", "--json"]).json?["pending"] as? [[String: Any]])?.count, 3)
    }
}
