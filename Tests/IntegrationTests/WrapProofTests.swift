import Foundation
import TestSupport
import XCTest

/// The proof of a correct wrap, without the key ever leaving the token in plaintext: OpenSSL plays
/// AWS with its own RSA key pair, byokd wraps on the token, OpenSSL unwraps with exactly the
/// algorithm's OAEP and MGF1 hashes, and the key check value computed in software must equal the
/// one the token computed.
final class WrapProofTests: XCTestCase {
    func proveSymmetric(_ daemon: DaemonFixture, algorithm: String, hash: String, bits: [Int] = [2048, 3072, 4096],
                        file: StaticString = #filePath, line: UInt = #line) throws {
        let gen = try daemon.ctl(["keys", "generate", "--label", "proof-\(algorithm)", "--spec", "SYMMETRIC_DEFAULT", "--json"])
        XCTAssertEqual(gen.code, 0, gen.err, file: file, line: line)
        let tokenKCV = try XCTUnwrap(gen.json?["kcv"] as? String, file: file, line: line)
        for b in bits {
            let aws = try AWSSide.keyPair(bits: b)
            let token = AWSSide.randomImportToken()
            let params = daemon.dir.write("params-\(b).json", AWSSide.cliJSON(publicKey: aws.publicDER, importToken: token))
            let out = daemon.dir.file("out-\(algorithm)-\(b)")
            let r = try daemon.ctl(["wrap", "--key", "proof-\(algorithm)", "--params", params, "--wrapping-algorithm", algorithm, "--out", out, "--json"])
            XCTAssertEqual(r.code, 0, "\(algorithm) RSA-\(b): \(r.err)", file: file, line: line)
            let blob = try Data(contentsOf: URL(fileURLWithPath: out + "/EncryptedKeyMaterial.bin"))
            XCTAssertEqual(blob.count, b / 8, "RSAES-OAEP output is one modulus long", file: file, line: line)
            let key = try AWSSide.decryptOAEP(blob, with: aws, hash: hash)
            XCTAssertEqual(key.count, 32, file: file, line: line)
            XCTAssertEqual(try AWSSide.aesKCV(key), tokenKCV, "\(algorithm) RSA-\(b): software KCV differs from the token's", file: file, line: line)
            XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out + "/ImportToken.bin")), token, file: file, line: line)
            let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/manifest.json"))) as! [String: Any]
            XCTAssertEqual(manifest["wrappingAlgorithm"] as? String, algorithm, file: file, line: line)
            XCTAssertEqual(manifest["wrappingKeySpec"] as? String, "RSA_\(b)", file: file, line: line)
            XCTAssertEqual(manifest["kmsKeyId"] as? String, AWSSide.keyArn, file: file, line: line)
            XCTAssertEqual((manifest["key"] as? [String: Any])?["kcv"] as? String, tokenKCV, file: file, line: line)
            XCTAssertEqual(manifest["wrappingPublicKeySha256"] as? String, try sha256(aws.publicDER), file: file, line: line)
            XCTAssertEqual(manifest["encryptedKeyMaterialSha256"] as? String, try sha256(blob), file: file, line: line)
            let cmd = try XCTUnwrap(r.json?["awsCommand"] as? String, file: file, line: line)
            XCTAssertTrue(cmd.contains("aws kms import-key-material --key-id \(AWSSide.keyArn)"), cmd, file: file, line: line)
            XCTAssertTrue(cmd.contains("fileb://\(out)/EncryptedKeyMaterial.bin"), cmd, file: file, line: line)
        }
    }

    func sha256(_ d: Data) throws -> String {
        let r = try Tools.check("openssl", ["dgst", "-sha256", "-binary"], stdin: d)
        return r.stdout.hex
    }

    func testSoftHSMWrapsWithOAEPSHA1AtEveryWrappingKeySize() throws {
        let (daemon, _) = try DaemonFixture.softHSM()
        try proveSymmetric(daemon, algorithm: "RSAES_OAEP_SHA_1", hash: "sha1")
    }

    func testNSSWrapsWithOAEPSHA1AndSHA256AtEveryWrappingKeySize() throws {
        let (daemon, _) = try DaemonFixture.nss()
        try proveSymmetric(daemon, algorithm: "RSAES_OAEP_SHA_256", hash: "sha256")
        try proveSymmetric(daemon, algorithm: "RSAES_OAEP_SHA_1", hash: "sha1")
    }

    func testDevTokenDefaultWrapsAndPrintsTheAWSCommand() throws {
        let daemon = try DaemonFixture.dev()
        let gen = try daemon.ctl(["keys", "generate", "--label", "ceremony-key", "--spec", "SYMMETRIC_DEFAULT"])
        XCTAssertEqual(gen.code, 0, gen.err)
        XCTAssertTrue(gen.out.contains("KCV "), gen.out)
        let aws = try AWSSide.keyPair(bits: 4096)
        let params = daemon.dir.write("p.json", AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken()))
        let out = daemon.dir.file("out")
        let r = try daemon.ctl(["wrap", "--key", "ceremony-key", "--params", params, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--out", out])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.out.contains("aws kms import-key-material --key-id \(AWSSide.keyArn)"), r.out)
        XCTAssertTrue(r.out.contains("--import-token fileb://\(out)/ImportToken.bin"), r.out)
        let key = try AWSSide.decryptOAEP(try Data(contentsOf: URL(fileURLWithPath: out + "/EncryptedKeyMaterial.bin")), with: aws, hash: "sha1")
        XCTAssertEqual(key.count, 32)
        let list = try daemon.ctl(["keys", "list", "--json"])
        let keys = try XCTUnwrap(list.json?["keys"] as? [[String: Any]])
        XCTAssertEqual(keys.first?["kcv"] as? String, try AWSSide.aesKCV(key))
    }
}
