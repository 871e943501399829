import Foundation
import TestSupport
import XCTest

/// The mechanism self-test catches a token that lies: the forwarding module passes everything to
/// NSS softokn but wraps with OAEP SHA-1 whatever the parameters say (as SoftHSM 2.7.0 does for
/// CKM_RSA_AES_KEY_WRAP). The SHA-256 algorithms must end disabled and a wrap asking for one refused.
final class SelfTestTests: XCTestCase {
    func lyingDaemon() throws -> DaemonFixture {
        let dir = TempDir("byokd-daemon")
        let db = try NSSSoftokn.makeDatabase(in: dir)
        let env = ForwardingModule.environment(forwardingTo: NSSSoftokn.module, lieOAEPSHA1: true)
        return try DaemonFixture(arguments: ["--module", try ForwardingModule.path(), "--init-args", db.initArgs,
                                             "--token", NSSSoftokn.tokenLabel, "--pin-file", db.passwordFile], environment: env, dir: dir)
    }

    func states(_ json: [String: Any]?) -> [String: String] {
        Dictionary(uniqueKeysWithValues: ((json?["algorithms"] as? [[String: Any]]) ?? []).map { ($0["name"] as! String, $0["state"] as! String) })
    }

    func testALyingTokenIsCaughtAndItsAlgorithmsDisabled() throws {
        let daemon = try lyingDaemon()
        let status = try daemon.ctl(["status", "--json"])
        XCTAssertEqual(states(status.json), ["RSAES_OAEP_SHA_1": "passed", "RSAES_OAEP_SHA_256": "failed",
                                             "RSA_AES_KEY_WRAP_SHA_1": "passed", "RSA_AES_KEY_WRAP_SHA_256": "failed"])
        let reasons = (status.json?["algorithms"] as? [[String: Any]] ?? []).compactMap { $0["reason"] as? String }.joined()
        XCTAssertTrue(reasons.contains("does not decrypt with RSAES_OAEP_SHA_256's OAEP and MGF1 hashes"), reasons)
        XCTAssertTrue(daemon.log.contains("self-test: algorithm disabled"), daemon.log)
        let human = try daemon.ctl(["status"])
        XCTAssertTrue(human.out.contains("RSAES_OAEP_SHA_256        failed"), human.out)

        // A wrap that asks for a disabled algorithm is refused, and nothing is written.
        XCTAssertEqual(try daemon.ctl(["keys", "generate", "--label", "k", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        let aws = try AWSSide.keyPair(bits: 2048)
        let params = daemon.dir.write("p.json", AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken()))
        let out = daemon.dir.file("out")
        let r = try daemon.ctl(["wrap", "--key", "k", "--params", params, "--wrapping-algorithm", "RSAES_OAEP_SHA_256", "--out", out, "--json"])
        XCTAssertEqual(r.code, 3)
        let e = r.json?["error"] as? [String: Any]
        XCTAssertEqual(e?["code"] as? String, "TOKEN_LACKS_ALGORITHM")
        XCTAssertTrue((e?["message"] as? String ?? "").contains("caught it producing a wrong result"), r.out)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))

        // What passed is still right: SHA-1 wraps prove correct through the same lying module.
        let ok = try daemon.ctl(["wrap", "--key", "k", "--params", params, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--out", out, "--json"])
        XCTAssertEqual(ok.code, 0, ok.err)
        let key = try AWSSide.decryptOAEP(try Data(contentsOf: URL(fileURLWithPath: out + "/EncryptedKeyMaterial.bin")), with: aws, hash: "sha1")
        XCTAssertEqual(key.count, 32)
        XCTAssertEqual(try AWSSide.aesKCV(key), (ok.json?["manifest"] as? [String: Any]).flatMap { ($0["key"] as? [String: Any])?["kcv"] as? String })

        // `byokctl selftest` runs it again, with the same verdicts.
        let again = try daemon.ctl(["selftest", "--json"])
        XCTAssertEqual(again.code, 0, again.err)
        XCTAssertEqual(states(again.json)["RSAES_OAEP_SHA_256"], "failed")
        XCTAssertEqual(states(again.json)["RSAES_OAEP_SHA_1"], "passed")
    }

    func testAnHonestTokenThroughTheSameModulePassesEverything() throws {
        let dir = TempDir("byokd-daemon")
        let db = try NSSSoftokn.makeDatabase(in: dir)
        let env = ForwardingModule.environment(forwardingTo: NSSSoftokn.module)
        let daemon = try DaemonFixture(arguments: ["--module", try ForwardingModule.path(), "--init-args", db.initArgs,
                                                   "--token", NSSSoftokn.tokenLabel, "--pin-file", db.passwordFile], environment: env, dir: dir)
        // Everything the token can do, asked directly, passed; and nothing else.
        let passed = Set(states(try daemon.ctl(["status", "--json"]).json).filter { $0.value == "passed" }.keys)
        XCTAssertEqual(passed, try Verdicts.expected(nss: db))
    }
}
