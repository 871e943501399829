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
                mentions.append("this token supports OAEP only with SHA-1; use RSAES_OAEP_SHA_1 or another token")
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
