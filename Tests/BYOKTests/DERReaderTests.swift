@testable import BYOK
import Foundation
import TestSupport
import XCTest

/// The DER reader for AWS wrapping keys (`RSAPublicKey(derReader:)`, no OpenSSL in it), alone and
/// against OpenSSL's parser (`RSAPublicKey(openSSL:)`): on real keys of every size and odd
/// exponents it reads what OpenSSL and the openssl command read; whatever it accepts OpenSSL
/// accepts as the same key; it refuses truncations, trailing bytes and non-DER with its reason.
final class DERReaderTests: XCTestCase {
    typealias Failure = RSAPublicKey.ParseError

    func reader(_ der: [UInt8]) -> Result<RSAPublicKey, Failure> {
        Result { try RSAPublicKey(derReader: der) }.mapError { $0 as! Failure }
    }

    func openSSL(_ der: [UInt8]) -> Result<RSAPublicKey, Failure> {
        Result { try RSAPublicKey(openSSL: der) }.mapError { $0 as! Failure }
    }

    /// The differential property: a key the reader accepts is the same key to OpenSSL.
    func assertOpenSSLAgrees(_ der: [UInt8], _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        guard case .success(let fast) = reader(der) else { return }
        switch openSSL(der) {
        case .success(let slow):
            XCTAssertEqual(fast.modulus, slow.modulus, "modulus: \(what)", file: file, line: line)
            XCTAssertEqual(fast.publicExponent, slow.publicExponent, "exponent: \(what)", file: file, line: line)
            XCTAssertEqual(fast.bits, slow.bits, "bits: \(what)", file: file, line: line)
        case .failure(let e):
            XCTFail("the reader accepted what OpenSSL refuses (\(e)): \(what)", file: file, line: line)
        }
    }

    func testRealKeysOfEverySizeReadAsOpenSSLReadsThem() throws {
        for bits in [1024, 2048, 3072, 4096] {
            let aws = try AWSSide.keyPair(bits: bits)
            let der = Array(aws.publicDER)
            let key = try reader(der).get()
            let reference = try AWSSide.rsaComponents(aws.publicDER)
            XCTAssertEqual(key.modulus, reference.modulus, "RSA-\(bits) modulus as the openssl command prints it")
            XCTAssertEqual(key.publicExponent, reference.exponent, "RSA-\(bits)")
            XCTAssertEqual(key.bits, bits)
            XCTAssertEqual(key.der, der)
            assertOpenSSLAgrees(der, "RSA-\(bits)")
        }
    }

    func testOddExponents() throws {
        // Made by OpenSSL: small, common, and one whose top bit needs the INTEGER's 0x00 pad.
        for e: UInt64 in [3, 17, 65537, 2_147_483_649] {
            let aws = try AWSSide.keyPair(bits: 2048, exponent: e)
            let key = try reader(Array(aws.publicDER)).get()
            XCTAssertEqual(key.publicExponent, try AWSSide.rsaComponents(aws.publicDER).exponent, "e=\(e)")
            XCTAssertEqual(key.publicExponent, withUnsafeBytes(of: e.bigEndian, Array.init).drop { $0 == 0 }.map { $0 }, "e=\(e)")
            assertOpenSSLAgrees(Array(aws.publicDER), "e=\(e)")
        }
        // Built by hand around a real modulus: exponents longer than any key generator makes.
        let modulus = try AWSSide.rsaComponents(try AWSSide.keyPair(bits: 2048).publicDER).modulus
        for exponent: [UInt8] in [[0x01, 0x00, 0x00, 0x00, 0x00, 0x01], [0x80] + [UInt8](repeating: 0, count: 15) + [0x01], [0x01]] {
            let der = DER.rsaSPKI(modulus: modulus, exponent: exponent)
            let key = try reader(der).get()
            XCTAssertEqual(key.publicExponent, exponent)
            XCTAssertEqual(key.modulus, modulus)
            assertOpenSSLAgrees(der, "e=\(exponent.hex)")
        }
    }

    func testTruncationsAndTrailingBytesAreRefusedWithTheirReason() throws {
        let der = Array(try AWSSide.keyPair(bits: 2048).publicDER)
        XCTAssertEqual(reader([]).failure, .notDER)
        for cut in 1..<der.count {
            let short = Array(der.prefix(cut))
            XCTAssertEqual(reader(short).failure, .notDER, "cut at \(cut)")
            XCTAssertNotNil(openSSL(short).failure, "OpenSSL also refuses the cut at \(cut)")
        }
        for tail: [UInt8] in [[0], [0x30, 0x00], [0xFF, 0xFF, 0xFF], der] {
            XCTAssertEqual(reader(der + tail).failure, .trailingBytes, "\(tail.count) trailing bytes")
            XCTAssertEqual(openSSL(der + tail).failure, .trailingBytes, "OpenSSL says the same")
        }
    }

    func testEverySingleByteChangeIsRefusedOrReadAsOpenSSLReadsIt() throws {
        let der = Array(try AWSSide.keyPair(bits: 2048).publicDER)
        let original = try reader(der).get()
        var acceptedChanges = 0
        for i in der.indices {
            for mask: UInt8 in [0x01, 0x40, 0x80, 0xFF] {
                var bad = der
                bad[i] ^= mask
                assertOpenSSLAgrees(bad, "byte \(i) ^ \(mask)")
                if case .success(let k) = reader(bad) {
                    acceptedChanges += 1
                    XCTAssertNotEqual([k.modulus, k.publicExponent], [original.modulus, original.publicExponent], "byte \(i) ^ \(mask) changed nothing?")
                }
            }
        }
        // Changes inside the modulus and exponent still make a key: the comparison above was made.
        XCTAssertGreaterThan(acceptedChanges, 500)
        // Every change to the first 24 bytes (the structure, the algorithm) is refused.
        for i in 0..<24 {
            var bad = der
            bad[i] ^= 0x01
            XCTAssertNotNil(reader(bad).failure, "byte \(i)")
        }
    }

    /// BER that OpenSSL tolerates is not DER; the reader refuses it (and the production path,
    /// `init(spki:)`, then asks OpenSSL, as before).
    func testWhatIsNotStrictDERIsRefused() throws {
        let der = Array(try AWSSide.keyPair(bits: 2048).publicDER)
        let components = try AWSSide.rsaComponents(Data(der))
        let n = components.modulus, e = components.exponent
        XCTAssertEqual(Array(der.prefix(2)), [0x30, 0x82])
        let cases: [(String, [UInt8])] = [
            ("a length in the long form with a leading zero", [0x30, 0x83, 0x00] + der.dropFirst(2)),
            ("an indefinite length", [0x30, 0x80] + der.dropFirst(4) + [0x00, 0x00]),
            ("a modulus with an extra leading zero", DER.sequence(DER.sequence(DER.rsaEncryption, DER.null),
                DER.bitString(DER.sequence(DER.tlv(0x02, [0, 0] + n), DER.integer(e))))),
            ("a negative modulus", DER.sequence(DER.sequence(DER.rsaEncryption, DER.null),
                DER.bitString(DER.sequence(DER.tlv(0x02, n), DER.integer(e))))),
            ("a zero exponent", DER.rsaSPKI(modulus: n, exponent: [0])),
            ("no NULL parameters", DER.sequence(DER.sequence(DER.rsaEncryption), DER.bitString(DER.sequence(DER.integer(n), DER.integer(e))))),
            ("unused bits in the BIT STRING", DER.sequence(DER.sequence(DER.rsaEncryption, DER.null),
                DER.tlv(0x03, [1] + DER.sequence(DER.integer(n), DER.integer(e))))),
            ("an OCTET STRING for the key", DER.sequence(DER.sequence(DER.rsaEncryption, DER.null),
                DER.tlv(0x04, [0] + DER.sequence(DER.integer(n), DER.integer(e))))),
            ("a third INTEGER in the key", DER.sequence(DER.sequence(DER.rsaEncryption, DER.null),
                DER.bitString(DER.sequence(DER.integer(n), DER.integer(e), DER.integer([1]))))),
        ]
        for (what, bytes) in cases {
            XCTAssertEqual(reader(bytes).failure, .notDER, what)
            assertOpenSSLAgrees(bytes, what)
        }
        // What the production path makes of the long-form length: OpenSSL reads the same key.
        let ber = cases[0].1
        XCTAssertNotNil(try? openSSL(ber).get(), "OpenSSL tolerates the long-form length")
        XCTAssertEqual(try RSAPublicKey(spki: ber).modulus, n, "init(spki:) falls back to OpenSSL for it")
        // The builder the tests use writes exactly what OpenSSL writes.
        XCTAssertEqual(DER.rsaSPKI(modulus: n, exponent: e), der)
    }

    func testKeysThatAreNotRSAAreNamed() throws {
        let ec = Array(try AWSSide.keyPair(bits: 256, algorithm: "EC").publicDER)
        XCTAssertEqual(reader(ec).failure, .notRSA("an EC key"))
        XCTAssertEqual(openSSL(ec).failure, .notRSA("an EC key"))
        let pss = Array(try AWSSide.keyPair(bits: 2048, algorithm: "RSA-PSS").publicDER)
        XCTAssertEqual(reader(pss).failure, .notRSA("an RSA-PSS key"))
        XCTAssertEqual(openSSL(pss).failure, .notRSA("an RSA-PSS key"))
        let ed = Array(try AWSSide.keyPair(bits: 256, algorithm: "ED25519").publicDER)
        XCTAssertEqual(reader(ed).failure, .notRSA("not an RSA key (algorithm 1.3.101.112)"))
        guard case .notRSA? = openSSL(ed).failure else { return XCTFail("OpenSSL: \(openSSL(ed))") }
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let f) = self { return f }
        return nil
    }
}
