import Foundation
import TestSupport
import XCTest

/// One token, three clouds: the same keys wrapped for AWS KMS, Azure Key Vault (`.byok`) and
/// Google Cloud KMS (wrapped key), with OpenSSL playing each cloud's side of the unwrap. On NSS
/// softokn, whose RFC 5649 wrap is exact for keys of any length.
final class CloudTests: XCTestCase {
    var daemon: DaemonFixture!

    override func setUpWithError() throws { daemon = try DaemonFixture.nss().0 }
    override func tearDown() { daemon = nil }

    func generate(_ label: String, _ spec: String) throws -> [String: Any] {
        let r = try daemon.ctl(["keys", "generate", "--label", label, "--spec", spec, "--json"])
        XCTAssertEqual(r.code, 0, r.err)
        return try XCTUnwrap(r.json)
    }

    static func pem(_ der: Data) -> String {
        let b64 = der.base64EncodedString()
        var lines: [String] = []
        var i = b64.startIndex
        while i < b64.endIndex { let j = b64.index(i, offsetBy: 64, limitedBy: b64.endIndex) ?? b64.endIndex; lines.append(String(b64[i..<j])); i = j }
        return "-----BEGIN PUBLIC KEY-----\n" + lines.joined(separator: "\n") + "\n-----END PUBLIC KEY-----\n"
    }

    static func base64URL(_ d: Data) -> String {
        d.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    /// The JSON `az keyvault key show` prints for a KEK (JWK n and e from the DER key).
    func azureKeyJSON(_ kek: AWSSide.WrappingKeyPair, kid: String, ops: [String] = ["import"]) throws -> Data {
        let text = try Tools.check("openssl", ["pkey", "-in", kek.privatePEM, "-pubout", "-text", "-noout"]).out
        // openssl prints the modulus as hex pairs after "Modulus:" and the exponent as "Exponent: 65537 (0x10001)".
        let lines = text.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        let start = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("Modulus") })
        let end = try XCTUnwrap(lines.firstIndex { $0.hasPrefix("Exponent") })
        var hex = lines[(start + 1)..<end].joined().replacingOccurrences(of: ":", with: "")
        while hex.hasPrefix("00") { hex.removeFirst(2) }
        var n = Data()
        var idx = hex.startIndex
        while idx < hex.endIndex { let next = hex.index(idx, offsetBy: 2); n.append(UInt8(hex[idx..<next], radix: 16)!); idx = next }
        let jwk: [String: Any] = ["kid": kid, "kty": "RSA-HSM", "key_ops": ops, "n": Self.base64URL(n), "e": Self.base64URL(Data([1, 0, 1]))]
        return try JSONSerialization.data(withJSONObject: ["key": jwk, "attributes": ["enabled": true], "tags": [:]], options: [.sortedKeys])
    }

    /// The JSON `gcloud kms import-jobs describe --format=json` prints.
    func importJobJSON(_ job: AWSSide.WrappingKeyPair, method: String, state: String = "ACTIVE",
                       expires: Date = Date().addingTimeInterval(3 * 86_400)) throws -> Data {
        let obj: [String: Any] = [
            "name": "projects/ceremony-proj/locations/europe-west1/keyRings/ring1/importJobs/job1",
            "importMethod": method, "protectionLevel": "HSM", "state": state,
            "createTime": "2026-11-29T08:00:00.000000Z", "expireTime": AWSSide.isoString(expires),
            "publicKey": ["pem": Self.pem(job.publicDER)],
        ]
        return try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
    }

    /// A DER structure's whole length from its header: exactly one PKCS#8 and nothing after it.
    static func derLength(_ d: Data) -> Int? {
        let b = [UInt8](d)
        guard b.count >= 2, b[0] == 0x30 else { return nil }
        if b[1] < 0x80 { return 2 + Int(b[1]) }
        let n = Int(b[1] & 0x7F)
        guard b.count >= 2 + n else { return nil }
        return 2 + n + b[2..<(2 + n)].reduce(0) { $0 << 8 | Int($1) }
    }

    func wrap(_ args: [String], out: String) throws -> [String: Any] {
        let r = try daemon.ctl(["wrap"] + args + ["--out", out, "--json"])
        XCTAssertEqual(r.code, 0, r.err)
        return try XCTUnwrap(r.json?["manifest"] as? [String: Any], r.out)
    }

    func testOneKeyWrappedForAWSAzureAndGoogleCloudEachProven() throws {
        let key = try generate("everywhere", "SYMMETRIC_DEFAULT")
        let kcv = try XCTUnwrap(key["kcv"] as? String)

        // AWS, RSAES_OAEP_SHA_256.
        let aws = try AWSSide.keyPair(bits: 3072)
        let awsParams = daemon.dir.write("aws.json", AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken()))
        _ = try wrap(["--key", "everywhere", "--params", awsParams, "--wrapping-algorithm", "RSAES_OAEP_SHA_256"], out: daemon.dir.file("aws"))
        let awsKey = try AWSSide.decryptOAEP(try Data(contentsOf: URL(fileURLWithPath: daemon.dir.file("aws/EncryptedKeyMaterial.bin"))), with: aws, hash: "sha256")

        // Azure, from the KEK's `az keyvault key show` JSON.
        let kek = try AWSSide.keyPair(bits: 2048)
        let kid = "https://ceremony-vault.vault.azure.net/keys/kek1/0123456789abcdef0123456789abcdef"
        let azureParams = daemon.dir.write("kek.json", try azureKeyJSON(kek, kid: kid))
        let azureOut = daemon.dir.file("azure")
        let m = try wrap(["--for", "azure", "--key", "everywhere", "--params", azureParams], out: azureOut)
        XCTAssertEqual(m["provider"] as? String, "azure")
        XCTAssertEqual(m["azureKid"] as? String, kid)
        XCTAssertEqual(m["wrappingAlgorithm"] as? String, "CKM_RSA_AES_KEY_WRAP")
        XCTAssertNil(m["importTokenSha256"])
        let byok = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: azureOut + "/KeyTransferPackage.byok"))) as? [String: Any])
        XCTAssertEqual(Set(byok.keys), ["schema_version", "header", "ciphertext", "generator"])
        XCTAssertEqual(byok["schema_version"] as? String, "1.0.0")
        let header = try XCTUnwrap(byok["header"] as? [String: Any])
        XCTAssertEqual(header["kid"] as? String, kid)
        XCTAssertEqual(header["alg"] as? String, "dir")
        XCTAssertEqual(header["enc"] as? String, "CKM_RSA_AES_KEY_WRAP")
        XCTAssertTrue((byok["generator"] as? String ?? "").hasPrefix("byokd "))
        let ciphertext = try XCTUnwrap(byok["ciphertext"] as? String)
        XCTAssertFalse(ciphertext.contains("=") || ciphertext.contains("+") || ciphertext.contains("/"), "base64url without padding")
        var b64 = ciphertext.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        b64 += String(repeating: "=", count: (4 - b64.count % 4) % 4)
        let azureBlob = try XCTUnwrap(Data(base64Encoded: b64))
        XCTAssertEqual(m["encryptedKeyMaterialSha256"] as? String, String(try Tools.check("sha256sum", [], stdin: azureBlob).out.prefix(64)))
        let azureKey = try AWSSide.unwrapRsaAes(azureBlob, with: kek, hash: "sha1")

        // Google Cloud, from the import job's JSON, direct RSA-OAEP-SHA-256 and the AES-256 construction.
        let job = try AWSSide.keyPair(bits: 3072)
        let gcpParams = daemon.dir.write("job.json", try importJobJSON(job, method: "RSA_OAEP_3072_SHA256"))
        let g = try wrap(["--for", "gcp", "--key", "everywhere", "--params", gcpParams], out: daemon.dir.file("gcp"))
        XCTAssertEqual(g["gcpImportMethod"] as? String, "RSA_OAEP_3072_SHA256")
        XCTAssertEqual(g["gcpImportJob"] as? String, "projects/ceremony-proj/locations/europe-west1/keyRings/ring1/importJobs/job1")
        let gcpKey = try AWSSide.decryptOAEP(try Data(contentsOf: URL(fileURLWithPath: daemon.dir.file("gcp/WrappedKey.bin"))), with: job, hash: "sha256")
        let gcpHybridParams = daemon.dir.write("job2.json", try importJobJSON(job, method: "RSA_OAEP_3072_SHA256_AES_256"))
        _ = try wrap(["--for", "gcp", "--key", "everywhere", "--params", gcpHybridParams], out: daemon.dir.file("gcp2"))
        let gcpHybridKey = try AWSSide.unwrapRsaAes(try Data(contentsOf: URL(fileURLWithPath: daemon.dir.file("gcp2/WrappedKey.bin"))), with: job, hash: "sha256")

        for (cloud, material) in [("aws", awsKey), ("azure", azureKey), ("gcp", gcpKey), ("gcp AES", gcpHybridKey)] {
            XCTAssertEqual(material.count, 32, "\(cloud): exactly the key")
            XCTAssertEqual(try AWSSide.aesKCV(material), kcv, cloud)
        }
    }

    func testPrivateKeysGoToAzureAsOnePKCS8AndNothingAfter() throws {
        let kek = try AWSSide.keyPair(bits: 3072)
        let kid = "https://ceremony.managedhsm.azure.net/keys/kek2/fedcba9876543210fedcba9876543210"
        let pem = daemon.dir.write("kek.pem", Self.pem(kek.publicDER))
        for (label, spec, curve) in [("ec256", "ECC_NIST_P256", "P-256"), ("rsa2048", "RSA_2048", "")] {
            let k = try generate(label, spec)
            let out = daemon.dir.file("az-\(label)")
            let m = try wrap(["--for", "azure", "--key", label, "--public-key", pem, "--kid", kid], out: out)
            let byok = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/KeyTransferPackage.byok"))) as? [String: Any])
            var b64 = (byok["ciphertext"] as? String ?? "").replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            b64 += String(repeating: "=", count: (4 - b64.count % 4) % 4)
            let pkcs8 = try AWSSide.unwrapRsaAes(try XCTUnwrap(Data(base64Encoded: b64)), with: kek, hash: "sha1")
            XCTAssertEqual(Self.derLength(pkcs8), pkcs8.count, "\(spec): one PKCS#8 structure and nothing after it")
            let pub = try AWSSide.publicKeyOfPKCS8(pkcs8)
            XCTAssertEqual(String(try Tools.check("sha256sum", [], stdin: pub).out.prefix(64)), k["publicKeySha256"] as? String, spec)
            XCTAssertEqual((m["key"] as? [String: Any])?["publicKeySha256"] as? String, k["publicKeySha256"] as? String)
            let next = try daemon.ctl(["wrap", "--for", "azure", "--key", label, "--public-key", pem, "--kid", kid, "--out", daemon.dir.file("az2-\(label)")])
            XCTAssertTrue(next.out.contains("az keyvault key import --hsm-name ceremony"), next.out)
            if !curve.isEmpty { XCTAssertTrue(next.out.contains("--kty EC-HSM --curve \(curve)"), next.out) }
        }
        // An AES-128 key for a Managed HSM oct-HSM key: generated on the token, exact after unwrap.
        let aes = try generate("oct128", "AES_128")
        XCTAssertEqual(aes["spec"] as? String, "AES_128")
        _ = try wrap(["--for", "azure", "--key", "oct128", "--public-key", pem, "--kid", kid], out: daemon.dir.file("oct"))
        let byok = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: daemon.dir.file("oct/KeyTransferPackage.byok")))) as? [String: Any])
        var b64 = (byok["ciphertext"] as? String ?? "").replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        b64 += String(repeating: "=", count: (4 - b64.count % 4) % 4)
        let material = try AWSSide.unwrapRsaAes(try XCTUnwrap(Data(base64Encoded: b64)), with: kek, hash: "sha1")
        XCTAssertEqual(material.count, 16)
        XCTAssertEqual(try AWSSide.aesKCV(material), aes["kcv"] as? String)
    }

    func testEachCloudsRulesAreCheckedBeforeTheTokenIsTouched() throws {
        _ = try generate("mac", "HMAC_256")
        _ = try generate("p521", "ECC_NIST_P521")
        _ = try generate("aes128", "AES_128")
        let kek = try AWSSide.keyPair(bits: 2048)
        let kid = "https://v.vault.azure.net/keys/k/1"
        let azure = daemon.dir.write("kek.json", try azureKeyJSON(kek, kid: kid))
        let job = try AWSSide.keyPair(bits: 3072)
        func refused(_ args: [String], _ code: String, _ mention: String, file: StaticString = #filePath, line: UInt = #line) throws {
            let out = daemon.dir.file("out-\(UUID().uuidString)")
            let r = try daemon.ctl(["wrap"] + args + ["--out", out, "--json"])
            XCTAssertEqual((r.json?["error"] as? [String: Any])?["code"] as? String, code, r.out, file: file, line: line)
            XCTAssertTrue(r.err.contains(mention), r.err, file: file, line: line)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), file: file, line: line)
        }
        try refused(["--for", "azure", "--key", "mac", "--params", azure], "KEY_NOT_IMPORTABLE", "does not import HMAC")
        let job3072 = daemon.dir.write("job.json", try importJobJSON(job, method: "RSA_OAEP_3072_SHA1_AES_256"))
        try refused(["--for", "gcp", "--key", "p521", "--params", job3072], "KEY_NOT_IMPORTABLE", "P-521")
        try refused(["--for", "gcp", "--key", "aes128", "--params", job3072], "KEY_NOT_IMPORTABLE", "256-bit")
        let awsParams = daemon.dir.write("aws.json", AWSSide.cliJSON(publicKey: kek.publicDER, importToken: AWSSide.randomImportToken()))
        try refused(["--key", "aes128", "--params", awsParams, "--wrapping-algorithm", "RSAES_OAEP_SHA_256"], "KEY_NOT_IMPORTABLE", "Azure")
        let expired = daemon.dir.write("job-old.json", try importJobJSON(job, method: "RSA_OAEP_3072_SHA256", state: "EXPIRED"))
        try refused(["--for", "gcp", "--key", "mac", "--params", expired], "PARAMS_EXPIRED", "EXPIRED")
        let wrongSize = daemon.dir.write("job-4096.json", try importJobJSON(job, method: "RSA_OAEP_4096_SHA256"))
        try refused(["--for", "gcp", "--key", "mac", "--params", wrongSize], "PARAMS_INVALID", "RSA_4096")
        let rsa = try generate("rsa", "RSA_2048")
        _ = rsa
        try refused(["--for", "gcp", "--key", "rsa", "--params", daemon.dir.write("job-oaep.json", try importJobJSON(job, method: "RSA_OAEP_3072_SHA256"))],
                    "ALGORITHM_NOT_ALLOWED_FOR_KEY", "AES_256")
        let notKEK = daemon.dir.write("notkek.json", try azureKeyJSON(kek, kid: kid, ops: ["encrypt", "decrypt", "import"]))
        try refused(["--for", "azure", "--key", "mac", "--params", notKEK], "PARAMS_INVALID", "only \"import\"")
        let badMethod = try daemon.ctl(["wrap", "--for", "gcp", "--key", "mac", "--public-key", daemon.dir.write("j.pem", Self.pem(job.publicDER)),
                                        "--import-job", "projects/p/locations/l/keyRings/r/importJobs/j", "--import-method", "RSA_OAEP_2048_SHA1",
                                        "--out", daemon.dir.file("bm"), "--json"])
        XCTAssertEqual((badMethod.json?["error"] as? [String: Any])?["code"] as? String, "ALGORITHM_UNKNOWN", badMethod.out)
        // Flags of one cloud with another are a usage error.
        let usage = try daemon.ctl(["wrap", "--for", "azure", "--key", "mac", "--params", azure, "--import-token", azure, "--out", daemon.dir.file("u")])
        XCTAssertNotEqual(usage.code, 0)
    }

    func testTheGoogleCommandNamesTheImportJobsKeyRing() throws {
        _ = try generate("hmac-key", "HMAC_512")
        let job = try AWSSide.keyPair(bits: 4096)
        let params = daemon.dir.write("job.json", try importJobJSON(job, method: "RSA_OAEP_4096_SHA256"))
        let r = try daemon.ctl(["wrap", "--for", "gcp", "--key", "hmac-key", "--params", params, "--out", daemon.dir.file("g")])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.out.contains("gcloud kms keys versions import --project ceremony-proj --location europe-west1"), r.out)
        XCTAssertTrue(r.out.contains("--keyring ring1 --key hmac-key --import-job job1"), r.out)
        XCTAssertTrue(r.out.contains("--algorithm hmac-sha512 --wrapped-key-file"), r.out)
        let material = try AWSSide.decryptOAEP(try Data(contentsOf: URL(fileURLWithPath: daemon.dir.file("g/WrappedKey.bin"))), with: job, hash: "sha256")
        XCTAssertEqual(material.count, 64, "HMAC_512 keys are the hash's length, as Cloud KMS requires")
    }

    /// On SoftHSM too: the route is whatever the token's self-test found for RSA_AES_KEY_WRAP_SHA_1
    /// (read from the token), and an AES key's wrap for Azure is proven or refused accordingly.
    func testOnSoftHSMTheCloudWrapFollowsTheTokensVerdict() throws {
        let (soft, _) = try DaemonFixture.softHSM()
        let k = try XCTUnwrap(try soft.ctl(["keys", "generate", "--label", "aes", "--spec", "SYMMETRIC_DEFAULT", "--json"]).json)
        let algorithms = try XCTUnwrap(try soft.ctl(["status", "--json"]).json?["algorithms"] as? [[String: Any]])
        let verdict = algorithms.first { $0["name"] as? String == "RSA_AES_KEY_WRAP_SHA_1" }?["state"] as? String
        let kek = try AWSSide.keyPair(bits: 2048)
        let pem = soft.dir.write("kek.pem", Self.pem(kek.publicDER))
        let out = soft.dir.file("az")
        let r = try soft.ctl(["wrap", "--for", "azure", "--key", "aes", "--public-key", pem, "--kid", "https://v.vault.azure.net/keys/k/1", "--out", out, "--json"])
        if verdict == "passed" {
            XCTAssertEqual(r.code, 0, r.err)
            let byok = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/KeyTransferPackage.byok"))) as? [String: Any])
            var b64 = (byok["ciphertext"] as? String ?? "").replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            b64 += String(repeating: "=", count: (4 - b64.count % 4) % 4)
            let material = try AWSSide.unwrapRsaAes(try XCTUnwrap(Data(base64Encoded: b64)), with: kek, hash: "sha1")
            XCTAssertEqual(material.count, 32)
            XCTAssertEqual(try AWSSide.aesKCV(material), k["kcv"] as? String)
        } else {
            XCTAssertEqual((r.json?["error"] as? [String: Any])?["code"] as? String, "TOKEN_LACKS_ALGORITHM", r.out)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        }
    }
}
