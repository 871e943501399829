import BYOK
import ByokAPI
import Foundation
import PKCS11
import Synchronization

/// Token keys by the reference a request names (label or URI), so a wrap does not read the key's
/// attributes and compute its check value every time. The token is still searched on every use:
/// the reference must name exactly one key (KEY_AMBIGUOUS otherwise, cached or not), and a cached
/// entry is used only for the very object that search finds (one search, without a class, when
/// that object is all it finds: `KeyStore.handle(of:known:)`); once a second, one
/// C_GetAttributeValue confirms the handle still holds that object's label, id and class.
final class KeyCache: Sendable {
    private struct Entry: Sendable {
        let key: TokenKey
        let info: KeyInfo
        var checked: Date
    }

    /// How long a cached handle's attributes are trusted without reading them again.
    static let recheckInterval: TimeInterval = 1
    private static let capacity = 256

    private let entries = Mutex<[String: Entry]>([:])

    /// The one key `reference` names, its description from the cache when it is the same object.
    func key(_ reference: String, store: KeyStore, now: Date = Date()) throws -> (TokenKey, KeyInfo) {
        let cached = entries.withLock { $0[reference] }
        var handle = try store.handle(of: reference, known: cached?.key.handle)
        if let hit = cached, hit.key.handle == handle {
            if now.timeIntervalSince(hit.checked) < Self.recheckInterval { return (hit.key, hit.info) }
            if let v = try? store.session.attributes(handle, [.label, .id, .class]),
               v.string(.label) == hit.key.label, (v[.id] ?? []) == hit.key.id, v.objectClass == hit.key.objectClass {
                entries.withLock { $0[reference]?.checked = now }
                return (hit.key, hit.info)
            }
            // The handle holds another object now: search as if nothing were cached.
            handle = try store.handle(of: reference)
        }
        let key = try store.load(handle)
        let info = store.info(key)
        entries.withLock {
            if $0.count >= Self.capacity { $0.removeAll() }
            $0[reference] = Entry(key: key, info: info, checked: now)
        }
        return (key, info)
    }

    func forget(_ reference: String) { entries.withLock { $0[reference] = nil } }

    func removeAll() { entries.withLock { $0.removeAll() } }
}
