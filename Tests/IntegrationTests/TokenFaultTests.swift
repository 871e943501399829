import Foundation
import TestSupport
import XCTest

/// Token faults survived: after CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT, CKR_SESSION_HANDLE_INVALID,
/// CKR_SESSION_CLOSED or CKR_USER_NOT_LOGGED_IN the daemon reopens its sessions and logs in again,
/// instead of failing until restarted. The forwarding module (to SoftHSM) fails on command.
final class TokenFaultTests: XCTestCase {
    var daemon: DaemonFixture!
    var faults: String!
    var params: String!
    var aws: AWSSide.WrappingKeyPair!

    override func setUpWithError() throws {
        let dir = TempDir("byokd-daemon")
        let token = try SoftHSM.makeToken(in: dir)
        faults = dir.file("faults")
        let env = ForwardingModule.environment(forwardingTo: SoftHSM.module, faultFile: faults, base: token.environment)
        daemon = try DaemonFixture(arguments: ["--module", try ForwardingModule.path(), "--token", token.label, "--pin-file", token.pinFile],
                                   environment: env, dir: dir)
        XCTAssertEqual(try daemon.ctl(["keys", "generate", "--label", "k", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        aws = try AWSSide.keyPair(bits: 2048)
        params = dir.write("p.json", AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken()))
    }

    override func tearDown() { daemon = nil }

    func wrap(_ n: Int) throws -> Tools.Result {
        try daemon.ctl(["wrap", "--key", "k", "--params", params, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--out", daemon.dir.file("out\(n)"), "--json"])
    }

    func errorCode(_ r: Tools.Result) -> String? { (r.json?["error"] as? [String: Any])?["code"] as? String }

    func reconnects() -> Int { daemon.log.components(separatedBy: "token reconnected").count - 1 }

    func testEachSessionLossIsFollowedByAReconnect() throws {
        let kcv = try XCTUnwrap((try daemon.ctl(["keys", "list", "--json"]).json?["keys"] as? [[String: Any]])?.first?["kcv"] as? String)
        var n = 0
        for rv in ["CKR_DEVICE_REMOVED", "CKR_TOKEN_NOT_PRESENT", "CKR_SESSION_HANDLE_INVALID", "CKR_SESSION_CLOSED", "CKR_USER_NOT_LOGGED_IN"] {
            let before = reconnects()
            // Twice: the wrap fails, reconnects, retries once, and fails again; so the operator sees it.
            try ForwardingModule.setFaults(["C_WrapKey \(rv) 2"], file: faults)
            n += 1
            let failed = try wrap(n)
            XCTAssertEqual(failed.code, 3, "\(rv): \(failed.out)")
            XCTAssertEqual(errorCode(failed), "TOKEN_UNAVAILABLE", rv)
            XCTAssertTrue(failed.err.contains(rv), failed.err)
            XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.dir.file("out\(n)")))
            // The next request works without a restart.
            n += 1
            let ok = try wrap(n)
            XCTAssertEqual(ok.code, 0, "\(rv): after the fault: \(ok.err)")
            // It is the same key, wrapped correctly, on the new sessions.
            let key = try AWSSide.decryptOAEP(try Data(contentsOf: URL(fileURLWithPath: daemon.dir.file("out\(n)/EncryptedKeyMaterial.bin"))), with: aws, hash: "sha1")
            XCTAssertEqual(try AWSSide.aesKCV(key), kcv, rv)
            // And it took a reconnect (sessions reopened, logged in again) to get there.
            XCTAssertGreaterThan(reconnects(), before, "\(rv) was followed by a reconnect:\n\(daemon.log)")
            XCTAssertTrue(daemon.log.contains("retrying once after reconnecting") && daemon.log.contains(rv), rv)
            XCTAssertEqual(try daemon.ctl(["status", "--json"]).json?["tokenAvailable"] as? Bool, true, rv)
        }
    }

    func testAOnceOnlyLossIsRetriedTransparently() throws {
        try ForwardingModule.setFaults(["C_WrapKey CKR_DEVICE_REMOVED 1"], file: faults)
        let r = try wrap(1)
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(daemon.log.contains("retrying once after reconnecting"), daemon.log)
    }

    func testRealSessionLossFromTheTokenIsSurvived() throws {
        // The token itself forgets every session and the login (as after a device reset).
        try ForwardingModule.setFaults(["CLOSE_ALL_SESSIONS"], file: faults)
        let r = try wrap(1)
        XCTAssertEqual(r.code, 0, "\(r.err)\n\(daemon.log)")
        let list = try daemon.ctl(["keys", "list", "--json"])
        XCTAssertEqual(list.code, 0)
        XCTAssertEqual((list.json?["keys"] as? [[String: Any]])?.count, 1)
    }

    func testStatusSaysTheTokenIsUnavailableMeanwhile() throws {
        try ForwardingModule.setFaults(["C_WrapKey CKR_DEVICE_REMOVED 2", "C_GetSlotList CKR_DEVICE_REMOVED 1000", "C_OpenSession CKR_TOKEN_NOT_PRESENT 1000"], file: faults)
        XCTAssertEqual(errorCode(try wrap(1)), "TOKEN_UNAVAILABLE")
        let status = try daemon.ctl(["status", "--json"])
        XCTAssertEqual(status.code, 0, "status answers even without a token")
        XCTAssertEqual(status.json?["tokenAvailable"] as? Bool, false)
        XCTAssertTrue((status.json?["tokenError"] as? String ?? "").contains("CKR_"), status.out)
        XCTAssertTrue(try daemon.ctl(["status"]).out.contains("UNAVAILABLE"))
        let during = try daemon.ctl(["keys", "list", "--json"])
        XCTAssertEqual(during.code, 3)
        XCTAssertEqual(errorCode(during), "TOKEN_UNAVAILABLE")
        // The token comes back.
        try ForwardingModule.setFaults([], file: faults)
        XCTAssertEqual(try daemon.ctl(["status", "--json"]).json?["tokenAvailable"] as? Bool, true)
        XCTAssertEqual(try wrap(2).code, 0)
    }

    /// One wrap is one C_WrapKey into a buffer of the right size: no size query first (the token
    /// does the whole RSA operation for a query too). Counted by the forwarding module.
    func testAWrapIsOneCWrapKeyCall() throws {
        let dir = TempDir("byokd-daemon")
        let token = try SoftHSM.makeToken(in: dir)
        let log = dir.file("wraps.log")
        var env = ForwardingModule.environment(forwardingTo: SoftHSM.module, faultFile: dir.file("none"), base: token.environment)
        env["BYOK_TEST_WRAP_LOG"] = log
        let d = try DaemonFixture(arguments: ["--module", try ForwardingModule.path(), "--token", token.label, "--pin-file", token.pinFile],
                                  environment: env, dir: dir)
        XCTAssertEqual(try d.ctl(["keys", "generate", "--label", "k", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        let p = dir.write("p.json", AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken()))
        try? FileManager.default.removeItem(atPath: log)  // the self-test's wraps
        for n in 0..<3 {
            let r = try d.ctl(["wrap", "--key", "k", "--params", p, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--out", dir.file("o\(n)")])
            XCTAssertEqual(r.code, 0, r.err)
            let key = try AWSSide.decryptOAEP(try Data(contentsOf: URL(fileURLWithPath: dir.file("o\(n)/EncryptedKeyMaterial.bin"))), with: aws, hash: "sha1")
            XCTAssertEqual(key.count, 32)
        }
        let calls = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(calls, ["C_WrapKey fill", "C_WrapKey fill", "C_WrapKey fill"])
    }
}
