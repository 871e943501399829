import Foundation
import TestSupport
import XCTest

/// Online mode against LocalStack's KMS, which really unwraps imported material and rejects a
/// wrong wrap. `scripts/localstack start` runs it (CI does); without it these tests are skipped,
/// and `scripts/test` says so.
final class KMSImportTests: XCTestCase {
    static var endpoint: String { ProcessInfo.processInfo.environment["BYOKD_TEST_KMS_ENDPOINT"] ?? "http://127.0.0.1:4566" }

    static var localStackUp: Bool {
        let r = try? Tools.run("curl", ["-sf", "--max-time", "3", endpoint + "/_localstack/health"])
        return r?.code == 0 && (r?.out.contains("\"kms\"") ?? false)
    }

    func requireLocalStack() throws {
        guard Self.localStackUp else { throw XCTSkip("LocalStack's KMS is not running at \(Self.endpoint) (scripts/localstack start); online-mode tests skipped") }
    }

    static func awsEnv(_ base: [String: String], endpoint: String = endpoint) -> [String: String] {
        var e = base
        e["AWS_ENDPOINT_URL_KMS"] = endpoint
        e["AWS_ACCESS_KEY_ID"] = "test"
        e["AWS_SECRET_ACCESS_KEY"] = "test"
        e["AWS_REGION"] = "us-east-1"
        e["AWS_CONFIG_FILE"] = "/nonexistent"
        e["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent"
        return e
    }

    /// KMS as a second, independent client sees it (boto3, LocalStack's venv or python3).
    func boto(_ code: String) throws -> String {
        let python = try XCTUnwrap(Python.with(module: "boto3"), "boto3 is needed to check LocalStack")
        let prelude = "import boto3, base64, hashlib, json\nkms = boto3.client('kms', endpoint_url='\(Self.endpoint)', region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\n"
        return try Tools.check(python, ["-c", prelude + code]).out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func createKey(_ d: DaemonFixture, spec: String) throws -> String {
        let r = try d.ctl(["kms", "create-key", "--spec", spec, "--description", "byokd test — clé", "--tag", "owner=ci", "--json"])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertEqual(r.json?["keyState"] as? String, "PendingImport")
        XCTAssertEqual(r.json?["origin"] as? String, "EXTERNAL")
        return try XCTUnwrap(r.json?["keyId"] as? String)
    }

    func importKey(_ d: DaemonFixture, kmsKey: String, label: String, extra: [String] = []) throws -> Tools.Result {
        try d.ctl(["kms", "import", "--kms-key-id", kmsKey, "--key", label, "--out", d.dir.file("out-\(label)-\(UUID().uuidString)"), "--json"] + extra)
    }

    func testSymmetricImportWithEachOAEPAlgorithm() throws {
        try requireLocalStack()
        let (soft, _) = try DaemonFixture.softHSM()
        let softD = try DaemonFixture(arguments: soft.process.arguments!.filter { $0 != "--socket" && $0 != soft.socket && $0 != "--state-dir" && $0 != soft.stateDir },
                                      environment: Self.awsEnv(soft.process.environment!), dir: TempDir("byokd-daemon"))
        soft.stop()
        let (nssBase, db) = try DaemonFixture.nss()
        nssBase.stop()
        let nss = try DaemonFixture(arguments: ["--module", NSSSoftokn.module, "--init-args", db.initArgs, "--token", NSSSoftokn.tokenLabel,
                                                "--pin-file", db.passwordFile], environment: Self.awsEnv(ProcessInfo.processInfo.environment), dir: TempDir("byokd-daemon"))
        // Every OAEP algorithm each token's self-test passed (byokd's verdicts, not a SoftHSM version's).
        var runs: [(DaemonFixture, String)] = []
        for d in [softD, nss] {
            let passed = try Verdicts.passed(d)
            let oaep = ["RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1"].filter(passed.contains)
            XCTAssertFalse(oaep.isEmpty, "no OAEP algorithm passed on \(d.process.arguments ?? [])")
            runs += oaep.map { (d, $0) }
        }
        for (d, algorithm) in runs {
            let label = "sym-\(algorithm)"
            XCTAssertEqual(try d.ctl(["keys", "generate", "--label", label, "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
            let kmsKey = try createKey(d, spec: "SYMMETRIC_DEFAULT")
            let r = try importKey(d, kmsKey: kmsKey, label: label, extra: ["--wrapping-algorithm", algorithm, "--wrapping-key-spec", "RSA_2048"])
            XCTAssertEqual(r.code, 0, "\(algorithm): \(r.err)")
            XCTAssertEqual((r.json?["kms"] as? [String: Any])?["keyState"] as? String, "Enabled", algorithm)
            XCTAssertEqual(try boto("print(kms.describe_key(KeyId='\(kmsKey)')['KeyMetadata']['KeyState'])"), "Enabled")
            // The imported key works: KMS encrypts and decrypts with it.
            XCTAssertEqual(try boto("c = kms.encrypt(KeyId='\(kmsKey)', Plaintext=b'ceremony')['CiphertextBlob']\nprint(kms.decrypt(CiphertextBlob=c)['Plaintext'].decode())"), "ceremony")
        }
        // The default algorithm is the best the token passed: SHA-256 if it did, else SHA-1.
        let softPassed = try Verdicts.passed(softD)
        let best = softPassed.contains("RSAES_OAEP_SHA_256") ? "RSAES_OAEP_SHA_256" : "RSAES_OAEP_SHA_1"
        XCTAssertEqual(try softD.ctl(["keys", "generate", "--label", "dflt", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        let r = try importKey(softD, kmsKey: try createKey(softD, spec: "SYMMETRIC_DEFAULT"), label: "dflt")
        XCTAssertEqual(r.code, 0, r.err)
        let m = (r.json?["wrap"] as? [String: Any])?["manifest"] as? [String: Any]
        XCTAssertEqual(m?["wrappingAlgorithm"] as? String, best, "verdicts: \(softPassed)")
        XCTAssertEqual(m?["wrappingKeySpec"] as? String, "RSA_4096")
        // Every import is audited with the KMS key.
        let audit = try String(contentsOfFile: softD.stateDir + "/audit.jsonl", encoding: .utf8)
        XCTAssertTrue(audit.contains("\"operation\":\"kms.import\"") && audit.contains("arn:aws:kms"), audit)
    }

    func testHMACAndRSAImportsMatchTheToken() throws {
        try requireLocalStack()
        let (base, db) = try DaemonFixture.nss()
        base.stop()
        let d = try DaemonFixture(arguments: ["--module", NSSSoftokn.module, "--init-args", db.initArgs, "--token", NSSSoftokn.tokenLabel,
                                              "--pin-file", db.passwordFile], environment: Self.awsEnv(ProcessInfo.processInfo.environment), dir: TempDir("byokd-daemon"))
        // HMAC: KMS's GenerateMac of 16 zero bytes starts with the token's check value (its own HMAC of them).
        let hmac = try d.ctl(["keys", "generate", "--label", "mac", "--spec", "HMAC_256", "--json"])
        let kcv = try XCTUnwrap(hmac.json?["kcv"] as? String)
        let macKey = try createKey(d, spec: "HMAC_256")
        let h = try importKey(d, kmsKey: macKey, label: "mac")
        XCTAssertEqual(h.code, 0, h.err)
        let mac = try boto("print(kms.generate_mac(KeyId='\(macKey)', Message=bytes(16), MacAlgorithm='HMAC_SHA_256')['Mac'].hex())")
        XCTAssertEqual(String(mac.prefix(6)).uppercased(), kcv)
        // RSA: KMS's GetPublicKey is the token's public key.
        let rsa = try d.ctl(["keys", "generate", "--label", "sig", "--spec", "RSA_2048", "--json"])
        let fingerprint = try XCTUnwrap(rsa.json?["publicKeySha256"] as? String)
        let rsaKey = try createKey(d, spec: "RSA_2048")
        let r = try importKey(d, kmsKey: rsaKey, label: "sig", extra: ["--wrapping-key-spec", "RSA_3072"])
        XCTAssertEqual(r.code, 0, r.err)
        let passed = try Verdicts.passed(d)
        XCTAssertEqual(((r.json?["wrap"] as? [String: Any])?["manifest"] as? [String: Any])?["wrappingAlgorithm"] as? String,
                       passed.contains("RSA_AES_KEY_WRAP_SHA_256") ? "RSA_AES_KEY_WRAP_SHA_256" : "RSA_AES_KEY_WRAP_SHA_1", "the best that passed: \(passed)")
        XCTAssertEqual(try boto("print(hashlib.sha256(kms.get_public_key(KeyId='\(rsaKey)')['PublicKey']).hexdigest())"), fingerprint)
    }

    func testFailuresGiveTheirCodes() throws {
        try requireLocalStack()
        // A token that starts honest (self-test passes) and then lies: the wrap is wrong and KMS says so.
        let dir = TempDir("byokd-daemon")
        let db = try NSSSoftokn.makeDatabase(in: dir)
        let lie = dir.file("lie-now")
        let env = ForwardingModule.environment(forwardingTo: NSSSoftokn.module, lieFile: lie, base: Self.awsEnv(ProcessInfo.processInfo.environment))
        let d = try DaemonFixture(arguments: ["--module", try ForwardingModule.path(), "--init-args", db.initArgs, "--token", NSSSoftokn.tokenLabel,
                                              "--pin-file", db.passwordFile], environment: env, dir: dir)
        XCTAssertTrue(try Verdicts.passed(d).contains("RSAES_OAEP_SHA_256"), "this test needs a token whose self-test passed OAEP-SHA-256 (NSS softokn)")
        XCTAssertEqual(try d.ctl(["keys", "generate", "--label", "k", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        let kmsKey = try createKey(d, spec: "SYMMETRIC_DEFAULT")
        _ = dir.write("lie-now", "1")
        let wrong = try importKey(d, kmsKey: kmsKey, label: "k", extra: ["--wrapping-algorithm", "RSAES_OAEP_SHA_256"])
        XCTAssertEqual(wrong.code, 6, wrong.err)
        // AWS answers InvalidCiphertextException; LocalStack 4.9.2 answers a 500 InternalError "Decryption failed".
        let e = wrong.json?["error"] as? [String: Any]
        let code = e?["code"] as? String
        XCTAssertTrue(code == "KMS_INVALID_CIPHERTEXT" || (code == "KMS_ERROR" && (e?["message"] as? String ?? "").contains("Decryption failed")), wrong.out)
        XCTAssertEqual(try boto("print(kms.describe_key(KeyId='\(kmsKey)')['KeyMetadata']['KeyState'])"), "PendingImport")
        try FileManager.default.removeItem(atPath: lie)
        // An unknown key id.
        let missing = try importKey(d, kmsKey: "11111111-2222-3333-4444-555555555555", label: "k")
        XCTAssertEqual(missing.code, 6)
        XCTAssertEqual((missing.json?["error"] as? [String: Any])?["code"] as? String, "KMS_NOT_FOUND", missing.out)
        // Honest again: the same import now succeeds.
        XCTAssertEqual(try importKey(d, kmsKey: kmsKey, label: "k", extra: ["--wrapping-algorithm", "RSAES_OAEP_SHA_256"]).code, 0)
    }

    /// Rotation of imported key material: byokd imports the new material (NEW_KEY_MATERIAL) and
    /// calls RotateKeyOnDemand, then lists the materials. LocalStack 4.9.2 implements neither
    /// RotateKeyOnDemand for imported keys nor ListKeyRotations: this checks byokd gets as far as
    /// LocalStack goes and reports its answer with a stable code.
    func testRotationGoesAsFarAsLocalStackImplementsAndSaysWhatStopped() throws {
        try requireLocalStack()
        let (base, _) = try DaemonFixture.softHSM()
        let d = try DaemonFixture(arguments: base.process.arguments!.filter { $0 != "--socket" && $0 != base.socket && $0 != "--state-dir" && $0 != base.stateDir },
                                  environment: Self.awsEnv(base.process.environment!), dir: TempDir("byokd-daemon"))
        base.stop()
        for label in ["gen1", "gen2"] { XCTAssertEqual(try d.ctl(["keys", "generate", "--label", label, "--spec", "SYMMETRIC_DEFAULT"]).code, 0) }
        let kmsKey = try createKey(d, spec: "SYMMETRIC_DEFAULT")
        XCTAssertEqual(try importKey(d, kmsKey: kmsKey, label: "gen1", extra: ["--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--wrapping-key-spec", "RSA_2048"]).code, 0)
        let r = try d.ctl(["kms", "rotate", "--kms-key-id", kmsKey, "--key", "gen2", "--wrapping-algorithm", "RSAES_OAEP_SHA_1",
                           "--wrapping-key-spec", "RSA_2048", "--key-material-description", "second", "--json"])
        let records = try Data(contentsOf: URL(fileURLWithPath: d.stateDir + "/audit.jsonl")).split(separator: UInt8(ascii: "\n"))
            .map { try JSONSerialization.jsonObject(with: Data($0)) as! [String: Any] }
        let rotate = try XCTUnwrap(records.last { $0["operation"] as? String == "kms.rotate" })
        if r.code == 0 {
            // A LocalStack that does rotate: the new material is current.
            let materials = try XCTUnwrap(r.json?["materials"] as? [[String: Any]])
            XCTAssertTrue(materials.contains { $0["state"] as? String == "CURRENT" && $0["description"] as? String == "second" }, r.out)
            XCTAssertEqual(rotate["result"] as? String, "ok")
        } else {
            XCTAssertEqual(r.code, 6, r.err)
            XCTAssertEqual((r.json?["error"] as? [String: Any])?["code"] as? String, "KMS_ERROR", r.out)
            XCTAssertTrue(r.err.contains("RotateKeyOnDemand") || r.err.contains("ImportKeyMaterial"), r.err)
            XCTAssertEqual(rotate["errorCode"] as? String, "KMS_ERROR")
            XCTAssertEqual((rotate["key"] as? [String: Any])?["label"] as? String, "gen2")
        }
        let m = try d.ctl(["kms", "materials", "--kms-key-id", kmsKey, "--json"])
        if m.code != 0 {
            XCTAssertEqual((m.json?["error"] as? [String: Any])?["code"] as? String, "KMS_ERROR", m.out)
            XCTAssertTrue(m.err.contains("ListKeyRotations"), m.err)
        } else {
            XCTAssertFalse((m.json?["materials"] as? [[String: Any]] ?? []).isEmpty, m.out)
        }
        // Whatever LocalStack did with the rotation, the key still works.
        XCTAssertEqual(try boto("c = kms.encrypt(KeyId='\(kmsKey)', Plaintext=b'ceremony')['CiphertextBlob']\nprint(kms.decrypt(CiphertextBlob=c)['Plaintext'].decode())"), "ceremony")
    }

    /// With trustedWrapping, an online import waits for the Security Officer, who sees the wrapping
    /// key byokd fetched from AWS KMS (source `kms`); after `byokctl trust` KMS really unwraps it.
    func testAnImportUnderTrustedWrappingWaitsForTheSecurityOfficerAndKMSAcceptsIt() throws {
        try requireLocalStack()
        let dir = TempDir("byokd-daemon")
        chmod(dir.path, 0o755)
        let token = try SoftHSM.makeToken(in: dir)
        let config = dir.write("byokd.json", """
            {"module": "\(SoftHSM.module)", "token": "\(token.label)", "pinFile": "\(token.pinFile)", "socketMode": "0666",
             "trustedWrapping": true, "access": {"trust": ["uid:65534"]}}
            """)
        let d = try DaemonFixture(arguments: ["--config", config], environment: Self.awsEnv(token.environment), dir: dir)
        XCTAssertEqual(try d.ctl(["keys", "generate", "--label", "guarded", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        let kmsKey = try createKey(d, spec: "SYMMETRIC_DEFAULT")
        let requester = Process()
        requester.executableURL = URL(fileURLWithPath: Binaries.byokctl)
        requester.arguments = ["kms", "import", "--kms-key-id", kmsKey, "--key", "guarded", "--wrapping-algorithm", "RSAES_OAEP_SHA_1",
                               "--wrapping-key-spec", "RSA_2048", "--out", d.dir.file("out"), "--json"]
        var env = ProcessInfo.processInfo.environment
        env["BYOKD_SOCKET"] = d.socket
        requester.environment = env
        let out = Pipe()
        requester.standardOutput = out
        requester.standardError = FileHandle.nullDevice
        try requester.run()
        var pending: [String: Any]?
        for _ in 0..<200 {
            pending = (try d.ctl(["pending", "--json"]).json?["pending"] as? [[String: Any]])?.first
            if pending != nil { break }
            usleep(50_000)
        }
        let p = try XCTUnwrap(pending)
        XCTAssertEqual(p["needs"] as? String, "trust")
        XCTAssertEqual(p["wrappingKeySource"] as? String, "kms")
        XCTAssertEqual(p["operation"] as? String, "kms.import")
        XCTAssertEqual(try boto("print(kms.describe_key(KeyId='\(kmsKey)')['KeyMetadata']['KeyState'])"), "PendingImport", "nothing imported yet")
        let soPin = d.dir.write("so-pin", "12345678\n")
        chmod(soPin, 0o644)
        var env2 = ProcessInfo.processInfo.environment
        env2["BYOKD_SOCKET"] = d.socket
        let trust = try Tools.run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", Binaries.byokctl, "trust", try XCTUnwrap(p["id"] as? String),
                                             "--wrapping-key-sha256", try XCTUnwrap(p["wrappingPublicKeySha256"] as? String), "--so-pin-file", soPin], environment: env2)
        XCTAssertEqual(trust.code, 0, trust.err)
        let answer = out.fileHandleForReading.readDataToEndOfFile()
        requester.waitUntilExit()
        XCTAssertEqual(requester.terminationStatus, 0, String(decoding: answer, as: UTF8.self))
        XCTAssertEqual(try boto("print(kms.describe_key(KeyId='\(kmsKey)')['KeyMetadata']['KeyState'])"), "Enabled")
        XCTAssertEqual(try boto("c = kms.encrypt(KeyId='\(kmsKey)', Plaintext=b'ceremony')['CiphertextBlob']\nprint(kms.decrypt(CiphertextBlob=c)['Plaintext'].decode())"), "ceremony")
        let manifest = try XCTUnwrap((try JSONSerialization.jsonObject(with: answer) as? [String: Any])?["wrap"] as? [String: Any])["manifest"] as? [String: Any]
        XCTAssertEqual(manifest?["wrappingKeySource"] as? String, "kms")
        XCTAssertEqual(manifest?["trustedBySecurityOfficer"] as? Bool, true)
    }
}

/// Failures that need no KMS at all: an endpoint that refuses, and one that never answers.
final class KMSUnreachableTests: XCTestCase {
    func testAnUnreachableEndpointTimesOutWithItsCode() throws {
        let dir = TempDir("byokd-daemon")
        let token = try SoftHSM.makeToken(in: dir)
        // A listener that accepts and never answers.
        let silent = Process()
        silent.executableURL = URL(fileURLWithPath: Tools.resolve("python3"))
        silent.arguments = ["-c", "import socket,time\ns=socket.socket(); s.bind(('127.0.0.1',0)); s.listen(8); print(s.getsockname()[1], flush=True)\nc=[]\nwhile True: c.append(s.accept())"]
        let out = Pipe()
        silent.standardOutput = out
        try silent.run()
        defer { silent.terminate() }
        let port = String(decoding: out.fileHandleForReading.availableData, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let config = dir.write("byokd.json", """
            {"module": "\(SoftHSM.module)", "token": "\(token.label)", "pinFile": "\(token.pinFile)", "kmsTimeoutSeconds": 1, "kmsConnectTimeoutSeconds": 1}
            """)
        let d = try DaemonFixture(arguments: ["--config", config], environment: KMSImportTests.awsEnv(token.environment, endpoint: "http://127.0.0.1:\(port)"), dir: dir)
        let started = Date()
        let r = try d.ctl(["kms", "create-key", "--spec", "SYMMETRIC_DEFAULT", "--json"])
        XCTAssertEqual(r.code, 6, r.err)
        XCTAssertEqual((r.json?["error"] as? [String: Any])?["code"] as? String, "KMS_TIMEOUT", r.out)
        // The configured 1 s bound is what ended it: not at once (it did wait for an answer), and
        // long before the 30 s the KMS client waits by default.
        let waited = Date().timeIntervalSince(started)
        XCTAssertGreaterThanOrEqual(waited, 0.9, "it waited for an answer before giving up")
        XCTAssertLessThan(waited, 15, "kmsTimeoutSeconds (1 s) ended the call, not the 30 s default")
        d.stop()
        // A closed port: refused at once.
        let refused = try DaemonFixture(arguments: ["--config", config], environment: KMSImportTests.awsEnv(token.environment, endpoint: "http://127.0.0.1:9"),
                                        dir: TempDir("byokd-daemon"))
        let c = try refused.ctl(["kms", "create-key", "--spec", "SYMMETRIC_DEFAULT", "--json"])
        XCTAssertEqual(c.code, 6)
        XCTAssertEqual((c.json?["error"] as? [String: Any])?["code"] as? String, "KMS_UNREACHABLE", c.out)
        // No credentials at all: a clear configuration error, not a crash.
        var bare = token.environment
        for k in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"] { bare[k] = nil }
        bare["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent"; bare["AWS_CONFIG_FILE"] = "/nonexistent"
        let none = try DaemonFixture(arguments: ["--config", config], environment: bare, dir: TempDir("byokd-daemon"))
        let n = try none.ctl(["kms", "create-key", "--spec", "SYMMETRIC_DEFAULT", "--json"])
        XCTAssertEqual((n.json?["error"] as? [String: Any])?["code"] as? String, "KMS_NOT_CONFIGURED", n.out)
    }
}
