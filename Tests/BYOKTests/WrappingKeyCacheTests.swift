@testable import BYOK
import Foundation
import PKCS11
import TestSupport
import XCTest

/// The cache of AWS wrapping keys on the token, in process on SoftHSM: a key is created once and
/// reused, each key has its own object holding its modulus, and an expired or evicted object is
/// destroyed on the token (asked of the token itself, not of the cache).
final class WrappingKeyCacheTests: XCTestCase {
    var token: LoadedToken!
    var session: Session!
    var keys: [RSAPublicKey] = []

    override func setUpWithError() throws {
        token = try LoadedToken.softHSM(label: "cache-test")
        session = try token.openSession()
        keys = try [2048, 3072, 4096].map { try RSAPublicKey(spki: Array(try AWSSide.keyPair(bits: $0).publicDER)) }
    }

    override func tearDown() { session = nil; token = nil }

    func handle(_ cache: WrappingKeyCache, _ key: RSAPublicKey, validTo: Date? = nil) throws -> ObjectHandle {
        try cache.handle(for: key, validTo: validTo, session: session, token: token.info)
    }

    /// The wrapping key objects on the token.
    func onToken() throws -> Set<ObjectHandle> { Set(try session.findObjects([.class(.publicKey), .label("byokd-wrapping-key")])) }

    /// The modulus the token holds for `h`, or the token's error for a handle it no longer knows.
    func modulus(_ h: ObjectHandle) -> Result<[UInt8], Error> { Result { try session.attribute(h, .modulus) } }

    func assertDestroyed(_ h: ObjectHandle, file: StaticString = #filePath, line: UInt = #line) {
        guard case .failure(let e) = modulus(h) else { return XCTFail("object \(h.rawValue) is still on the token", file: file, line: line) }
        XCTAssertEqual((e as? PKCS11Error)?.returnValue?.description, "CKR_OBJECT_HANDLE_INVALID", "\(e)", file: file, line: line)
    }

    func testTheSameKeyIsOneObjectAndEachKeyHasItsOwn() throws {
        let cache = WrappingKeyCache()
        let a = try handle(cache, keys[0])
        XCTAssertEqual(try handle(cache, keys[0]), a, "reused, not created again")
        XCTAssertEqual(try onToken(), [a])
        let b = try handle(cache, keys[1])
        XCTAssertNotEqual(a, b)
        XCTAssertEqual(try onToken(), [a, b])
        XCTAssertEqual(cache.count, 2)
        XCTAssertEqual(try modulus(a).get(), keys[0].modulus, "the object holds the key it was made for")
        XCTAssertEqual(try modulus(b).get(), keys[1].modulus)
        XCTAssertEqual(try session.attribute(a, .publicExponent).drop { $0 == 0 }.map { $0 }, keys[0].publicExponent)
        // The same key read again (a new RSAPublicKey, same bytes) finds the same object.
        XCTAssertEqual(try handle(cache, try RSAPublicKey(spki: keys[0].der)), a)
    }

    func testAnExpiredEntryIsReplacedAndItsObjectDestroyed() throws {
        let cache = WrappingKeyCache()
        let first = try handle(cache, keys[0], validTo: Date().addingTimeInterval(1.5))
        XCTAssertEqual(try handle(cache, keys[0]), first, "still valid")
        usleep(1_700_000)
        let second = try handle(cache, keys[0], validTo: Date().addingTimeInterval(3600))
        XCTAssertNotEqual(second, first, "a new object once the parameters expired")
        assertDestroyed(first)
        XCTAssertEqual(try onToken(), [second])
        XCTAssertEqual(try modulus(second).get(), keys[0].modulus)
        // An entry never outlives 24 hours, whatever validTo says; and one within it is kept.
        XCTAssertEqual(try handle(cache, keys[0], validTo: Date().addingTimeInterval(7 * 86_400)), second)
    }

    func testBeyondCapacityTheLeastRecentlyUsedIsEvictedAndDestroyed() throws {
        let cache = WrappingKeyCache(capacity: 2)
        let a = try handle(cache, keys[0])
        usleep(2000)
        let b = try handle(cache, keys[1])
        usleep(2000)
        XCTAssertEqual(try handle(cache, keys[0]), a, "a is now the more recently used")
        usleep(2000)
        let c = try handle(cache, keys[2])
        XCTAssertEqual(cache.count, 2)
        assertDestroyed(b)
        XCTAssertEqual(try onToken(), [a, c])
        XCTAssertEqual(try handle(cache, keys[0]), a, "a survived")
        XCTAssertEqual(try handle(cache, keys[2]), c, "c survived")
        // b again: made anew, and now a (used before c) goes.
        let b2 = try handle(cache, keys[1])
        XCTAssertNotEqual(b2, b)
        assertDestroyed(a)
        XCTAssertEqual(try onToken(), [c, b2])
    }

    func testForgetAndInvalidateAllMakeTheNextUseCreateTheKeyAgain() throws {
        let cache = WrappingKeyCache()
        let a = try handle(cache, keys[0])
        // The token lost the object (another tool deleted it): forget, and the next use makes it again.
        try session.destroyObject(a)
        cache.forget(keys[0])
        XCTAssertEqual(cache.count, 0)
        let a2 = try handle(cache, keys[0])
        XCTAssertNotEqual(a2, a)
        XCTAssertEqual(try modulus(a2).get(), keys[0].modulus)
        _ = try handle(cache, keys[1])
        XCTAssertEqual(cache.count, 2)
        // The session that owned the objects closes (a reconnect): its session objects are gone.
        session.close()
        session = try token.openSession()
        XCTAssertEqual(try onToken(), [], "session objects went with their session")
        cache.invalidateAll()
        XCTAssertEqual(cache.count, 0)
        let fresh = try handle(cache, keys[0])
        XCTAssertEqual(try modulus(fresh).get(), keys[0].modulus, "a usable object on the new session")
        XCTAssertEqual(try onToken(), [fresh])
    }
}
