import ByokAPI
import XCTest

/// `Digest.sha256` (a pre-fetched OpenSSL method) against FIPS 180-2's test vectors.
final class DigestTests: XCTestCase {
    func testSHA256MatchesTheStandardVectors() {
        XCTAssertEqual(Digest.sha256([]).hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(Digest.sha256(Array("abc".utf8)).hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(Digest.sha256(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)).hex,
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(Digest.sha256([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)).hex,
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    func testConcurrentHashingAgrees() {
        let input = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let expected = Digest.sha256(input)
        DispatchQueue.concurrentPerform(iterations: 64) { _ in XCTAssertEqual(Digest.sha256(input), expected) }
    }
}
