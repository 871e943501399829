import CPKCS11
import Foundation
import PKCS11
import TestSupport
import XCTest

/// The typed PKCS#11 layer against SoftHSM2 and NSS softokn, in process.
final class PKCS11Tests: XCTestCase {
    var dir: TempDir!
    var token: SoftHSM.Token!

    override func setUpWithError() throws {
        dir = TempDir("byokd-p11")
        token = try SoftHSM.makeToken(in: dir, label: "p11-test")
        setenv("SOFTHSM2_CONF", token.conf, 1)
    }

    func openLoggedIn() throws -> (Module, Session, TokenInfo) {
        let module = try Module(SoftHSM.module)
        let (slot, info) = try TokenSelector("p11-test").select(in: module)
        let session = try slot.openSession()
        try session.login(try PIN(file: token.pinFile))
        return (module, session, info)
    }

    func testAGeneratedKeysValueCannotBeRead() throws {
        let (_, session, _) = try openLoggedIn()
        let key = try session.generateKey(.aesKeyGen, [.class(.secretKey), .keyType(.aes), .valueLen(32), .token(false),
                                                       .sensitive(true), .extractable(true), .encrypt(true), .label("secret")])
        XCTAssertThrowsError(try session.attribute(key, AttributeType(rawValue: UInt(CKA_VALUE)))) { error in
            XCTAssertEqual((error as? PKCS11Error)?.returnValue, .attributeSensitive)
            XCTAssertEqual("\(error)", "C_GetAttributeValue: PKCS11 error: CKR_ATTRIBUTE_SENSITIVE")
        }
        // The batch reader leaves it out rather than failing.
        let v = try session.attributes(key, [.label, AttributeType(rawValue: UInt(CKA_VALUE)), .valueLen])
        XCTAssertNil(v[AttributeType(rawValue: UInt(CKA_VALUE))])
        XCTAssertEqual(v.string(.label), "secret")
        XCTAssertEqual(v.ulong(.valueLen), 32)
    }

    func testErrorsNameTheFunctionAndTheCode() throws {
        let module = try Module(SoftHSM.module)
        let (slot, _) = try TokenSelector("p11-test").select(in: module)
        let session = try slot.openSession()
        var wrong = Array("000000".utf8)
        XCTAssertThrowsError(try session.login(PIN(wiping: &wrong))) { error in
            XCTAssertEqual("\(error)", "C_Login: PKCS11 error: CKR_PIN_INCORRECT")
        }
        XCTAssertEqual(wrong, [0, 0, 0, 0, 0, 0], "the caller's copy of the PIN is wiped")
        XCTAssertEqual(ReturnValue(rawValue: 0x8000_0001).description, "CKR_VENDOR_DEFINED+0x1")
        XCTAssertEqual(ReturnValue(rawValue: 0x7777).description, "CKR_0x7777", "unknown codes keep their value")
    }

    /// A module may leave entries of its function list NULL. Each call then fails with
    /// CKR_FUNCTION_NOT_SUPPORTED and the function's name, and the calls made on release
    /// (C_CloseSession, C_Finalize) are skipped, instead of trapping.
    func testAMissingEntryPointIsNotSupportedNamingTheFunction() throws {
        let forwarding = try ForwardingModule.path()
        setenv("BYOK_TEST_FORWARD_TO", SoftHSM.module, 1)
        defer { unsetenv("BYOK_TEST_FORWARD_TO"); unsetenv("BYOK_TEST_NULL_FUNCTIONS") }

        setenv("BYOK_TEST_NULL_FUNCTIONS", "C_WrapKey,C_CloseSession C_Finalize", 1)
        do {
            let module = try Module(forwarding)
            let (slot, _) = try TokenSelector("p11-test").select(in: module)
            let session = try slot.openSession()
            try session.login(try PIN(file: token.pinFile))
            let key = try session.generateKey(.aesKeyGen, [.class(.secretKey), .keyType(.aes), .valueLen(32), .token(false),
                                                           .sensitive(true), .extractable(true), .wrap(true), .label("k")])
            XCTAssertThrowsError(try session.wrapKey(.aesKeyWrapPad, wrappingKey: key, key: key)) { error in
                XCTAssertEqual("\(error)", "C_WrapKey: PKCS11 error: CKR_FUNCTION_NOT_SUPPORTED")
                XCTAssertEqual((error as? PKCS11Error)?.function, .wrapKey)
                XCTAssertEqual((error as? PKCS11Error)?.returnValue, .functionNotSupported)
            }
            XCTAssertEqual(try session.generateRandom(4).count, 4, "the entries left in place still work")
            session.close()
        }  // the module is released here, with no C_Finalize to call

        setenv("BYOK_TEST_NULL_FUNCTIONS", "C_Initialize", 1)
        XCTAssertThrowsError(try Module(forwarding)) { error in
            XCTAssertEqual("\(error)", "C_Initialize: PKCS11 error: CKR_FUNCTION_NOT_SUPPORTED")
            XCTAssertEqual((error as? PKCS11Error)?.function, .initialize)
        }
        setenv("BYOK_TEST_NULL_FUNCTIONS", "C_WrapKey", 1)
        do {
            let module = try Module(forwarding)
            XCTAssertFalse(module.provides(.wrapKey), "a NULL entry is a function the module does not implement")
            XCTAssertTrue(module.provides(.generateKey))
        }
        // The forwarding module finalized SoftHSM when it was unloaded: it can be initialised again.
        XCTAssertNoThrow(try Module(SoftHSM.module))
    }

    /// PKCS#11 3.0's C_GetInterface where the module exports it (NSS), C_GetFunctionList where not
    /// (SoftHSM 2.6.1), and the symbol the configuration names otherwise: NSS's FIPS token is
    /// reached only through FC_GetFunctionList (or FC_GetInterface).
    func testEntryPointsCGetInterfaceCGetFunctionListAndAConfiguredSymbol() throws {
        let soft = try Module(SoftHSM.module)
        XCTAssertEqual(soft.entryPoint.symbol, "C_GetFunctionList")
        XCTAssertFalse(soft.entryPoint.isInterface)
        XCTAssertEqual(soft.entryPoint.version, "2.40")

        let nssDir = TempDir("byokd-nss")
        let db = try NSSSoftokn.makeDatabase(in: nssDir, fips: true)
        do {
            let nss = try Module(NSSSoftokn.module, initArgs: db.initArgs)
            XCTAssertEqual(nss.entryPoint.symbol, "C_GetInterface")
            XCTAssertTrue(nss.entryPoint.isInterface)
            XCTAssertEqual(nss.entryPoint.version, "3.0")
            XCTAssertEqual("\(nss.entryPoint)", "C_GetInterface (interface \"PKCS 11\", version 3.0)")
            XCTAssertTrue(nss.exports("FC_GetFunctionList"))
            XCTAssertNotEqual(try TokenSelector(nil).select(in: nss).1.label, NSSSoftokn.fipsTokenLabel, "the standard entry point never reaches the FIPS token")
        }
        for symbol in ["FC_GetFunctionList", "FC_GetInterface"] {
            let fips = try Module(NSSSoftokn.module, initArgs: db.initArgs, functionListSymbol: symbol)
            XCTAssertEqual(fips.entryPoint.symbol, symbol)
            let (slot, info) = try TokenSelector(nil).select(in: fips)
            XCTAssertEqual(info.label, NSSSoftokn.fipsTokenLabel, symbol)
            XCTAssertTrue(try slot.slotInfo().description.contains("FIPS"), symbol)
            let session = try slot.openSession()
            try session.login(try PIN(file: db.passwordFile))
            XCTAssertTrue(try slot.mechanismInfo(.rsaPkcsOaep).allows(.wrap))
        }
        XCTAssertThrowsError(try Module(SoftHSM.module, functionListSymbol: "FC_GetFunctionList")) { error in
            XCTAssertTrue("\(error)".contains("has no symbol FC_GetFunctionList (functionListSymbol); it exports C_GetFunctionList"), "\(error)")
        }
        XCTAssertThrowsError(try Module(SoftHSM.module, functionListSymbol: "C_Get FunctionList")) { error in
            XCTAssertTrue("\(error)".contains("is not a C symbol name"), "\(error)")
        }
    }

    /// Without a selector, the first initialised token that is not write-protected: on NSS that is
    /// "NSS Certificate DB", not the write-protected "NSS Generic Crypto Services" in the first slot.
    func testTheDefaultTokenSkipsWriteProtectedTokensAndSaysWhichItChose() throws {
        let nssDir = TempDir("byokd-nss")
        let db = try NSSSoftokn.makeDatabase(in: nssDir)
        let nss = try Module(NSSSoftokn.module, initArgs: db.initArgs)
        let (_, info) = try TokenSelector(nil).select(in: nss)
        XCTAssertEqual(info.label, NSSSoftokn.tokenLabel)
        XCTAssertFalse(info.writeProtected)
        let choice = try TokenSelector(nil).choose(in: nss)
        XCTAssertTrue(choice.reason.contains("chose the first initialized token that is not write-protected, \"NSS Certificate DB\""), choice.reason)
        XCTAssertTrue(choice.reason.contains("skipped \"NSS Generic Crypto Services\" (serial 0000000000000000) (write-protected)"), choice.reason)
        // Named explicitly, a write-protected token is still used.
        let generic = try TokenSelector("NSS Generic Crypto Services").choose(in: nss)
        XCTAssertTrue(generic.token.writeProtected)
        XCTAssertTrue(generic.token.flagNames.contains("CKF_WRITE_PROTECTED"))
        XCTAssertTrue(generic.reason.contains("is the label of"), generic.reason)
    }

    func testModulesLoadByPathOrByP11KitName() throws {
        let byName = try Module("softhsm2")
        XCTAssertTrue(byName.path.contains("softhsm"), byName.path)
        XCTAssertTrue(try byName.info().manufacturer.contains("SoftHSM"))
        XCTAssertThrowsError(try Module("no-such-module")) { error in
            XCTAssertTrue("\(error)".contains("p11-kit has no module named \"no-such-module\""), "\(error)")
        }
        XCTAssertThrowsError(try Module("/nonexistent/libnothing.so")) { error in
            XCTAssertTrue("\(error)".contains("cannot load PKCS#11 module"), "\(error)")
        }
    }

    func testTokensAreSelectedByLabelSerialOrURI() throws {
        let module = try Module(SoftHSM.module)
        let (_, info) = try TokenSelector("p11-test").select(in: module)
        XCTAssertEqual(try TokenSelector(info.serial).select(in: module).1.label, "p11-test")
        XCTAssertEqual(try TokenSelector("pkcs11:token=p11-test").select(in: module).1.serial, info.serial)
        XCTAssertEqual(try TokenSelector("pkcs11:serial=\(info.serial);model=SoftHSM%20v2").select(in: module).1.label, "p11-test")
        XCTAssertThrowsError(try TokenSelector("pkcs11:token=other").select(in: module)) { error in
            XCTAssertTrue("\(error)".contains("tokens present: \"p11-test\""), "\(error)")
        }
        XCTAssertThrowsError(try TokenSelector("pkcs11:%%%"))
    }

    func testPINFilesAllowOneTrailingNewline() throws {
        let d = TempDir()
        let module = try Module(SoftHSM.module)
        let (slot, _) = try TokenSelector("p11-test").select(in: module)
        let s = try slot.openSession()
        /// Logs in with a PIN file holding `contents` (then out again): whether the token took it.
        func logsIn(_ contents: String, file: StaticString = #filePath, line: UInt = #line) throws -> Bool {
            XCTAssertFalse(try s.state().userLoggedIn, "not logged in before", file: file, line: line)
            let pin = try PIN(file: d.write(UUID().uuidString, contents))
            XCTAssertEqual("\(pin)", "PIN(redacted)", file: file, line: line)
            defer { XCTAssertTrue(pin.isWiped, "a PIN is wiped after login, whatever the outcome", file: file, line: line) }
            do {
                try s.login(pin)
            } catch let e as PKCS11Error where e.returnValue == .pinIncorrect {
                return false
            }
            XCTAssertTrue(try s.state().userLoggedIn, file: file, line: line)
            try s.logout()
            return true
        }
        XCTAssertTrue(try logsIn("123456\n"))
        XCTAssertTrue(try logsIn("123456\r\n"), "a PIN file written on Windows ends in CRLF")
        XCTAssertTrue(try logsIn("123456"))
        XCTAssertFalse(try logsIn("1234567\r\n"))
        XCTAssertThrowsError(try PIN(file: d.write("c", "\n")))
        // Anything but one trailing newline is refused when the file is read, before any C_Login,
        // and the message never shows the PIN.
        for (name, text, what) in [("two", "123456\n\n", "line break beyond"), ("crlf2", "123456\r\n\r\n", "line break beyond"),
                                   ("cr", "123456\r", "line break beyond"), ("space", "123456 \n", "space or tab"),
                                   ("lines", "1234\n56\n", "line break inside"), ("nul", "123\u{0}456\n", "NUL")] {
            XCTAssertThrowsError(try PIN(file: d.write(name, text)), name) { error in
                XCTAssertTrue("\(error)".contains(what), "\(name): \(error)")
                XCTAssertTrue("\(error)".contains("no login attempt is spent"), "\(name): \(error)")
                XCTAssertFalse("\(error)".contains("123"), "\(name): the PIN is never in a message")
            }
        }
        XCTAssertThrowsError(try PIN(file: d.file("missing"))) { error in
            XCTAssertEqual("\(error)", "cannot read PIN file \(d.file("missing")): No such file or directory")
        }
        // The error is the read's, not what closing the file leaves in errno.
        XCTAssertThrowsError(try PIN(file: d.path)) { error in
            XCTAssertEqual("\(error)", "cannot read PIN file \(d.path): Is a directory")
        }
    }

    func testNSSSoftoknTakesItsInitStringAndWrapsWithOAEPSHA256() throws {
        let nssDir = TempDir("byokd-nss")
        let db = try NSSSoftokn.makeDatabase(in: nssDir)
        let module = try Module(NSSSoftokn.module, initArgs: db.initArgs)
        let (slot, info) = try TokenSelector(NSSSoftokn.tokenLabel).select(in: module)
        XCTAssertEqual(info.label, "NSS Certificate DB")
        let session = try slot.openSession()
        try session.login(try PIN(file: db.passwordFile))
        XCTAssertTrue(try slot.mechanisms().contains(.rsaPkcsOaep))
        XCTAssertTrue(try slot.mechanismInfo(.rsaPkcsOaep).canWrap)
        let key = try session.generateKey(.aesKeyGen, [.class(.secretKey), .keyType(.aes), .valueLen(32), .token(false),
                                                       .sensitive(true), .extractable(true), .encrypt(true), .label("t")])
        XCTAssertThrowsError(try session.attribute(key, AttributeType(rawValue: UInt(CKA_VALUE))))
        XCTAssertEqual(try session.findObjects([.label("t")]), [key])
        // The wrap: OpenSSL's RSA public key on the token, C_WrapKey with OAEP(SHA-256, MGF1-SHA-256).
        let aws = try AWSSide.keyPair(bits: 2048)
        let (n, e) = try AWSSide.rsaComponents(aws.publicDER)
        let pub = try session.createObject([.class(.publicKey), .keyType(.rsa), .token(false), .wrap(true), .encrypt(true),
                                            .modulus(n), .publicExponent(e)])
        let blob = Data(try session.wrapKey(.rsaPkcsOaep(hash: .sha256, mgf: .sha256), wrappingKey: pub, key: key))
        XCTAssertEqual(blob.count, 256)
        // OpenSSL unwraps it with SHA-256 (and not with SHA-1), and gets the token's key: same check value.
        let unwrapped = try AWSSide.decryptOAEP(blob, with: aws, hash: "sha256")
        XCTAssertEqual(unwrapped.count, 32)
        let tokenKCV = try session.encrypt(.aesEcb, key: key, data: [UInt8](repeating: 0, count: 16)).prefix(3)
        XCTAssertEqual(try AWSSide.aesKCV(unwrapped), Data(tokenKCV).hex.uppercased())
        XCTAssertThrowsError(try AWSSide.decryptOAEP(blob, with: aws, hash: "sha1"), "the blob is OAEP with SHA-256, not SHA-1")
        try session.destroyObject(key)
        XCTAssertEqual(try session.findObjects([.label("t")]), [])
    }
}
