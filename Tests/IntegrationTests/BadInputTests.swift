import Foundation
import TestSupport
import XCTest

/// Each bad input gets its error code, its exit code, a sentence an operator understands, and
/// leaves no output behind.
final class BadInputTests: XCTestCase {
    var daemon: DaemonFixture!
    var out: String!

    override func setUpWithError() throws {
        daemon = try DaemonFixture.softHSM().0
        XCTAssertEqual(try daemon.ctl(["keys", "generate", "--label", "k", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        out = daemon.dir.file("out")
    }

    override func tearDown() {
        daemon = nil
    }

    /// Runs a wrap that must fail with `code` and `exit`, and checks nothing was written.
    @discardableResult
    func expectFailure(_ args: [String], code: String, exit: Int32, mentions: [String] = [],
                       file: StaticString = #filePath, line: UInt = #line) throws -> Tools.Result {
        let r = try daemon.ctl(args + ["--json"])
        XCTAssertEqual(r.code, exit, "exit code; stderr: \(r.err)", file: file, line: line)
        let error = r.json?["error"] as? [String: Any]
        XCTAssertEqual(error?["code"] as? String, code, r.out, file: file, line: line)
        let message = error?["message"] as? String ?? ""
        for m in mentions { XCTAssertTrue(message.contains(m), "message lacks \"\(m)\": \(message)", file: file, line: line) }
        XCTAssertFalse(message.contains("0x"), "no bare hex codes: \(message)", file: file, line: line)
        XCTAssertTrue(r.err.contains("[\(code)]"), r.err, file: file, line: line)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out), "a failed wrap left \(out!) behind", file: file, line: line)
        return r
    }

    func params(_ json: Data, _ name: String = "params.json") -> String { daemon.dir.write(name, json) }

    func wrapArgs(_ params: String, algorithm: String? = "RSAES_OAEP_SHA_1", key: String = "k") -> [String] {
        ["wrap", "--key", key, "--params", params, "--out", out] + (algorithm.map { ["--wrapping-algorithm", $0] } ?? [])
    }

    func testExpiredParametersSayWhenTheyExpired() throws {
        let aws = try AWSSide.keyPair(bits: 2048)
        let validTo = Date().addingTimeInterval(-3 * 3600)
        let p = params(AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken(), validTo: validTo.timeIntervalSince1970))
        try expectFailure(wrapArgs(p), code: "PARAMS_EXPIRED", exit: 2, mentions: ["expired at", "3 hours ago", "24 hours"])
    }

    func testA1024BitWrappingKeyIsRefused() throws {
        let small = try AWSSide.keyPair(bits: 1024)
        let p = params(AWSSide.cliJSON(publicKey: small.publicDER, importToken: AWSSide.randomImportToken()))
        try expectFailure(wrapArgs(p), code: "WRAPPING_KEY_SIZE", exit: 2, mentions: ["RSA-1024", "RSA_2048"])
    }

    /// A DER SubjectPublicKeyInfo for an RSA key with any modulus and exponent (what a forger sends).
    static func rsaSPKI(modulus: [UInt8], exponent: [UInt8]) -> Data {
        func tlv(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
            let n = content.count
            let len: [UInt8] = n < 128 ? [UInt8(n)] : n < 256 ? [0x81, UInt8(n)] : [0x82, UInt8(n >> 8), UInt8(n & 0xFF)]
            return [tag] + len + content
        }
        func integer(_ v: [UInt8]) -> [UInt8] { tlv(0x02, (v.first ?? 0) & 0x80 != 0 ? [0] + v : v) }
        let algorithm = tlv(0x30, [0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01, 0x05, 0x00])
        let key = tlv(0x30, integer(modulus) + integer(exponent))
        return Data(tlv(0x30, algorithm + tlv(0x03, [0] + key)))
    }

    func testWrappingKeysThatAreNotWhatAWSIssuesAreRefusedBeforeTheTokenIsTouched() throws {
        // Exponent 1: the "ciphertext" would be the padded plaintext. 2 and 3: recoverable without
        // the private key for short messages. Each needs no private key at all.
        var modulus = [UInt8](repeating: 0, count: 256)
        for i in modulus.indices { modulus[i] = UInt8.random(in: 0...255) }
        modulus[0] |= 0x80
        modulus[255] |= 1
        for e in [[UInt8(1)], [2], [3], [0x01, 0x00, 0x00, 0x01]] {
            let p = params(AWSSide.cliJSON(publicKey: Self.rsaSPKI(modulus: modulus, exponent: e), importToken: AWSSide.randomImportToken()), "e\(e.count)-\(e[0]).json")
            try expectFailure(wrapArgs(p), code: "WRAPPING_KEY_EXPONENT", exit: 2, mentions: ["65537"])
        }
        var even = modulus
        even[255] &= 0xFE
        let p = params(AWSSide.cliJSON(publicKey: Self.rsaSPKI(modulus: even, exponent: [1, 0, 1]), importToken: AWSSide.randomImportToken()), "even.json")
        try expectFailure(wrapArgs(p), code: "WRAPPING_KEY_MODULUS", exit: 2, mentions: ["even"])
        // A 2048-bit odd modulus that is a multiple of 7 (a real RSA modulus has no factor that small).
        var m7 = modulus
        func subtract(_ k: Int) {
            var borrow = k
            for i in stride(from: 255, through: 0, by: -1) where borrow > 0 {
                let v = Int(m7[i]) - borrow
                m7[i] = UInt8((v % 256 + 256) % 256)
                borrow = v < 0 ? (255 - v) / 256 : 0
            }
        }
        subtract(m7.reduce(0) { ($0 * 256 + Int($1)) % 7 })
        if m7[255] & 1 == 0 { subtract(7) }
        XCTAssertEqual(m7.reduce(0) { ($0 * 256 + Int($1)) % 7 }, 0)
        XCTAssertEqual(m7[255] & 1, 1)
        XCTAssertTrue(m7[0] & 0x80 != 0)
        let p7 = params(AWSSide.cliJSON(publicKey: Self.rsaSPKI(modulus: m7, exponent: [1, 0, 1]), importToken: AWSSide.randomImportToken()), "m7.json")
        try expectFailure(wrapArgs(p7), code: "WRAPPING_KEY_MODULUS", exit: 2, mentions: ["divisible by"])
        // The audit log names none of these as a wrap that happened.
        let log = try String(contentsOfFile: daemon.stateDir + "/audit.jsonl", encoding: .utf8)
        XCTAssertFalse(log.contains("\"encryptedKeyMaterialSha256\""), "no wrap happened")
    }

    func testUnknownFieldsInARequestAreRefusedAndNothingIsMade() throws {
        let r = try Tools.run("curl", ["-sS", "--unix-socket", daemon.socket, "-X", "POST", "-d",
                                       #"{"label":"nx","spec":"SYMMETRIC_DEFAULT","extractable":false}"#, "http://byokd/v1/keys"])
        XCTAssertTrue(r.out.contains("\"code\":\"BAD_REQUEST\""), r.out)
        XCTAssertTrue(r.out.contains("extractable"), r.out)
        let twice = try Tools.run("curl", ["-sS", "--unix-socket", daemon.socket, "-X", "POST", "-d",
                                           #"{"label":"nx","spec":"SYMMETRIC_DEFAULT","label":"ny"}"#, "http://byokd/v1/keys"])
        XCTAssertTrue(twice.out.contains("appears twice"), twice.out)
        let comma = try Tools.run("curl", ["-sS", "--unix-socket", daemon.socket, "-X", "POST", "-d",
                                           #"{"label":"nx","spec":"SYMMETRIC_DEFAULT",}"#, "http://byokd/v1/keys"])
        XCTAssertTrue(comma.out.contains("BAD_REQUEST"), comma.out)
        let keys = try daemon.ctl(["keys", "list", "--json"])
        let labels = (keys.json?["keys"] as? [[String: Any]])?.compactMap { $0["label"] as? String } ?? []
        XCTAssertEqual(labels, ["k"], "no key was made")
    }

    /// A key reference that carries a PIN (RFC 7512's pin-value) is refused before anything
    /// records it: the PIN is in neither the audit log nor byokd's log.
    func testAKeyURIWithAPINIsRefusedAndThePINIsRecordedNowhere() throws {
        let aws = try AWSSide.keyPair(bits: 2048)
        let p = params(AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken()))
        for uri in ["pkcs11:object=k?pin-value=secret-7715", "pkcs11:object=k;type=secret-key?PIN-VALUE=secret-7715",
                    "pkcs11:object=k?pin-source=file:/tmp/secret-7715"] {
            try expectFailure(wrapArgs(p, key: uri), code: "KEY_LABEL_INVALID", exit: 2, mentions: ["carries a PIN"])
        }
        let audit = try String(contentsOfFile: daemon.stateDir + "/audit.jsonl", encoding: .utf8)
        XCTAssertFalse(audit.contains("secret-7715"), "the PIN is not in the audit log")
        XCTAssertFalse(daemon.log.contains("secret-7715"), "the PIN is not in byokd's log")
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
        // The same key by a URI without a PIN is wrapped.
        XCTAssertEqual(try daemon.ctl(wrapArgs(p, key: "pkcs11:object=k")).code, 0)
    }

    func testAnECWrappingKeyIsRefused() throws {
        let ec = try AWSSide.keyPair(bits: 256, algorithm: "EC")
        let p = params(AWSSide.cliJSON(publicKey: ec.publicDER, importToken: AWSSide.randomImportToken()))
        try expectFailure(wrapArgs(p), code: "WRAPPING_KEY_NOT_RSA", exit: 2, mentions: ["EC key"])
    }

    func testBrokenBase64IsRefused() throws {
        let aws = try AWSSide.keyPair(bits: 2048)
        var obj = try JSONSerialization.jsonObject(with: AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken())) as! [String: Any]
        obj["PublicKey"] = String((obj["PublicKey"] as! String).dropLast(3)) + "!!"
        let p = params(try JSONSerialization.data(withJSONObject: obj))
        try expectFailure(wrapArgs(p), code: "PARAMS_ENCODING", exit: 2, mentions: ["PublicKey", "base64"])
    }

    func testTruncatedDERIsRefused() throws {
        let aws = try AWSSide.keyPair(bits: 2048)
        let p = params(AWSSide.cliJSON(publicKey: aws.publicDER.prefix(aws.publicDER.count - 40), importToken: AWSSide.randomImportToken()))
        try expectFailure(wrapArgs(p), code: "PARAMS_DER", exit: 2, mentions: ["truncated"])
        // The same through --public-key as a raw DER file.
        let pub = daemon.dir.write("pub.der", aws.publicDER.prefix(100))
        let tok = daemon.dir.write("tok.bin", AWSSide.randomImportToken())
        try expectFailure(["wrap", "--key", "k", "--public-key", pub, "--import-token", tok, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--out", out],
                          code: "PARAMS_DER", exit: 2)
    }

    func testRSAES_PKCS1_V1_5IsRefused() throws {
        let aws = try AWSSide.keyPair(bits: 2048)
        let p = params(AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken()))
        try expectFailure(wrapArgs(p, algorithm: "RSAES_PKCS1_V1_5"), code: "ALGORITHM_REFUSED", exit: 2, mentions: ["October 10, 2023"])
    }

    func testAnUnknownKeyLabelIsRefused() throws {
        let aws = try AWSSide.keyPair(bits: 2048)
        let p = params(AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken()))
        try expectFailure(wrapArgs(p, key: "no-such-key"), code: "KEY_NOT_FOUND", exit: 2, mentions: ["no-such-key", "keys list"])
    }

    /// Whatever this token's self-test decided (read from byokd, not assumed for a SoftHSM
    /// version): an OAEP algorithm that did not pass is refused as the token's shortcoming, with
    /// the self-test's reason and, when the SHA-1 sibling passed, the way out; one that passed wraps.
    func testAnAlgorithmTheTokenLacksIsATokenError() throws {
        let aws = try AWSSide.keyPair(bits: 2048)
        let p = params(AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken()))
        let verdicts = try Verdicts.of(daemon)
        for algorithm in ["RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1"] {
            let state = try XCTUnwrap(verdicts[algorithm], "the self-test judged \(algorithm)")
            if state == "passed" {
                let r = try daemon.ctl(wrapArgs(p, algorithm: algorithm) + ["--json"])
                XCTAssertEqual(r.code, 0, "\(algorithm) passed the self-test, so it wraps: \(r.err)")
                try? FileManager.default.removeItem(atPath: out)
                continue
            }
            let reason = try XCTUnwrap(try Verdicts.reason(daemon, algorithm), "a verdict other than passed has a reason")
            var mentions = [algorithm, state == "failed" ? "caught it producing a wrong result" : "found it unsupported", reason]
            if algorithm == "RSAES_OAEP_SHA_256" && verdicts["RSAES_OAEP_SHA_1"] == "passed" {
                mentions += ["import parameters work only with the algorithm they were requested for, so download new ones for RSAES_OAEP_SHA_1",
                             "--wrapping-algorithm RSAES_OAEP_SHA_1"]
            }
            try expectFailure(wrapArgs(p, algorithm: algorithm), code: "TOKEN_LACKS_ALGORITHM", exit: 3, mentions: mentions)
        }
    }

    func testAMissingOrUnknownAlgorithmIsRefused() throws {
        let aws = try AWSSide.keyPair(bits: 2048)
        let p = params(AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken()))
        try expectFailure(wrapArgs(p, algorithm: nil), code: "ALGORITHM_MISSING", exit: 2, mentions: ["--wrapping-algorithm"])
        try expectFailure(wrapArgs(p, algorithm: "RSAES_OAEP_SHA_512"), code: "ALGORITHM_UNKNOWN", exit: 2, mentions: ["RSAES_OAEP_SHA_256"])
    }

    func testAnAlgorithmConflictingWithTheZipIsRefused() throws {
        let aws = try AWSSide.keyPair(bits: 2048)
        let readme = AWSSide.consoleReadme(algorithm: "RSAES_OAEP_SHA_256", wrappingKeySpec: "RSA_2048", validTo: Date().addingTimeInterval(3600))
        let zip = try AWSSide.consoleZip(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken(), readme: readme, into: daemon.dir)
        try expectFailure(wrapArgs(zip, algorithm: "RSAES_OAEP_SHA_1"), code: "ALGORITHM_CONFLICT", exit: 2, mentions: ["RSAES_OAEP_SHA_256"])
    }

    func testExpiredZipSaysWhenItExpired() throws {
        let aws = try AWSSide.keyPair(bits: 2048)
        let readme = AWSSide.consoleReadme(algorithm: "RSAES_OAEP_SHA_1", wrappingKeySpec: "RSA_2048", validTo: Date().addingTimeInterval(-600))
        let zip = try AWSSide.consoleZip(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken(), readme: readme, into: daemon.dir)
        try expectFailure(wrapArgs(zip, algorithm: nil), code: "PARAMS_EXPIRED", exit: 2, mentions: ["expired at"])
    }

    func testNotAZipNorJSONIsRefused() throws {
        let p = daemon.dir.write("junk.json", Data("PK\u{3}\u{4}this is no zip".utf8))
        try expectFailure(wrapArgs(p), code: "PARAMS_ZIP", exit: 2)
        let q = daemon.dir.write("junk2.json", "{\"KeyId\": \"x\"}")
        try expectFailure(wrapArgs(q), code: "PARAMS_INVALID", exit: 2, mentions: ["PublicKey"])
    }

    func testExistingOutputsAreNotOverwritten() throws {
        let aws = try AWSSide.keyPair(bits: 2048)
        let p = params(AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken()))
        XCTAssertEqual(try daemon.ctl(wrapArgs(p)).code, 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: out + "/EncryptedKeyMaterial.bin"))
        let r = try daemon.ctl(wrapArgs(p) + ["--json"])
        XCTAssertEqual(r.code, 2)
        XCTAssertEqual((r.json?["error"] as? [String: Any])?["code"] as? String, "OUTPUT_EXISTS")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out + "/EncryptedKeyMaterial.bin")), before, "the earlier output is kept")
        XCTAssertEqual(try daemon.ctl(wrapArgs(p) + ["--force"]).code, 0)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasPrefix(".") }
        XCTAssertEqual(leftovers, [], "no temporary files left")
    }

    func testUsageErrorsExit2() throws {
        let r = try daemon.ctl(["wrap", "--key", "k", "--out", out])
        XCTAssertEqual(r.code, 2, r.err)
        XCTAssertTrue(r.err.contains("--params"), r.err)
        XCTAssertEqual(try daemon.ctl(["keys", "generate", "--label", "x"]).code, 2)
        let spec = try daemon.ctl(["keys", "generate", "--label", "x", "--spec", "AES_512", "--json"])
        XCTAssertEqual(spec.code, 2)
        XCTAssertEqual((spec.json?["error"] as? [String: Any])?["code"] as? String, "KEY_SPEC_UNKNOWN")
    }

    func testAnExistingLabelIsRefused() throws {
        let r = try daemon.ctl(["keys", "generate", "--label", "k", "--spec", "SYMMETRIC_DEFAULT", "--json"])
        XCTAssertEqual(r.code, 2)
        XCTAssertEqual((r.json?["error"] as? [String: Any])?["code"] as? String, "KEY_EXISTS")
        let keys = try XCTUnwrap(try daemon.ctl(["keys", "list", "--json"]).json?["keys"] as? [[String: Any]])
        XCTAssertEqual(keys.count, 1, "the existing key is untouched and no second one was made")
    }
}
