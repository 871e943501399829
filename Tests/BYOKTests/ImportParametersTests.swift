@testable import BYOK
import ByokAPI
import Foundation
import TestSupport
import XCTest

/// Import parameters in each form users hold them, checked before any token is involved.
final class ImportParametersTests: XCTestCase {
    var aws: AWSSide.WrappingKeyPair!
    let token = AWSSide.randomImportToken()

    override func setUpWithError() throws { aws = try AWSSide.keyPair(bits: 2048) }

    func testAWSCLIJSONWithISOAndEpochTimes() throws {
        let later = Date().addingTimeInterval(3600)
        let iso = try ImportParameters.parse(awsJSON: Array(AWSSide.cliJSON(publicKey: aws.publicDER, importToken: token, validTo: AWSSide.isoString(later))))
        XCTAssertEqual(iso.publicKeyDER, Array(aws.publicDER))
        XCTAssertEqual(iso.importToken, Array(token))
        XCTAssertEqual(iso.kmsKeyId, AWSSide.keyArn)
        XCTAssertEqual(iso.validTo!.timeIntervalSince1970, later.timeIntervalSince1970, accuracy: 0.01)
        let epoch = try ImportParameters.parse(awsJSON: Array(AWSSide.cliJSON(publicKey: aws.publicDER, importToken: token, validTo: later.timeIntervalSince1970)))
        XCTAssertEqual(epoch.validTo!.timeIntervalSince1970, later.timeIntervalSince1970, accuracy: 0.01)
        let resolved = try iso.resolve(requested: "RSAES_OAEP_SHA_256")
        XCTAssertEqual(resolved.algorithm, .RSAES_OAEP_SHA_256)
        XCTAssertEqual(resolved.wrappingKeySpec, .RSA_2048)
    }

    func testTimestampsInTheFormsAWSAndUsersWrite() {
        let t = 1_764_385_689.0  // 2025-11-29T03:08:09Z
        for s in ["2025-11-29T03:08:09Z", "2025-11-29T03:08:09+00:00", "2025-11-29T04:08:09+01:00", "2025-11-29 03:08:09",
                  "2025-11-29T03:08:09.000000+00:00", "1764385689", "2025-11-29T03:08:09z"] {
            XCTAssertEqual(Timestamp.parse(s)?.timeIntervalSince1970 ?? 0, t, accuracy: 0.001, s)
        }
        XCTAssertEqual(Timestamp.parse("2025-11-29T03:08:09.5Z")!.timeIntervalSince1970, t + 0.5, accuracy: 0.001)
        for bad in ["", "tomorrow", "2025-13-01T00:00:00Z", "2025-11-29T03:08", "2025-11-29T03:08:09Zjunk"] {
            XCTAssertNil(Timestamp.parse(bad), bad)
        }
        XCTAssertEqual(Timestamp.string(Date(timeIntervalSince1970: t)), "2025-11-29T03:08:09Z")
    }

    func testConsoleZipReadsAlgorithmSpecsExpiryAndKeyId() throws {
        let dir = TempDir()
        let validTo = Date().addingTimeInterval(7200)
        let readme = AWSSide.consoleReadme(algorithm: "RSAES_OAEP_SHA_1", wrappingKeySpec: "RSA_2048", validTo: validTo, keySpec: "SYMMETRIC_DEFAULT")
        let zip = try AWSSide.consoleZip(publicKey: aws.publicDER, importToken: token, readme: readme, into: dir)
        let p = try ImportParameters.parse(zip: Array(try Data(contentsOf: URL(fileURLWithPath: zip))))
        XCTAssertEqual(p.wrappingAlgorithm, .RSAES_OAEP_SHA_1)
        XCTAssertEqual(p.wrappingKeySpec, .RSA_2048)
        XCTAssertEqual(p.kmsKeySpec, .SYMMETRIC_DEFAULT)
        XCTAssertEqual(p.kmsKeyId, AWSSide.keyId)
        XCTAssertEqual(p.validTo!.timeIntervalSince1970, validTo.timeIntervalSince1970, accuracy: 0.01)
        XCTAssertEqual(p.importToken, Array(token))
        XCTAssertEqual(try p.resolve(requested: nil).algorithm, .RSAES_OAEP_SHA_1)
        XCTAssertEqual(try p.resolve(requested: "rsaes_oaep_sha_1").algorithm, .RSAES_OAEP_SHA_1, "the same algorithm, any case, is no conflict")
        XCTAssertThrowsError(try p.resolve(requested: "RSAES_OAEP_SHA_256")) { XCTAssertEqual(($0 as? ByokError)?.code, .algorithmConflict) }
        // A README that says a different wrapping key size than the key is: the files do not belong together.
        let mismatched = try AWSSide.consoleZip(publicKey: aws.publicDER, importToken: token,
            readme: AWSSide.consoleReadme(algorithm: "RSAES_OAEP_SHA_1", wrappingKeySpec: "RSA_4096", validTo: validTo), into: dir, name: "m.zip")
        XCTAssertThrowsError(try ImportParameters.parse(zip: Array(try Data(contentsOf: URL(fileURLWithPath: mismatched)))).resolve(requested: nil)) {
            XCTAssertEqual(($0 as? ByokError)?.code, .paramsInvalid)
        }
        // Without a README, the operator names the algorithm.
        let bare = try AWSSide.consoleZip(publicKey: aws.publicDER, importToken: token, readme: nil, into: dir, name: "bare.zip")
        let b = try ImportParameters.parse(zip: Array(try Data(contentsOf: URL(fileURLWithPath: bare))))
        XCTAssertNil(b.wrappingAlgorithm)
        XCTAssertThrowsError(try b.resolve(requested: nil)) { XCTAssertEqual(($0 as? ByokError)?.code, .algorithmMissing) }
    }

    func testPublicKeyAndTokenFilesInDERBase64OrPEM() throws {
        let der = Array(aws.publicDER)
        let b64 = Array(aws.publicDER.base64EncodedString(options: .lineLength64Characters).utf8)
        let pem = Array("-----BEGIN PUBLIC KEY-----\n\(aws.publicDER.base64EncodedString(options: .lineLength64Characters))\n-----END PUBLIC KEY-----\n".utf8)
        for input in [der, b64, pem] {
            let p = try ImportParameters.parse(publicKey: input, importToken: Array(token))
            XCTAssertEqual(p.publicKeyDER, der)
            XCTAssertEqual(p.importToken, Array(token))
        }
        // Base64 text as `aws kms get-parameters-for-import --query ImportToken --output text` writes it.
        let tokenB64 = try ImportParameters.parse(publicKey: der, importToken: Array((token.base64EncodedString() + "\n").utf8))
        XCTAssertEqual(tokenB64.importToken, Array(token))
        XCTAssertThrowsError(try ImportParameters.parse(publicKey: Array("-----BEGIN PUBLIC KEY-----\nMIIB".utf8), importToken: Array(token))) {
            XCTAssertEqual(($0 as? ByokError)?.code, .paramsEncoding)
        }
        XCTAssertThrowsError(try ImportParameters.parse(publicKey: Array("MIIB*not*base64".utf8), importToken: Array(token))) {
            XCTAssertEqual(($0 as? ByokError)?.code, .paramsEncoding)
        }
    }

    /// The console writes the import token as raw bytes. Bytes that happen to be base64 characters
    /// are still the token: decoding them would hand AWS a different ImportToken.bin.
    func testTheConsoleZipsImportTokenIsTakenRawEvenWhenItLooksLikeBase64() throws {
        let dir = TempDir()
        let lookalike = Data("QUJDREVGR0hJSktMTU5PUA==".utf8)  // valid base64 of "ABCDEFGHIJKLMNOP"
        let readme = AWSSide.consoleReadme(algorithm: "RSAES_OAEP_SHA_256", wrappingKeySpec: "RSA_2048", validTo: Date().addingTimeInterval(3600))
        let zip = try AWSSide.consoleZip(publicKey: aws.publicDER, importToken: lookalike, readme: readme, into: dir)
        let p = try ImportParameters.parse(zip: Array(try Data(contentsOf: URL(fileURLWithPath: zip))))
        XCTAssertEqual(p.importToken, Array(lookalike), "the ZIP entry's bytes, untouched")
        XCTAssertEqual(p.publicKeyDER, Array(aws.publicDER))
        // The wrapping key in the ZIP is raw DER too: base64 text there is not what the console writes.
        let b64Key = try AWSSide.consoleZip(publicKey: Data(aws.publicDER.base64EncodedString().utf8), importToken: token, readme: readme, into: dir, name: "k.zip")
        XCTAssertThrowsError(try ImportParameters.parse(zip: Array(try Data(contentsOf: URL(fileURLWithPath: b64Key))))) {
            XCTAssertEqual(($0 as? ByokError)?.code, .paramsDER)
        }
    }

    /// `--import-token FILE`: a byte outside base64 makes it raw; base64 text ending in a newline is
    /// decoded; anything else could be either and is refused, unless the encoding is stated.
    func testAnImportTokenFilesEncodingIsDecidedByAStatedRuleAndTheAmbiguousCaseRefused() throws {
        let der = Array(aws.publicDER)
        func parse(_ bytes: [UInt8], _ encoding: ImportTokenEncoding? = nil) throws -> [UInt8] {
            try ImportParameters.parse(publicKey: der, importToken: bytes, tokenEncoding: encoding).importToken
        }
        XCTAssertEqual(try parse(Array(token)), Array(token), "binary: raw")
        XCTAssertEqual(try parse(Array((token.base64EncodedString(options: .lineLength64Characters) + "\n").utf8)), Array(token), "base64 text with a final newline")
        let lookalike = Array("QUJDREVGR0hJSktMTU5PUA==".utf8)
        for ambiguous in [lookalike, Array("QUJDREVGR0hJSktMTU5PUA".utf8)] {
            XCTAssertThrowsError(try parse(ambiguous)) { error in
                XCTAssertEqual((error as? ByokError)?.code, .paramsEncoding)
                XCTAssertTrue("\(error)".contains("--import-token-encoding raw|base64"), "\(error)")
            }
        }
        XCTAssertEqual(try parse(lookalike, .raw), lookalike, "stated raw: the bytes as they are")
        XCTAssertEqual(try parse(lookalike, .base64), Array("ABCDEFGHIJKLMNOP".utf8), "stated base64: decoded")
        XCTAssertThrowsError(try parse(Array(token), .base64)) { XCTAssertEqual(($0 as? ByokError)?.code, .paramsEncoding) }
        // The request names the encoding in `importTokenEncoding`.
        let input = ParametersInput(publicKey: aws.publicDER.base64EncodedString(), importToken: Data(lookalike).base64EncodedString(),
                                    validTo: "2099-01-01T00:00:00Z", importTokenEncoding: "raw")
        XCTAssertEqual(try ImportParameters(input).importToken, lookalike)
        var bad = input
        bad.importTokenEncoding = "hex"
        XCTAssertThrowsError(try ImportParameters(bad)) { XCTAssertEqual(($0 as? ByokError)?.code, .badRequest) }
    }

    func testWrappingKeyChecks() throws {
        func code(_ der: Data, _ tok: Data = AWSSide.randomImportToken(), validTo: Date? = nil) -> ErrorCode? {
            let p = ImportParameters(publicKeyDER: Array(der), importToken: Array(tok), validTo: validTo, source: "test")
            do { _ = try p.resolve(requested: "RSAES_OAEP_SHA_256"); return nil } catch { return (error as? ByokError)?.code }
        }
        XCTAssertNil(code(aws.publicDER))
        XCTAssertEqual(code(try AWSSide.keyPair(bits: 1024).publicDER), .wrappingKeySize)
        XCTAssertEqual(code(try AWSSide.keyPair(bits: 256, algorithm: "EC").publicDER), .wrappingKeyNotRSA)
        XCTAssertEqual(code(aws.publicDER.prefix(50)), .paramsDER)
        XCTAssertEqual(code(aws.publicDER + Data([0])), .paramsDER, "trailing bytes after the key")
        XCTAssertEqual(code(aws.publicDER, Data()), .paramsInvalid)
        XCTAssertEqual(code(aws.publicDER, validTo: Date().addingTimeInterval(-1)), .paramsExpired)
        XCTAssertNil(code(aws.publicDER, validTo: Date().addingTimeInterval(60)))
    }

    func testImportRulesTable() throws {
        func code(_ spec: KeySpec, _ alg: WrappingAlgorithm, _ bits: Int = 2048, kms: KeySpec? = nil) -> ErrorCode? {
            do { try ImportRules.check(spec: spec, algorithm: alg, wrappingKeyBits: bits, kmsKeySpec: kms); return nil } catch { return (error as? ByokError)?.code }
        }
        XCTAssertNil(code(.SYMMETRIC_DEFAULT, .RSAES_OAEP_SHA_256))
        XCTAssertNil(code(.HMAC_512, .RSAES_OAEP_SHA_1))
        XCTAssertEqual(code(.SYMMETRIC_DEFAULT, .RSAES_PKCS1_V1_5), .algorithmRefused)
        XCTAssertEqual(code(.RSA_2048, .RSAES_OAEP_SHA_256, 4096), .algorithmNotAllowed, "RSA private keys need RSA_AES_KEY_WRAP")
        XCTAssertNil(code(.RSA_4096, .RSA_AES_KEY_WRAP_SHA_256))
        XCTAssertEqual(code(.ECC_NIST_P521, .RSAES_OAEP_SHA_256, 2048), .materialTooLarge, "P-521 under RSA_2048 with OAEP")
        XCTAssertEqual(ImportRules.oaepCapacity(modulusBits: 2048, hashLength: 32), 190)
        XCTAssertNil(code(.ECC_NIST_P521, .RSA_AES_KEY_WRAP_SHA_256, 2048))
        XCTAssertEqual(code(.SYMMETRIC_DEFAULT, .RSAES_OAEP_SHA_1, kms: .HMAC_256), .keySpecMismatch)
    }
}
