import BYOK
import ByokAPI
import Foundation
import PKCS11

/// Token keys by the reference a request names (label or URI), so a wrap does not search the
/// token, read attributes and compute a check value every time. A cached handle is used only
/// while it still names the same object: after `recheckInterval` one C_GetAttributeValue confirms
/// it, or the key is looked up again.
final class KeyCache: @unchecked Sendable {  // `entries` behind `lock`
    private struct Entry {
        let key: TokenKey
        let info: KeyInfo
        var checked: Date
    }

    /// How long a cached key's handle is trusted without asking the token again. Handles of deleted
    /// objects make C_WrapKey fail (and the entry is dropped); this bounds the window in which a
    /// key deleted and replaced by another tool could be mistaken for the old one.
    static let recheckInterval: TimeInterval = 1
    private static let capacity = 256

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]

    /// The key `reference` names, from the cache when its handle still names the same object.
    func key(_ reference: String, store: KeyStore, now: Date = Date()) throws -> (TokenKey, KeyInfo) {
        if let hit = lock.withLock({ entries[reference] }) {
            if now.timeIntervalSince(hit.checked) < Self.recheckInterval { return (hit.key, hit.info) }
            if let v = try? store.session.attributes(hit.key.handle, [.label, .id, .class]),
               v.string(.label) == hit.key.label, (v[.id] ?? []) == hit.key.id, v.objectClass == hit.key.objectClass {
                lock.withLock { entries[reference]?.checked = now }
                return (hit.key, hit.info)
            }
        }
        let key = try store.find(reference)
        let info = store.info(key)
        lock.withLock {
            if entries.count >= Self.capacity { entries.removeAll() }
            entries[reference] = Entry(key: key, info: info, checked: now)
        }
        return (key, info)
    }

    func forget(_ reference: String) { lock.withLock { entries[reference] = nil } }

    func removeAll() { lock.withLock { entries.removeAll() } }
}
