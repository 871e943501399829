import Foundation
import PKCS11

/// AWS wrapping public keys created on the token once (as session objects) and reused while their
/// parameters are valid, keyed by the SHA-256 of their SubjectPublicKeyInfo. Session objects live
/// as long as the session that made them: `invalidateAll()` when sessions are reopened.
public final class WrappingKeyCache: @unchecked Sendable {
    struct Entry {
        let handle: ObjectHandle
        let expires: Date
        var lastUsed: Date
    }

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    public let capacity: Int

    public init(capacity: Int = 32) { self.capacity = capacity }

    /// The handle of `key` on the token, created with `session` if it is not there yet.
    /// `validTo` bounds the reuse (24 hours at most, as AWS keeps parameters valid).
    public func handle(for key: RSAPublicKey, validTo: Date?, session: Session, token: TokenInfo) throws -> ObjectHandle {
        let id = key.sha256.hex
        let now = Date()
        var stale: [ObjectHandle] = []
        lock.lock()
        if var e = entries[id], e.expires > now {
            e.lastUsed = now
            entries[id] = e
            lock.unlock()
            return e.handle
        }
        if let e = entries.removeValue(forKey: id) { stale.append(e.handle) }
        lock.unlock()
        stale.forEach { try? session.destroyObject($0) }

        let handle = try OnTokenWrap(session: session, token: token).createWrappingKey(key)
        let expires = min(validTo ?? now.addingTimeInterval(86_400), now.addingTimeInterval(86_400))
        lock.lock()
        if let raced = entries[id] {
            // Another request made it meanwhile: keep theirs.
            lock.unlock()
            try? session.destroyObject(handle)
            return raced.handle
        }
        entries[id] = Entry(handle: handle, expires: expires, lastUsed: now)
        // Evict expired entries, then the least recently used beyond capacity.
        var evict = entries.filter { $0.value.expires <= now }.map(\.key)
        if entries.count - evict.count > capacity {
            evict += entries.filter { $0.value.expires > now }.sorted { $0.value.lastUsed < $1.value.lastUsed }
                .prefix(entries.count - evict.count - capacity).map(\.key)
        }
        let gone = evict.compactMap { entries.removeValue(forKey: $0)?.handle }
        lock.unlock()
        gone.forEach { try? session.destroyObject($0) }
        return handle
    }

    /// Forgets a handle the token no longer knows.
    public func forget(_ key: RSAPublicKey) {
        lock.lock(); entries[key.sha256.hex] = nil; lock.unlock()
    }

    /// Forgets everything (the sessions that owned the objects are gone).
    public func invalidateAll() {
        lock.lock(); entries.removeAll(); lock.unlock()
    }

    public var count: Int { lock.lock(); defer { lock.unlock() }; return entries.count }
}
