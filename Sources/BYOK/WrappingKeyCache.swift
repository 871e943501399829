import Foundation
import PKCS11
import Synchronization

/// AWS wrapping public keys created on the token once (as session objects) and reused while their
/// parameters are valid, keyed by the SHA-256 of their SubjectPublicKeyInfo. Session objects live
/// as long as the session that made them: `invalidateAll()` when sessions are reopened.
public final class WrappingKeyCache: Sendable {
    struct Entry: Sendable {
        let handle: ObjectHandle
        let expires: Date
        var lastUsed: Date
    }

    private let entries = Mutex<[String: Entry]>([:])
    public let capacity: Int

    public init(capacity: Int = 32) { self.capacity = capacity }

    /// The handle of `key` on the token, created with `session` if it is not there yet.
    /// `validTo` bounds the reuse (24 hours at most, as AWS keeps parameters valid).
    public func handle(for key: RSAPublicKey, validTo: Date?, session: Session, token: TokenInfo) throws -> ObjectHandle {
        let id = key.sha256Hex
        let now = Date()
        enum Lookup { case hit(ObjectHandle), miss(stale: ObjectHandle?) }
        let lookup = entries.withLock { entries -> Lookup in
            if var e = entries[id], e.expires > now {
                e.lastUsed = now
                entries[id] = e
                return .hit(e.handle)
            }
            return .miss(stale: entries.removeValue(forKey: id)?.handle)
        }
        switch lookup {
        case .hit(let handle): return handle
        case .miss(let stale): if let stale { try? session.destroyObject(stale) }
        }

        let handle = try OnTokenWrap(session: session, token: token).createWrappingKey(key)
        let expires = min(validTo ?? now.addingTimeInterval(86_400), now.addingTimeInterval(86_400))
        let (kept, gone) = entries.withLock { entries -> (ObjectHandle, [ObjectHandle]) in
            // Another request made it meanwhile: keep theirs, destroy ours.
            if let raced = entries[id] { return (raced.handle, [handle]) }
            entries[id] = Entry(handle: handle, expires: expires, lastUsed: now)
            // Evict expired entries, then the least recently used beyond capacity.
            var evict = entries.filter { $0.value.expires <= now }.map(\.key)
            if entries.count - evict.count > capacity {
                evict += entries.filter { $0.value.expires > now }.sorted { $0.value.lastUsed < $1.value.lastUsed }
                    .prefix(entries.count - evict.count - capacity).map(\.key)
            }
            return (handle, evict.compactMap { entries.removeValue(forKey: $0)?.handle })
        }
        gone.forEach { try? session.destroyObject($0) }
        return kept
    }

    /// Forgets a handle the token no longer knows.
    public func forget(_ key: RSAPublicKey) {
        entries.withLock { $0[key.sha256Hex] = nil }
    }

    /// Forgets everything (the sessions that owned the objects are gone).
    public func invalidateAll() {
        entries.withLock { $0.removeAll() }
    }

    public var count: Int { entries.withLock { $0.count } }
}
