import Foundation
import TestSupport
import XCTest

/// Nothing leaves the HSM except to AWS: a wrapping key a requester supplies needs its fingerprint
/// confirmed by the approver, a host can refuse such keys outright, escape sequences are shown
/// escaped, and with `trustedWrapping` the token itself refuses every wrap the Security Officer
/// did not trust. Operators are root (requester) and nobody (second person), as in CeremonyTests.
final class WrappingKeyTrustTests: XCTestCase {
    static let nobody: UInt32 = 65534
    static let soPIN = "12345678"  // what SoftHSM.makeToken sets

    struct Setup {
        let daemon: DaemonFixture
        let token: SoftHSM.Token
    }

    func daemon(_ extraConfig: String) throws -> Setup {
        let dir = TempDir("byokd-daemon")
        chmod(dir.path, 0o755)
        let token = try SoftHSM.makeToken(in: dir, pin: "trust-pin-2817")
        let config = dir.write("byokd.json", """
            {"module": "\(SoftHSM.module)", "token": "\(token.label)", "pinFile": "\(token.pinFile)", "socketMode": "0666"\(extraConfig)}
            """)
        return Setup(daemon: try DaemonFixture(arguments: ["--config", config], environment: token.environment, dir: dir), token: token)
    }

    func ctlAs(_ uid: UInt32, _ d: DaemonFixture, _ args: [String]) throws -> Tools.Result {
        var env = ProcessInfo.processInfo.environment
        env["BYOKD_SOCKET"] = d.socket
        return try Tools.run("setpriv", ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", Binaries.byokctl] + args, environment: env)
    }

    func auditRecords(_ d: DaemonFixture) throws -> [[String: Any]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: d.stateDir + "/audit.jsonl"))
        return try data.split(separator: UInt8(ascii: "\n")).map { try JSONSerialization.jsonObject(with: Data($0)) as! [String: Any] }
    }

    /// A byokctl run in the background (the requester, who waits for the second person).
    final class Background {
        let process = Process()
        let out = Pipe(), err = Pipe()
        init(_ d: DaemonFixture, _ args: [String]) throws {
            process.executableURL = URL(fileURLWithPath: Binaries.byokctl)
            process.arguments = args
            var env = ProcessInfo.processInfo.environment
            env["BYOKD_SOCKET"] = d.socket
            process.environment = env
            process.standardOutput = out
            process.standardError = err
            try process.run()
        }
        func finish() -> (code: Int32, out: String, err: String) {
            let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
        }
    }

    func firstPending(_ d: DaemonFixture) throws -> [String: Any] {
        for _ in 0..<200 {
            if let first = (try d.ctl(["pending", "--json"]).json?["pending"] as? [[String: Any]])?.first { return first }
            usleep(50_000)
        }
        throw FixtureError("nothing became pending")
    }

    func sha256(_ data: Data) throws -> String {
        String(try Tools.check("sha256sum", [], stdin: data).out.prefix(64))
    }

    func errorCode(_ r: Tools.Result) -> String? { (r.json?["error"] as? [String: Any])?["code"] as? String }

    // MARK: Provenance and the approver's view

    func testAnApproverMustStateTheFingerprintOfAWrappingKeyTheRequesterSupplied() throws {
        let s = try daemon(#", "twoPersonRule": ["wrap"], "access": {"approve": ["uid:0", "uid:65534"]}"#)
        let d = s.daemon
        let gen = try d.ctl(["keys", "generate", "--label", "k1", "--spec", "SYMMETRIC_DEFAULT", "--json"])
        let kcv = try XCTUnwrap(gen.json?["kcv"] as? String, gen.out)
        // The requester's "AWS parameters" are their own key pair: exactly the exfiltration attempt.
        let own = try AWSSide.keyPair(bits: 2048)
        let params = d.dir.write("p.json", AWSSide.cliJSON(publicKey: own.publicDER, importToken: AWSSide.randomImportToken()))
        let fingerprint = try sha256(own.publicDER)
        let out = d.dir.file("out")
        let requester = try Background(d, ["wrap", "--key", "k1", "--params", params, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--out", out, "--json"])

        let pending = try firstPending(d)
        XCTAssertEqual(pending["wrappingPublicKeySha256"] as? String, fingerprint)
        XCTAssertEqual(pending["wrappingKeySource"] as? String, "operator")
        XCTAssertEqual(pending["confirmWrappingKey"] as? Bool, true)
        XCTAssertEqual(pending["wrappingAlgorithm"] as? String, "RSAES_OAEP_SHA_1")
        XCTAssertEqual(pending["needs"] as? String, "approve")
        XCTAssertNotNil(pending["parametersValidTo"] as? String)
        XCTAssertEqual(pending["kmsKeyId"] as? String, AWSSide.keyArn)
        let key = try XCTUnwrap(pending["key"] as? [String: Any])
        XCTAssertEqual(key["label"] as? String, "k1")
        XCTAssertEqual(key["fingerprint"] as? String, kcv)
        XCTAssertEqual(key["spec"] as? String, "SYMMETRIC_DEFAULT")
        let id = try XCTUnwrap(pending["id"] as? String)
        let human = try ctlAs(Self.nobody, d, ["pending"])
        XCTAssertTrue(human.out.contains(fingerprint) && human.out.contains("supplied by the requester") && human.out.contains(kcv), human.out)

        // A rubber stamp does not pass; a wrong or short fingerprint neither.
        let stamp = try ctlAs(Self.nobody, d, ["approve", id, "--json"])
        XCTAssertEqual(stamp.code, 2, stamp.err)
        XCTAssertEqual(errorCode(stamp), "WRAPPING_KEY_UNCONFIRMED")
        let short = try ctlAs(Self.nobody, d, ["approve", id, "--wrapping-key-sha256", String(fingerprint.prefix(8)), "--json"])
        XCTAssertEqual(errorCode(short), "WRAPPING_KEY_UNCONFIRMED")
        let wrong = try ctlAs(Self.nobody, d, ["approve", id, "--wrapping-key-sha256", String(repeating: "ab", count: 8), "--json"])
        XCTAssertEqual(wrong.code, 4, wrong.err)
        XCTAssertEqual(errorCode(wrong), "DENIED")
        XCTAssertTrue(requester.process.isRunning, "still waiting")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/EncryptedKeyMaterial.bin"), "nothing written while it waits")

        // The approver who checked the key approves; the wrap is what was shown.
        let ok = try ctlAs(Self.nobody, d, ["approve", id, "--wrapping-key-sha256", String(fingerprint.prefix(20)).uppercased()])
        XCTAssertEqual(ok.code, 0, ok.err)
        let r = requester.finish()
        XCTAssertEqual(r.code, 0, r.err)
        let manifest = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/manifest.json"))) as? [String: Any])
        XCTAssertEqual(manifest["wrappingKeySource"] as? String, "operator")
        XCTAssertEqual(manifest["wrappingPublicKeySha256"] as? String, fingerprint)
        let records = try auditRecords(d)
        let done = try XCTUnwrap(records.first { $0["operation"] as? String == "wrap" && $0["result"] as? String == "ok" })
        XCTAssertEqual(done["wrappingKeySource"] as? String, "operator")
        XCTAssertEqual((done["approvedBy"] as? [String: Any])?["uid"] as? Int, Int(Self.nobody))
        XCTAssertEqual(records.filter { $0["operation"] as? String == "approve" && $0["result"] as? String == "denied" }.count, 1,
                       "the wrong fingerprint is on record as denied")
    }

    func testParametersThatExpireWhileAWrapWaitsForApprovalAreRefusedWhenApproved() throws {
        let s = try daemon(#", "twoPersonRule": ["wrap"], "access": {"approve": ["uid:0", "uid:65534"]}"#)
        let d = s.daemon
        XCTAssertEqual(try d.ctl(["keys", "generate", "--label", "k1", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        let aws = try AWSSide.keyPair(bits: 2048)
        let params = d.dir.write("p.json", AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken(),
                                                           validTo: Date().addingTimeInterval(2).timeIntervalSince1970))
        let out = d.dir.file("out")
        let requester = try Background(d, ["wrap", "--key", "k1", "--params", params, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--out", out, "--json"])
        let id = try XCTUnwrap(try firstPending(d)["id"] as? String)
        sleep(3)
        let ok = try ctlAs(Self.nobody, d, ["approve", id, "--wrapping-key-sha256", try sha256(aws.publicDER)])
        XCTAssertEqual(ok.code, 0, "the approval ran; the wrap it released failed: \(ok.out)")
        XCTAssertTrue(ok.out.contains("PARAMS_EXPIRED"), ok.out)
        let r = requester.finish()
        XCTAssertEqual(r.code, 2, r.err)
        XCTAssertTrue(r.err.contains("PARAMS_EXPIRED"), r.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }

    func testAnOnlineHostCanRefuseWrappingKeysThatClientsSend() throws {
        let s = try daemon(#", "wrappingKeySources": ["kms"]"#)
        let d = s.daemon
        XCTAssertEqual(try d.ctl(["keys", "generate", "--label", "k1", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        let aws = try AWSSide.keyPair(bits: 2048)
        let params = d.dir.write("p.json", AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken()))
        let out = d.dir.file("out")
        let r = try d.ctl(["wrap", "--key", "k1", "--params", params, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--out", out, "--json"])
        XCTAssertEqual(r.code, 4, r.err)
        XCTAssertEqual(errorCode(r), "WRAPPING_KEY_SOURCE_REFUSED")
        XCTAssertTrue(r.err.contains("kms import"), r.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        XCTAssertEqual(try auditRecords(d).last?["errorCode"] as? String, "WRAPPING_KEY_SOURCE_REFUSED")
        let bad = try DaemonFixture(arguments: ["--config", d.dir.write("bad.json", #"{"module": "\#(SoftHSM.module)", "wrappingKeySources": ["email"]}"#)],
                                    environment: s.token.environment, dir: TempDir("byokd-daemon"), waitReady: false)
        bad.process.waitUntilExit()
        XCTAssertNotEqual(bad.process.terminationStatus, 0)
        XCTAssertTrue(bad.log.contains("wrappingKeySources"), bad.log)
    }

    func testControlCharactersAreRefusedInLabelsAndShownEscapedEverywhere() throws {
        let s = try daemon(#", "twoPersonRule": ["wrap"], "access": {"approve": ["uid:0", "uid:65534"]}"#)
        let d = s.daemon
        let evil = "k\u{1B}[2K\rkeys generate"
        let refused = try d.ctl(["keys", "generate", "--label", evil, "--spec", "SYMMETRIC_DEFAULT", "--json"])
        XCTAssertEqual(errorCode(refused), "KEY_LABEL_INVALID")
        XCTAssertFalse(refused.err.contains("\u{1B}"), "the refusal shows it escaped")
        XCTAssertTrue(refused.err.contains("\\u{1B}"), refused.err)
        XCTAssertEqual(try d.ctl(["keys", "generate", "--label", "k1", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        // A KMS key id with an escape sequence, as the requester's own text.
        let aws = try AWSSide.keyPair(bits: 2048)
        let params = d.dir.write("p.json", AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken(),
                                                           keyId: "arn:aws:kms:eu-west-1:1:key/x\u{1B}[1A\u{1B}[2Kgenerate HMAC_256 key \"harmless\"\n"))
        let requester = try Background(d, ["wrap", "--key", "k1", "--params", params, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--out", d.dir.file("out"), "--json"])
        _ = try firstPending(d)
        let human = try ctlAs(Self.nobody, d, ["pending"])
        XCTAssertFalse(human.out.contains("\u{1B}"), "no escape sequence reaches the approver's terminal")
        XCTAssertTrue(human.out.contains("\\u{1B}[1A"), human.out)
        let json = try ctlAs(Self.nobody, d, ["pending", "--json"])
        XCTAssertFalse(json.out.contains("\\u001b"), "nor the JSON view")
        requester.process.terminate()
        _ = requester.finish()
        XCTAssertFalse(d.log.contains("\u{1B}"), "nor the daemon's log")
    }

    // MARK: Trusted wrapping: the token as the last line

    func testWithTrustedWrappingTheTokenRefusesEveryWrapTheSecurityOfficerDidNotTrust() throws {
        let s = try daemon(#", "trustedWrapping": true, "access": {"trust": ["uid:65534"], "approve": ["uid:0", "uid:65534"]}"#)
        let d = s.daemon
        let status = try d.ctl(["status", "--json"])
        XCTAssertTrue((status.json?["trustedWrapping"] as? String ?? "").hasPrefix("enforced by the token"), status.out)
        let gen = try d.ctl(["keys", "generate", "--label", "guarded", "--spec", "SYMMETRIC_DEFAULT", "--json"])
        let kcv = try XCTUnwrap(gen.json?["kcv"] as? String, gen.out)
        let keyID = try XCTUnwrap(gen.json?["id"] as? String)

        // The token itself, asked by another tool with the user PIN: an untrusted key cannot wrap it.
        let own = try AWSSide.keyPair(bits: 2048)
        let pub = d.dir.write("own.der", own.publicDER)
        let tool = ["--module", SoftHSM.module, "--token-label", s.token.label, "--login", "--pin", s.token.pin]
        try Tools.check("pkcs11-tool", tool + ["--write-object", pub, "--type", "pubkey", "--id", "ee01", "--label", "own", "--usage-wrap"],
                        environment: s.token.environment)
        let attempt = try Tools.run("pkcs11-tool", tool + ["--wrap", "--mechanism", "RSA-PKCS", "--id", "ee01", "--application-id", keyID,
                                                            "--output-file", d.dir.file("stolen.bin")], environment: s.token.environment)
        XCTAssertNotEqual(attempt.code, 0)
        XCTAssertTrue((attempt.out + attempt.err).contains("CKR_KEY_NOT_WRAPPABLE"), attempt.out + attempt.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: d.dir.file("stolen.bin")))

        // Through byokd: the wrap waits for the Security Officer; an approval is not enough.
        let params = d.dir.write("p.json", AWSSide.cliJSON(publicKey: own.publicDER, importToken: AWSSide.randomImportToken()))
        let fingerprint = try sha256(own.publicDER)
        let out = d.dir.file("out")
        let requester = try Background(d, ["wrap", "--key", "guarded", "--params", params, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--out", out, "--json"])
        let pending = try firstPending(d)
        XCTAssertEqual(pending["needs"] as? String, "trust")
        let id = try XCTUnwrap(pending["id"] as? String)
        let approve = try ctlAs(Self.nobody, d, ["approve", id, "--wrapping-key-sha256", fingerprint, "--json"])
        XCTAssertEqual(approve.code, 2, approve.out)
        XCTAssertTrue(approve.err.contains("byokctl trust"), approve.err)

        let soPinFile = d.dir.write("so-pin", Self.soPIN + "\n")
        chmod(soPinFile, 0o644)
        // The requester cannot be their own Security Officer; a wrong PIN or fingerprint does nothing.
        let selfTrust = try d.ctl(["trust", id, "--wrapping-key-sha256", fingerprint, "--so-pin-file", soPinFile, "--json"])
        XCTAssertEqual(selfTrust.code, 4, selfTrust.err)
        let wrongFP = try ctlAs(Self.nobody, d, ["trust", id, "--wrapping-key-sha256", String(repeating: "0", count: 16), "--so-pin-file", soPinFile, "--json"])
        XCTAssertEqual(errorCode(wrongFP), "DENIED")
        let wrongPIN = d.dir.write("bad-so-pin", "87654321\n")
        chmod(wrongPIN, 0o644)
        let badPIN = try ctlAs(Self.nobody, d, ["trust", id, "--wrapping-key-sha256", fingerprint, "--so-pin-file", wrongPIN, "--json"])
        XCTAssertEqual(badPIN.code, 0, "the trust step ran and its outcome (a failed SO login) went to the requester: \(badPIN.err)")
        let failed = requester.finish()
        XCTAssertNotEqual(failed.code, 0)
        XCTAssertTrue(failed.err.contains("Security Officer login"), failed.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        XCTAssertEqual(try d.ctl(["status", "--json"]).json?["tokenAvailable"] as? Bool, true, "the user is logged in again")

        // Again, and the Security Officer trusts it: the wrap is proven by unwrapping in software.
        let again = try Background(d, ["wrap", "--key", "guarded", "--params", params, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--out", out, "--json"])
        let id2 = try XCTUnwrap(try firstPending(d)["id"] as? String)
        let trusted = try ctlAs(Self.nobody, d, ["trust", id2, "--wrapping-key-sha256", String(fingerprint.prefix(16)), "--so-pin-file", soPinFile])
        XCTAssertEqual(trusted.code, 0, trusted.err)
        let done = again.finish()
        XCTAssertEqual(done.code, 0, done.err)
        let blob = try Data(contentsOf: URL(fileURLWithPath: out + "/EncryptedKeyMaterial.bin"))
        let material = try AWSSide.decryptOAEP(blob, with: own, hash: "sha1")
        XCTAssertEqual(material.count, 32, "exactly the key")
        XCTAssertEqual(try AWSSide.aesKCV(material), kcv)
        let manifest = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/manifest.json"))) as? [String: Any])
        XCTAssertEqual(manifest["trustedBySecurityOfficer"] as? Bool, true)
        let record = try XCTUnwrap(try auditRecords(d).last { $0["operation"] as? String == "wrap" && $0["result"] as? String == "ok" })
        XCTAssertEqual((record["trustedBy"] as? [String: Any])?["uid"] as? Int, Int(Self.nobody))

        // Nothing trusted stays on the token, and the token still refuses the untrusted key.
        let objects = try Tools.check("pkcs11-tool", tool + ["--list-objects"], environment: s.token.environment).out
        XCTAssertFalse(objects.contains("byokd-trusted-for-"), objects)
        let stillRefused = try Tools.run("pkcs11-tool", tool + ["--wrap", "--mechanism", "RSA-PKCS", "--id", "ee01", "--application-id", keyID,
                                                                 "--output-file", d.dir.file("stolen2.bin")], environment: s.token.environment)
        XCTAssertTrue((stillRefused.out + stillRefused.err).contains("CKR_KEY_NOT_WRAPPABLE"))
    }

    func testBatchesAndKeysMadeElsewhereAreRefusedUnderTrustedWrapping() throws {
        let s = try daemon(#", "trustedWrapping": true"#)
        let d = s.daemon
        try Tools.check("pkcs11-tool", ["--module", SoftHSM.module, "--token-label", s.token.label, "--login", "--pin", s.token.pin,
                                        "--keygen", "--key-type", "AES:32", "--label", "plain", "--id", "0c0c", "--sensitive", "--extractable"],
                        environment: s.token.environment)
        let aws = try AWSSide.keyPair(bits: 2048)
        let params = d.dir.write("p.json", AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken()))
        let r = try d.ctl(["wrap", "--key", "plain", "--params", params, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--out", d.dir.file("o"), "--json"])
        XCTAssertEqual(r.code, 3, r.err)
        XCTAssertTrue(r.err.contains("CKA_WRAP_WITH_TRUSTED"), r.err)
        XCTAssertEqual((try d.ctl(["pending", "--json"]).json?["pending"] as? [[String: Any]])?.count, 0, "refused before it was held")
    }

    /// What NSS softokn (3.87, Debian 12) does: it keeps CKA_WRAP_WITH_TRUSTED on a key but wraps
    /// it under an untrusted key all the same, so it cannot be the last line; byokd says so and
    /// does not start with trustedWrapping on. (SoftHSM 2.6.1 enforces it: the test above.)
    func testATokenThatDoesNotEnforceWrapWithTrustedIsRefusedAtStart() throws {
        let dir = TempDir("byokd-daemon")
        let db = try NSSSoftokn.makeDatabase(in: dir)
        let d = try DaemonFixture(arguments: ["--module", NSSSoftokn.module, "--init-args", db.initArgs, "--token", NSSSoftokn.tokenLabel,
                                              "--pin-file", db.passwordFile, "--config", dir.write("c.json", #"{"trustedWrapping": true}"#)],
                                  dir: dir, waitReady: false)
        d.process.waitUntilExit()
        XCTAssertEqual(d.process.terminationStatus, 3, d.log)
        XCTAssertTrue(d.log.contains("TRUSTED_WRAPPING_UNAVAILABLE"), d.log)
        XCTAssertTrue(d.log.contains("wrapped a CKA_WRAP_WITH_TRUSTED key under an untrusted key"), d.log)
    }
}
