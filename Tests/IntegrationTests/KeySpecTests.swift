import Foundation
import TestSupport
import XCTest

/// Every AWS key spec, generated in the token and wrapped with every algorithm AWS allows for it
/// that the token passed its self-test with, at every wrapping key size — and proven: the blob is
/// unwrapped in software and compared with what the token computes (KCV for AES, HMAC of a fixed
/// message for HMAC keys, the public key for RSA and ECC private keys), byte-exact: a secret key is
/// exactly its length, a private key exactly one DER PKCS#8 with nothing after it (the length is
/// checked here; OpenSSL's reader would ignore trailing bytes). On NSS softokn, in FIPS mode too.
final class KeySpecTests: XCTestCase {
    static let symmetric = ["SYMMETRIC_DEFAULT", "HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512"]
    static let asymmetric = ["RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521", "ECC_SECG_P256K1"]
    static let hmacDigest = ["HMAC_224": "sha224", "HMAC_256": "sha256", "HMAC_384": "sha384", "HMAC_512": "sha512"]

    func passedAlgorithms(_ daemon: DaemonFixture) throws -> Set<String> {
        let status = try XCTUnwrap(try daemon.ctl(["status", "--json"]).json)
        return Set((status["algorithms"] as? [[String: Any]] ?? []).filter { $0["state"] as? String == "passed" }.compactMap { $0["name"] as? String })
    }

    /// Generates each spec and proves each applicable wrap. Returns the specs the token refused to
    /// make (TOKEN_LACKS_ALGORITHM), with the refusal's message.
    func proveAll(_ daemon: DaemonFixture, expectPassed: Set<String>, file: StaticString = #filePath, line: UInt = #line) throws -> [String: String] {
        let passed = try passedAlgorithms(daemon)
        XCTAssertEqual(passed, expectPassed, "self-test verdicts", file: file, line: line)
        var unsupported: [String: String] = [:]
        var proofs = 0
        for spec in Self.symmetric + Self.asymmetric {
            let g = try daemon.ctl(["keys", "generate", "--label", "spec-\(spec)", "--spec", spec, "--json"])
            if g.code == 3, let e = g.json?["error"] as? [String: Any], e["code"] as? String == "TOKEN_LACKS_ALGORITHM" {
                unsupported[spec] = e["message"] as? String ?? ""
                continue
            }
            XCTAssertEqual(g.code, 0, "\(spec): \(g.out) \(g.err)", file: file, line: line)
            XCTAssertEqual(g.json?["spec"] as? String, spec, file: file, line: line)
            let fingerprint = try XCTUnwrap((g.json?["kcv"] ?? g.json?["publicKeySha256"]) as? String, "\(spec) has a fingerprint", file: file, line: line)
            let isAsym = Self.asymmetric.contains(spec)
            let algorithms = (isAsym ? ["RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256"] : ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]).filter(passed.contains)
            XCTAssertFalse(algorithms.isEmpty, "\(spec): no algorithm to test", file: file, line: line)
            // Those that did not pass are refused as the token's shortcoming, and nothing is written.
            for algorithm in (isAsym ? ["RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256"] : ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]).filter({ !passed.contains($0) }) {
                let aws = try AWSSide.keyPair(bits: 4096)
                let params = daemon.dir.write("p-refused.json", AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken()))
                let out = daemon.dir.file("refused-\(spec)-\(algorithm)")
                let r = try daemon.ctl(["wrap", "--key", "spec-\(spec)", "--params", params, "--wrapping-algorithm", algorithm, "--out", out, "--json"])
                XCTAssertEqual(r.code, 3, "\(spec) \(algorithm): \(r.out)", file: file, line: line)
                XCTAssertEqual((r.json?["error"] as? [String: Any])?["code"] as? String, "TOKEN_LACKS_ALGORITHM", r.out, file: file, line: line)
                XCTAssertFalse(FileManager.default.fileExists(atPath: out), file: file, line: line)
            }
            for algorithm in algorithms {
                let hash = algorithm.hasSuffix("256") ? "sha256" : "sha1"
                for bits in [2048, 3072, 4096] {
                    let aws = try AWSSide.keyPair(bits: bits)
                    let params = daemon.dir.write("p-\(bits).json", AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken()))
                    let out = daemon.dir.file("out-\(spec)-\(algorithm)-\(bits)")
                    let r = try daemon.ctl(["wrap", "--key", "spec-\(spec)", "--params", params, "--wrapping-algorithm", algorithm, "--out", out])
                    XCTAssertEqual(r.code, 0, "\(spec) \(algorithm) RSA-\(bits): \(r.err)", file: file, line: line)
                    guard r.code == 0 else { continue }
                    let blob = try Data(contentsOf: URL(fileURLWithPath: out + "/EncryptedKeyMaterial.bin"))
                    let what = "\(spec) \(algorithm) RSA-\(bits)"
                    if isAsym {
                        let pkcs8 = try AWSSide.unwrapRsaAes(blob, with: aws, hash: hash)
                        XCTAssertNil(AWSSide.exactPKCS8Problem(pkcs8), "\(what): not exactly one PKCS#8", file: file, line: line)
                        let pub = try AWSSide.publicKeyOfPKCS8(pkcs8)
                        XCTAssertEqual(try sha256(pub), fingerprint, "\(what): the unwrapped private key's public key differs from the token's", file: file, line: line)
                    } else {
                        let key = try AWSSide.decryptOAEP(blob, with: aws, hash: hash)
                        XCTAssertEqual(blob.count, bits / 8, what, file: file, line: line)
                        if spec == "SYMMETRIC_DEFAULT" {
                            XCTAssertEqual(key.count, 32, file: file, line: line)
                            XCTAssertEqual(try AWSSide.aesKCV(key), fingerprint, what, file: file, line: line)
                        } else {
                            let mac = try AWSSide.hmac(key, message: Data(count: 16), digest: Self.hmacDigest[spec]!)
                            XCTAssertEqual(mac.prefix(3).hex.uppercased(), fingerprint, "\(what): HMAC of the fixed message differs", file: file, line: line)
                            XCTAssertEqual(key.count, ["HMAC_224": 28, "HMAC_256": 32, "HMAC_384": 48, "HMAC_512": 64][spec], what, file: file, line: line)
                        }
                    }
                    proofs += 1
                }
            }
        }
        XCTAssertGreaterThan(proofs, 0, file: file, line: line)
        print("KeySpecTests: \(proofs) wraps proven byte-exact; specs the token refused: \(unsupported.keys.sorted())")
        return unsupported
    }

    func sha256(_ d: Data) throws -> String { try Tools.check("openssl", ["dgst", "-sha256", "-binary"], stdin: d).stdout.hex }

    /// SoftHSM 2.6.1 wraps secret keys exactly (OAEP SHA-1), but its CKM_AES_KEY_WRAP_PAD pads a
    /// private key's PKCS#8 with zeros before the RFC 5649 wrap: its RSA_AES route fails the
    /// self-test with that reason, and no RSA or ECC key is made that could never leave it.
    func testEverySpecOnSoftHSM() throws {
        let (daemon, token) = try DaemonFixture.softHSM()
        let expected = try Verdicts.expected(softHSM: token)
        let unsupported = try proveAll(daemon, expectPassed: expected)
        if expected.isDisjoint(with: ["RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256"]) {
            // SoftHSM 2.6.1: its AES key wrap with padding pads a private key's PKCS#8 with zeros.
            XCTAssertEqual(Set(unsupported.keys), Set(Self.asymmetric), "no RSA or ECC key can leave this token byte-exact")
            for (spec, message) in unsupported {
                XCTAssertTrue(message.contains("could never be exported") && message.contains("--allow-unexportable"), "\(spec): \(message)")
                XCTAssertTrue(message.contains("extra zero byte"), "\(spec): the refusal carries the self-test's reason (\"1 extra zero byte\" or \"N extra zero bytes\"): \(message)")
            }
        } else {
            XCTAssertEqual(unsupported, [:], "this SoftHSM makes and exports every spec")
        }
    }

    func testEverySpecOnNSSSoftokn() throws {
        let (daemon, db) = try DaemonFixture.nss()
        let unsupported = try proveAll(daemon, expectPassed: try Verdicts.expected(nss: db))
        XCTAssertEqual(Array(unsupported.keys), ["ECC_SECG_P256K1"], "NSS has no secp256k1")
    }

    /// The same proofs on NSS softokn's FIPS token, reached through FC_GetFunctionList.
    func testEverySpecOnNSSSoftoknInFIPSMode() throws {
        let (daemon, _) = try DaemonFixture.nssFIPS()
        let status = try XCTUnwrap(try daemon.ctl(["status", "--json"]).json)
        XCTAssertEqual((status["token"] as? [String: Any])?["label"] as? String, NSSSoftokn.fipsTokenLabel)
        XCTAssertEqual((status["fips"] as? [String: Any])?["mode"] as? String, "on", "\(status)")
        let unsupported = try proveAll(daemon, expectPassed: ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256"])
        XCTAssertEqual(Array(unsupported.keys), ["ECC_SECG_P256K1"], "NSS has no secp256k1, in FIPS mode either")
    }

    /// The AWS rules, each with its error, before the token is asked to wrap.
    func testTheAWSRulesAreCheckedWithTheirReasons() throws {
        let (daemon, _) = try DaemonFixture.nss()
        for (label, spec) in [("rsa", "RSA_2048"), ("p521", "ECC_NIST_P521"), ("hmac", "HMAC_256"), ("aes", "SYMMETRIC_DEFAULT")] {
            XCTAssertEqual(try daemon.ctl(["keys", "generate", "--label", label, "--spec", spec]).code, 0)
        }
        let aws = try AWSSide.keyPair(bits: 2048)
        let params = daemon.dir.write("p.json", AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken()))
        func expect(_ key: String, _ algorithm: String, _ code: String, _ mention: String, params p: String? = nil,
                    file: StaticString = #filePath, line: UInt = #line) throws {
            let out = daemon.dir.file("o-\(key)-\(algorithm)")
            let r = try daemon.ctl(["wrap", "--key", key, "--params", p ?? params, "--wrapping-algorithm", algorithm, "--out", out, "--json"])
            let e = r.json?["error"] as? [String: Any]
            XCTAssertEqual(r.code, 2, r.out, file: file, line: line)
            XCTAssertEqual(e?["code"] as? String, code, r.out, file: file, line: line)
            XCTAssertTrue((e?["message"] as? String ?? "").contains(mention), r.out, file: file, line: line)
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), file: file, line: line)
        }
        try expect("rsa", "RSAES_OAEP_SHA_256", "ALGORITHM_NOT_ALLOWED_FOR_KEY", "RSA_AES_KEY_WRAP_SHA_256 or RSA_AES_KEY_WRAP_SHA_1")
        try expect("p521", "RSAES_OAEP_SHA_256", "MATERIAL_TOO_LARGE_FOR_OAEP", "carries at most 190 bytes")
        try expect("hmac", "RSA_AES_KEY_WRAP_SHA_256", "ALGORITHM_NOT_ALLOWED_FOR_KEY", "RSAES_OAEP_SHA_256 or RSAES_OAEP_SHA_1")
        // A P-256 key fits in OAEP as far as AWS is concerned, but PKCS#11 wraps private keys with RSA only through RSA_AES_KEY_WRAP.
        let p4096 = try AWSSide.keyPair(bits: 4096)
        let params4096 = daemon.dir.write("p4096.json", AWSSide.cliJSON(publicKey: p4096.publicDER, importToken: AWSSide.randomImportToken()))
        try expect("p521", "RSAES_OAEP_SHA_256", "ALGORITHM_NOT_ALLOWED_FOR_KEY", "CKM_RSA_PKCS_OAEP wraps secret keys only", params: params4096)
        // The KMS key spec from the console's README must match the token key.
        let readme = AWSSide.consoleReadme(algorithm: "RSAES_OAEP_SHA_256", wrappingKeySpec: "RSA_2048", validTo: Date().addingTimeInterval(3600), keySpec: "HMAC_256")
        let zip = try AWSSide.consoleZip(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken(), readme: readme, into: daemon.dir)
        try expect("aes", "RSAES_OAEP_SHA_256", "KEY_SPEC_MISMATCH", "the KMS key is HMAC_256", params: zip)
        XCTAssertEqual(try daemon.ctl(["wrap", "--key", "hmac", "--params", zip, "--out", daemon.dir.file("ok")]).code, 0)
    }
}
