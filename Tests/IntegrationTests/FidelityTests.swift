import Foundation
import TestSupport
import XCTest

/// Correct on every token or a clear refusal (issue 11): each symptom a new user met on SoftHSM,
/// NSS softokn (FIPS mode too) and tokens the other tests do not use — played by the forwarding
/// module, which passes every call to a real token and changes only what a test asks for.
class FidelityTestCase: XCTestCase {
    /// byokd on a fresh SoftHSM token behind the forwarding module.
    struct Forwarded {
        let dir: TempDir
        let token: SoftHSM.Token
        let faults: String
        let environment: [String: String]
        let arguments: [String]
    }

    func forwarded(faults lines: [String] = [], extra: [String: String] = [:], pinFile: String? = nil) throws -> Forwarded {
        let dir = TempDir("byokd-daemon")
        let token = try SoftHSM.makeToken(in: dir, pinFileContents: pinFile)
        let faults = dir.file("faults")
        try ForwardingModule.setFaults(lines, file: faults)
        let env = ForwardingModule.environment(forwardingTo: SoftHSM.module, faultFile: faults, base: token.environment, extra: extra)
        return Forwarded(dir: dir, token: token, faults: faults, environment: env,
                         arguments: ["--module", try ForwardingModule.path(), "--token", token.label, "--pin-file", token.pinFile])
    }

    func start(_ f: Forwarded, extra: [String] = []) throws -> DaemonFixture {
        try DaemonFixture(arguments: f.arguments + extra, environment: f.environment, dir: f.dir)
    }

    /// Starts byokd expecting it to refuse to start; returns its exit status and log.
    func startFailing(arguments: [String], environment: [String: String], dir: TempDir,
                      file: StaticString = #filePath, line: UInt = #line) throws -> (Int32, String) {
        let d = try DaemonFixture(arguments: arguments, environment: environment, dir: dir, waitReady: false)
        let deadline = Date().addingTimeInterval(30)
        while d.process.isRunning && Date() < deadline { usleep(20_000) }
        XCTAssertFalse(d.process.isRunning, "byokd should have refused to start:\n\(d.log)", file: file, line: line)
        return (d.stop(), d.log)
    }

    func status(_ d: DaemonFixture) throws -> [String: Any] { try XCTUnwrap(try d.ctl(["status", "--json"]).json) }

    func verdicts(_ d: DaemonFixture) throws -> [String: (state: String, reason: String)] {
        Dictionary(uniqueKeysWithValues: ((try status(d)["algorithms"] as? [[String: Any]]) ?? []).map {
            ($0["name"] as! String, ($0["state"] as! String, $0["reason"] as? String ?? ""))
        })
    }

    func error(_ r: Tools.Result) -> (code: String?, message: String) {
        let e = r.json?["error"] as? [String: Any]
        return (e?["code"] as? String, e?["message"] as? String ?? "")
    }

    func params(_ d: DaemonFixture, bits: Int = 2048, name: String = "p.json") throws -> (String, AWSSide.WrappingKeyPair) {
        let aws = try AWSSide.keyPair(bits: bits)
        return (d.dir.write(name, AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken())), aws)
    }
}

/// 1. Byte-exact: SoftHSM 2.6.1 pads a private key's PKCS#8 before its RFC 5649 wrap; the
/// self-test now wraps throwaway RSA and EC private keys and sees it.
final class ByteExactRouteTests: FidelityTestCase {
    func testSoftHSMsRSAAESRouteIsFailedNamingThePaddingAndPrivateKeysAreRefused() throws {
        let (daemon, _) = try DaemonFixture.softHSM()
        let v = try verdicts(daemon)
        XCTAssertEqual(v["RSA_AES_KEY_WRAP_SHA_1"]?.state, "failed", "\(v)")
        let reason = v["RSA_AES_KEY_WRAP_SHA_1"]?.reason ?? ""
        XCTAssertTrue(reason.contains("CKM_AES_KEY_WRAP_PAD + CKM_RSA_PKCS_OAEP: the unwrapped RSA-2048 key is"), reason)
        XCTAssertTrue(reason.contains("-byte PKCS#8 followed by") && reason.contains("extra zero byte"), reason)
        XCTAssertEqual(v["RSA_AES_KEY_WRAP_SHA_256"]?.state, "unsupported")
        XCTAssertEqual(v["RSAES_OAEP_SHA_1"]?.state, "passed", "secret keys still leave SoftHSM exactly")

        // A key made anyway cannot be wrapped: refused with the reason, nothing written.
        let g = try daemon.ctl(["keys", "generate", "--label", "rsa", "--spec", "RSA_2048", "--allow-unexportable", "--json"])
        XCTAssertEqual(g.code, 0, g.err)
        let (p, _) = try params(daemon)
        let out = daemon.dir.file("out")
        let r = try daemon.ctl(["wrap", "--key", "rsa", "--params", p, "--wrapping-algorithm", "RSA_AES_KEY_WRAP_SHA_1", "--out", out, "--json"])
        XCTAssertEqual(r.code, 3, r.out)
        XCTAssertEqual(error(r).code, "TOKEN_LACKS_ALGORITHM")
        XCTAssertTrue(error(r).message.contains("extra zero byte"), error(r).message)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out))
    }
}

/// 2. The self-test and status tell the truth: missing functions and mechanism flags are named,
/// status shows the token's PIN flags as they change and FIPS mode where it is reported.
final class SelfTestTruthTests: FidelityTestCase {
    func testAModuleWithoutCWrapKeyIsNamedInEveryVerdict() throws {
        let daemon = try start(try forwarded(extra: ["BYOK_TEST_NULL_FUNCTIONS": "C_WrapKey"]))
        let v = try verdicts(daemon)
        XCTAssertEqual(v.count, 4)
        for (name, verdict) in v {
            XCTAssertEqual(verdict.state, "unsupported", name)
            XCTAssertTrue(verdict.reason.contains("the module does not implement C_WrapKey"), "\(name): \(verdict.reason)")
            XCTAssertFalse(verdict.reason.contains("C_GenerateKey"), "\(name) blames another function: \(verdict.reason)")
        }
    }

    func testAMechanismListedWithoutCKF_WRAPIsNotUsed() throws {
        // CKM_RSA_PKCS_OAEP (0x9) without CKF_WRAP (0x20000): SoftHSM would still wrap with it.
        let daemon = try start(try forwarded(extra: ["BYOK_TEST_CLEAR_MECHANISM_FLAGS": "0x9:0x20000"]))
        for (name, verdict) in try verdicts(daemon) {
            XCTAssertEqual(verdict.state, "unsupported", name)
            XCTAssertTrue(verdict.reason.contains("the token lists CKM_RSA_PKCS_OAEP without CKF_WRAP"), "\(name): \(verdict.reason)")
        }
    }

    func testStatusShowsTheTokensPINFlagsAsTheyChange() throws {
        let f = try forwarded()
        let daemon = try start(f)
        var s = try status(daemon)
        XCTAssertEqual(s["tokenFlags"] as? [String], ["CKF_LOGIN_REQUIRED", "CKF_TOKEN_INITIALIZED", "CKF_USER_PIN_INITIALIZED"])
        XCTAssertEqual((s["tokenNotes"] as? [String]) ?? [], [])
        // The token counts wrong PINs (CKF_USER_PIN_COUNT_LOW 0x10000, CKF_USER_PIN_FINAL_TRY 0x20000).
        try ForwardingModule.setFaults(["TOKEN_FLAGS 0x30000"], file: f.faults)
        s = try status(daemon)
        let flags = s["tokenFlags"] as? [String] ?? []
        XCTAssertTrue(flags.contains("CKF_USER_PIN_COUNT_LOW") && flags.contains("CKF_USER_PIN_FINAL_TRY"), "\(flags)")
        let notes = (s["tokenNotes"] as? [String] ?? []).joined(separator: "\n")
        XCTAssertTrue(notes.contains("one more wrong PIN locks the token"), notes)
        XCTAssertTrue(notes.contains("a wrong PIN was entered since the last good login"), notes)
        try ForwardingModule.setFaults(["TOKEN_FLAGS 0x40002"], file: f.faults)  // locked, write-protected
        let human = try daemon.ctl(["status"]).out
        XCTAssertTrue(human.contains("CKF_USER_PIN_LOCKED") && human.contains("NOTE:  the user PIN is locked"), human)
        XCTAssertTrue(human.contains("CKF_WRITE_PROTECTED") && human.contains("keys cannot be generated on it"), human)
        XCTAssertTrue(human.contains("entry:   C_GetFunctionList"), human)
        XCTAssertNil(s["fips"], "SoftHSM says nothing about FIPS")
    }

    func testStatusSaysWhetherNSSRunsInFIPSMode() throws {
        let (plain, _) = try DaemonFixture.nss()
        let s = try status(plain)
        XCTAssertEqual(s["moduleEntryPoint"] as? String, "C_GetInterface (interface \"PKCS 11\", version 3.0)")
        let off = try XCTUnwrap(s["fips"] as? [String: Any], "\(s)")
        XCTAssertEqual(off["mode"] as? String, "off")
        XCTAssertTrue((off["evidence"] as? String ?? "").contains("FC_GetFunctionList"), "\(off)")
        plain.stop()
        let (fips, _) = try DaemonFixture.nssFIPS()
        let f = try status(fips)
        XCTAssertEqual((f["fips"] as? [String: Any])?["mode"] as? String, "on", "\(f)")
        XCTAssertEqual(f["moduleEntryPoint"] as? String, "FC_GetFunctionList (function list version 2.40)")
        XCTAssertTrue(try fips.ctl(["status"]).out.contains("FIPS:    on"))
    }
}

/// 3. Errors in the right code, with the real cause.
final class ErrorClassificationTests: FidelityTestCase {
    func testAKeyTheTokenCannotMakeIsTokenLacksAlgorithm() throws {
        let f = try forwarded()
        let daemon = try start(f)
        try ForwardingModule.setFaults(["C_GenerateKey CKR_FUNCTION_NOT_SUPPORTED 1"], file: f.faults)
        let r = try daemon.ctl(["keys", "generate", "--label", "k", "--spec", "SYMMETRIC_DEFAULT", "--json"])
        XCTAssertEqual(r.code, 3, r.out)
        XCTAssertEqual(error(r).code, "TOKEN_LACKS_ALGORITHM", r.out)
        XCTAssertTrue(error(r).message.contains("cannot generate SYMMETRIC_DEFAULT keys: C_GenerateKey returned CKR_FUNCTION_NOT_SUPPORTED"), error(r).message)
    }

    func testATokenRefusingSensitiveAndExtractableKeysGetsAHintAtByokdsTemplate() throws {
        let f = try forwarded()
        let daemon = try start(f)
        try ForwardingModule.setFaults(["C_GenerateKey CKR_ATTRIBUTE_VALUE_INVALID 1"], file: f.faults)
        let r = try daemon.ctl(["keys", "generate", "--label", "k", "--spec", "SYMMETRIC_DEFAULT", "--json"])
        XCTAssertEqual(r.code, 3, r.out)
        XCTAssertEqual(error(r).code, "TOKEN_ERROR")
        XCTAssertTrue(error(r).message.contains("C_GenerateKey returned CKR_ATTRIBUTE_VALUE_INVALID"), error(r).message)
        XCTAssertTrue(error(r).message.contains("refuses byokd's key template") && error(r).message.contains("CKA_SENSITIVE=true with CKA_EXTRACTABLE=true"),
                      error(r).message)
    }

    func testAGeneralErrorFromCLoginIsATokenErrorNotAWrongPIN() throws {
        let f = try forwarded(faults: ["C_Login CKR_GENERAL_ERROR 1"])
        let (code, log) = try startFailing(arguments: f.arguments, environment: f.environment, dir: f.dir)
        XCTAssertEqual(code, 3)
        XCTAssertTrue(log.contains("C_Login returned CKR_GENERAL_ERROR"), log)
        XCTAssertTrue(log.contains("which is not a wrong PIN") && log.contains("[TOKEN_ERROR]"), log)
        XCTAssertFalse(log.contains("TOKEN_LOGIN_FAILED"), log)
    }

    func testCKR_HOST_MEMORYFromCInitializeHintsAtTheServiceBehindTheModule() throws {
        let f = try forwarded(extra: ["BYOK_TEST_INITIALIZE_RV": "CKR_HOST_MEMORY"])
        let (code, log) = try startFailing(arguments: f.arguments, environment: f.environment, dir: f.dir)
        XCTAssertEqual(code, 3)
        XCTAssertTrue(log.contains("C_Initialize returned CKR_HOST_MEMORY"), log)
        XCTAssertTrue(log.contains("when the service is not running or cannot be reached"), log)
    }

    func testAWriteProtectedTokenChosenExplicitlyRefusesKeysWithTheReason() throws {
        let dir = TempDir("byokd-daemon")
        let db = try NSSSoftokn.makeDatabase(in: dir)
        let daemon = try DaemonFixture(arguments: ["--module", NSSSoftokn.module, "--init-args", db.initArgs, "--token", "NSS Generic Crypto Services",
                                                   "--pin-file", db.passwordFile], dir: dir)
        let r = try daemon.ctl(["keys", "generate", "--label", "k", "--spec", "SYMMETRIC_DEFAULT", "--json"])
        XCTAssertEqual(r.code, 3, r.out)
        XCTAssertEqual(error(r).code, "TOKEN_ERROR")
        XCTAssertTrue(error(r).message.contains("CKR_TOKEN_WRITE_PROTECTED") && error(r).message.contains("choose another token with --token"), error(r).message)
    }
}

/// 4. Keys that can leave, or a refusal up front; and a key without fingerprint says so everywhere.
final class ExportableKeyTests: FidelityTestCase {
    func testASpecNoPassedAlgorithmCanExportIsRefusedUnlessAllowedAndTheAnswerSaysSo() throws {
        let (daemon, _) = try DaemonFixture.softHSM()
        let refused = try daemon.ctl(["keys", "generate", "--label", "rsa", "--spec", "RSA_2048", "--json"])
        XCTAssertEqual(refused.code, 3, refused.out)
        XCTAssertEqual(error(refused).code, "TOKEN_LACKS_ALGORITHM")
        let message = error(refused).message
        XCTAssertTrue(message.contains("no wrapping algorithm AWS KMS takes for RSA_2048 (RSA private key) passed this token's self-test"), message)
        XCTAssertTrue(message.contains("could never be exported to AWS KMS") && message.contains("--allow-unexportable"), message)
        XCTAssertEqual((try daemon.ctl(["keys", "list", "--json"]).json?["keys"] as? [[String: Any]])?.count, 0, "nothing was made")

        let made = try daemon.ctl(["keys", "generate", "--label", "rsa", "--spec", "RSA_2048", "--allow-unexportable", "--json"])
        XCTAssertEqual(made.code, 0, made.err)
        let warnings = made.json?["warnings"] as? [String] ?? []
        XCTAssertEqual(warnings.count, 1)
        XCTAssertTrue(warnings.first?.contains("made with --allow-unexportable although no wrapping algorithm AWS KMS takes for RSA_2048") == true, "\(warnings)")
        let human = try daemon.ctl(["keys", "generate", "--label", "ec", "--spec", "ECC_NIST_P256", "--allow-unexportable"])
        XCTAssertEqual(human.code, 0, human.err)
        XCTAssertTrue(human.out.contains("WARNING: made with --allow-unexportable"), human.out)
        // Secret keys, which SoftHSM exports exactly, need no flag.
        XCTAssertEqual(try daemon.ctl(["keys", "generate", "--label", "aes", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
    }

    func testAKeyWhoseFingerprintTheTokenCannotComputeSaysSoInEveryOutput() throws {
        // A token without CKM_SHA224_HMAC (0x256).
        let f = try forwarded(extra: ["BYOK_TEST_HIDE_MECHANISMS": "0x256"])
        let daemon = try start(f)
        let expected = "no fingerprint: the token lacks CKM_SHA224_HMAC"
        let g = try daemon.ctl(["keys", "generate", "--label", "mac", "--spec", "HMAC_224", "--json"])
        XCTAssertEqual(g.code, 0, g.err)
        XCTAssertNil(g.json?["kcv"])
        XCTAssertEqual(g.json?["noFingerprint"] as? String, expected)
        let human = try daemon.ctl(["keys", "list"])
        XCTAssertTrue(human.out.contains(expected), human.out)
        let listed = (try daemon.ctl(["keys", "list", "--json"]).json?["keys"] as? [[String: Any]])?.first
        XCTAssertEqual(listed?["noFingerprint"] as? String, expected)

        let (p, aws) = try params(daemon)
        let out = daemon.dir.file("out")
        let w = try daemon.ctl(["wrap", "--key", "mac", "--params", p, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--out", out])
        XCTAssertEqual(w.code, 0, w.err)
        XCTAssertTrue(w.out.contains(expected), w.out)
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/manifest.json"))) as? [String: Any]
        XCTAssertEqual((manifest?["key"] as? [String: Any])?["noFingerprint"] as? String, expected)
        let key = try AWSSide.decryptOAEP(try Data(contentsOf: URL(fileURLWithPath: out + "/EncryptedKeyMaterial.bin")), with: aws, hash: "sha1")
        XCTAssertEqual(key.count, 28, "an HMAC_224 key is exactly 28 bytes")

        let audit = try String(contentsOfFile: daemon.stateDir + "/audit.jsonl", encoding: .utf8).split(separator: "\n")
        for operation in ["keys.generate", "wrap"] {
            let line = audit.first { $0.contains("\"operation\":\"\(operation)\"") && $0.contains("\"result\":\"ok\"") } ?? ""
            XCTAssertTrue(line.contains("\"noFingerprint\":\"\(expected)\""), "\(operation): \(line)")
        }
    }
}

/// 5. Module loading beyond C_GetFunctionList: the FIPS token is never used (or skipped) silently,
/// and the default token choice skips write-protected tokens and says which it chose.
final class ModuleLoadingTests: FidelityTestCase {
    func testAnNSSDatabaseMarkedFIPSIsNotUsedThroughItsNonFIPSTokenSilently() throws {
        let dir = TempDir("byokd-daemon")
        let db = try NSSSoftokn.makeDatabase(in: dir, fips: true)
        let args = ["--module", NSSSoftokn.module, "--init-args", db.initArgs, "--pin-file", db.passwordFile]
        let (code, log) = try startFailing(arguments: args, environment: ProcessInfo.processInfo.environment, dir: dir)
        XCTAssertEqual(code, 3)
        XCTAssertTrue(log.contains("is marked FIPS") && log.contains("\"functionListSymbol\": \"FC_GetFunctionList\""), log)
        // Chosen knowingly, the non-FIPS token is used, and status says FIPS is off.
        let knowingly = try DaemonFixture(arguments: args + ["--function-list-symbol", "C_GetFunctionList"], dir: TempDir("byokd-daemon"))
        let s = try status(knowingly)
        XCTAssertEqual((s["token"] as? [String: Any])?["label"] as? String, NSSSoftokn.tokenLabel)
        XCTAssertEqual((s["fips"] as? [String: Any])?["mode"] as? String, "off")
    }

    func testWithoutTokenNSSsWritableTokenIsChosenAndStatusSaysWhy() throws {
        let dir = TempDir("byokd-daemon")
        let db = try NSSSoftokn.makeDatabase(in: dir)
        let daemon = try DaemonFixture(arguments: ["--module", NSSSoftokn.module, "--init-args", db.initArgs, "--pin-file", db.passwordFile], dir: dir)
        let s = try status(daemon)
        XCTAssertEqual((s["token"] as? [String: Any])?["label"] as? String, NSSSoftokn.tokenLabel)
        let why = s["tokenSelection"] as? String ?? ""
        XCTAssertTrue(why.contains("skipped \"NSS Generic Crypto Services\"") && why.contains("(write-protected)"), why)
        XCTAssertTrue(daemon.log.contains("chose the first initialized token that is not write-protected"), daemon.log)
        XCTAssertEqual(try daemon.ctl(["keys", "generate", "--label", "k", "--spec", "SYMMETRIC_DEFAULT"]).code, 0, "keys can be made on the token chosen")
    }
}

/// 6. Inputs read exactly: the console ZIP's entries are raw; an ambiguous import token file is refused.
final class ExactInputTests: FidelityTestCase {
    let lookalike = Data("QUJDREVGR0hJSktMTU5PUA==".utf8)  // raw token bytes that are also valid base64

    func testTheConsoleZipsImportTokenReachesImportTokenBinUnchanged() throws {
        let (daemon, _) = try DaemonFixture.softHSM()
        XCTAssertEqual(try daemon.ctl(["keys", "generate", "--label", "k", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        let aws = try AWSSide.keyPair(bits: 2048)
        let readme = AWSSide.consoleReadme(algorithm: "RSAES_OAEP_SHA_1", wrappingKeySpec: "RSA_2048", validTo: Date().addingTimeInterval(3600))
        let zip = try AWSSide.consoleZip(publicKey: aws.publicDER, importToken: lookalike, readme: readme, into: daemon.dir)
        let out = daemon.dir.file("out")
        let r = try daemon.ctl(["wrap", "--key", "k", "--params", zip, "--out", out])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: out + "/ImportToken.bin")), lookalike)
    }

    func testAnAmbiguousImportTokenFileIsRefusedAndItsEncodingCanBeStated() throws {
        let (daemon, _) = try DaemonFixture.softHSM()
        XCTAssertEqual(try daemon.ctl(["keys", "generate", "--label", "k", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        let aws = try AWSSide.keyPair(bits: 2048)
        let pub = daemon.dir.write("pub.der", aws.publicDER)
        let tok = daemon.dir.write("token.bin", lookalike)
        func wrap(_ out: String, _ extra: [String] = [], token: String = tok) throws -> Tools.Result {
            try daemon.ctl(["wrap", "--key", "k", "--public-key", pub, "--import-token", token, "--wrapping-algorithm", "RSAES_OAEP_SHA_1",
                            "--out", daemon.dir.file(out), "--json"] + extra)
        }
        let refused = try wrap("o1")
        XCTAssertEqual(refused.code, 2, refused.out)
        XCTAssertEqual(error(refused).code, "PARAMS_ENCODING")
        XCTAssertTrue(error(refused).message.contains("may be a raw token whose bytes happen to be base64 characters or base64 text"), error(refused).message)
        XCTAssertTrue(error(refused).message.contains("--import-token-encoding raw|base64"), error(refused).message)
        XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.dir.file("o1")))

        XCTAssertEqual(try wrap("o2", ["--import-token-encoding", "raw"]).code, 0)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: daemon.dir.file("o2/ImportToken.bin"))), lookalike)
        // Base64 text as the AWS CLI writes it (a final newline) is decoded without being told.
        let real = AWSSide.randomImportToken()
        let text = daemon.dir.write("token.b64", real.base64EncodedString() + "\n")
        XCTAssertEqual(try wrap("o3", token: text).code, 0)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: daemon.dir.file("o3/ImportToken.bin"))), real)
    }
}

/// 7. PIN care, and advice that leads somewhere.
final class PINCareTests: FidelityTestCase {
    func testAPINFileWithTwoNewlinesIsRefusedBeforeAnyCLogin() throws {
        // Were C_Login called, the fault line would be consumed.
        let f = try forwarded(faults: ["C_Login CKR_PIN_INCORRECT 5"], pinFile: "123456\n\n")
        let (code, log) = try startFailing(arguments: f.arguments, environment: f.environment, dir: f.dir)
        XCTAssertEqual(code, 3)
        XCTAssertTrue(log.contains("ends with a line break beyond the one newline byokd drops") && log.contains("[TOKEN_LOGIN_FAILED]"), log)
        XCTAssertFalse(log.contains("123456"), "the PIN is never logged")
        XCTAssertEqual(try String(contentsOfFile: f.faults, encoding: .utf8), "C_Login CKR_PIN_INCORRECT 5\n", "no login attempt was made")
    }

    func testTheAttemptTheTokenFlagsAsTheFinalTryIsNeverMadeWithoutTheOverride() throws {
        let f = try forwarded(faults: ["TOKEN_FLAGS 0x20000", "C_Login CKR_PIN_INCORRECT 5"])
        let (code, log) = try startFailing(arguments: f.arguments, environment: f.environment, dir: f.dir)
        XCTAssertEqual(code, 3)
        XCTAssertTrue(log.contains("says one more wrong PIN locks it (CKF_USER_PIN_FINAL_TRY), so byokd did not try to log in"), log)
        XCTAssertTrue(log.contains("--allow-final-pin-try"), log)
        XCTAssertTrue(try String(contentsOfFile: f.faults, encoding: .utf8).contains("C_Login CKR_PIN_INCORRECT 5"), "no login attempt was made")

        // With the override, byokd makes the attempt (the right PIN here) and says what the flags are.
        try ForwardingModule.setFaults(["TOKEN_FLAGS 0x20000"], file: f.faults)
        let daemon = try start(f, extra: ["--allow-final-pin-try"])
        XCTAssertTrue((try status(daemon)["tokenNotes"] as? [String] ?? []).contains { $0.contains("one more wrong PIN locks the token") })
    }

    func testALockedPINIsNotTried() throws {
        let f = try forwarded(faults: ["TOKEN_FLAGS 0x40000", "C_Login CKR_PIN_INCORRECT 5"])
        let (code, log) = try startFailing(arguments: f.arguments + ["--allow-final-pin-try"], environment: f.environment, dir: f.dir)
        XCTAssertEqual(code, 3)
        XCTAssertTrue(log.contains("says its user PIN is locked (CKF_USER_PIN_LOCKED), so byokd did not try to log in"), log)
        XCTAssertTrue(try String(contentsOfFile: f.faults, encoding: .utf8).contains("C_Login CKR_PIN_INCORRECT 5"))
    }

    /// The README's ceremony asks for RSAES_OAEP_SHA_256 parameters; the dev token (SoftHSM) cannot
    /// wrap with it. Those parameters work only with SHA-256, so the advice is new parameters.
    func testTheREADMECeremonyOnTheDevTokenAdvisesDownloadingNewParameters() throws {
        let daemon = try DaemonFixture.dev()
        XCTAssertEqual(try daemon.ctl(["keys", "generate", "--label", "payments-2026", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        let (p, _) = try params(daemon, bits: 4096)
        let r = try daemon.ctl(["wrap", "--key", "payments-2026", "--params", p, "--wrapping-algorithm", "RSAES_OAEP_SHA_256",
                                "--out", daemon.dir.file("payments-2026"), "--json"])
        XCTAssertEqual(r.code, 3, r.out)
        let message = error(r).message
        XCTAssertTrue(message.contains("import parameters work only with the algorithm they were requested for, so download new ones for RSAES_OAEP_SHA_1"), message)
        XCTAssertTrue(message.contains("aws kms get-parameters-for-import --key-id KEY --wrapping-algorithm RSAES_OAEP_SHA_1"), message)
        XCTAssertFalse(message.contains("use RSAES_OAEP_SHA_1 or another token"), message)
    }
}
