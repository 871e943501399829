import BYOK
import ByokAPI
import Foundation
import Logging
import PKCS11
import Synchronization

/// The HMAC key that MACs audit records (`auditMacKey`), which byokd owns: it creates it
/// sensitive and never extractable, or adopts an existing key only if the token says it always
/// was both — a key that was ever extractable may have been wrapped out, and whoever holds a copy
/// can forge a fully MACed history. byokd never wraps it, never offers it for import, and lists it
/// as reserved.
final class AuditMacKey: Sendable {
    /// The label or `pkcs11:` URI from the configuration.
    let reference: String
    private struct Identity: Sendable {
        let label: String
        let id: [UInt8]
    }
    /// Set by `prepare` once the key is checked or created.
    private let identity = Mutex<Identity?>(nil)

    init(reference: String) { self.reference = reference }

    /// Finds and checks an existing key, so records can be MACed from now on; refuses a key that
    /// may have left the token. Returns the key, or nil if there is none yet (`begin` makes it).
    @discardableResult
    func adopt(service: TokenService, logger: Logger) throws -> TokenKey? {
        let found: TokenKey? = try TokenErrors.guarded("audit MAC key lookup") {
            try service.withSession { session, token in
                do { return try KeyStore(session: session, token: token).find(reference) } catch let e as ByokError where e.code == .keyNotFound {
                    return nil
                }
            }
        }
        guard let key = found else { return nil }
        try TokenErrors.guarded("audit MAC key check") {
            try service.withSession { session, token in try Self.check(key, session: session, token: token) }
        }
        identity.withLock { $0 = Identity(label: key.label, id: key.id) }
        logger.info("audit records are MACed on the token", metadata: ["key": "\(key.label)", "id": "\(key.id.hex)"])
        return key
    }

    /// Creates the key if `adopt` found none (write-ahead: an intent record first, then the key,
    /// then an `audit.mac-key` record MACed with it). When the log's last record carries no MAC,
    /// an `audit.mac-key` record says the key is adopted, so MACs cover the log from there on.
    func begin(service: TokenService, audit: AuditLog, logger: Logger) throws {
        let adopted = try identity.withLock({ $0 }) ?? adopt(service: service, logger: logger).map { Identity(label: $0.label, id: $0.id) }
        if let key = adopted {
            if !audit.lastRecordIsMACed {
                try audit.append(record(key, note: "byokd adopted its audit MAC key (sensitive, never extractable); token MACs cover the log from this record on"))
            }
            return
        }
        let (label, id) = try target()
        var intent = AuditRecord(time: Timestamp.string(Date()), requestId: "-", operation: AuditEvent.macKey, result: "error")
        intent.key = .init(label: label, id: id?.hex, spec: KeySpec.HMAC_256.rawValue)
        intent.note = "byokd creates its audit MAC key"
        let seq = try audit.intent(intent)
        let key = try TokenErrors.guarded("audit MAC key generation") {
            try service.withSession { session, token in try KeyStore(session: session, token: token).generateAuditMacKey(label: label, id: id) }
        }
        let created = Identity(label: key.label, id: key.id)
        identity.withLock { $0 = created }
        logger.notice("created the audit MAC key on the token (sensitive, never extractable)", metadata: ["key": "\(key.label)", "id": "\(key.id.hex)"])
        var done = record(created, note: "byokd created its audit MAC key (sensitive, never extractable); token MACs cover the log from this record on")
        done.intent = seq
        try audit.append(done)
    }

    private func record(_ key: Identity, note: String) -> AuditRecord {
        var r = AuditRecord(time: Timestamp.string(Date()), requestId: "-", operation: AuditEvent.macKey, result: "ok")
        r.key = .init(label: key.label, id: key.id.hex, spec: KeySpec.HMAC_256.rawValue)
        r.note = note
        return r
    }

    /// The label (and id) to create the key with: the reference's label, or a URI's object= and id=.
    private func target() throws -> (String, [UInt8]?) {
        guard reference.hasPrefix("pkcs11:") else { return (reference, nil) }
        let uri: PKCS11URI
        do { uri = try PKCS11URI(reference) } catch { throw ByokError(.badRequest, "auditMacKey \(reference): \(error)") }
        guard let label = uri.objectLabel else {
            throw ByokError(.keyNotFound, "no key matches auditMacKey \(reference), and byokd can create one only with a label: add object=LABEL to the URI, or give a plain label")
        }
        return (label, uri.objectID)
    }

    /// An existing key is adopted only if it is an HMAC key the token says was always sensitive
    /// and never extractable.
    private static func check(_ key: TokenKey, session: Session, token: TokenInfo) throws {
        let v = try session.attributes(key.handle, [.neverExtractable, .alwaysSensitive, .sign])
        let advice = "byokd makes its own (sensitive, never extractable) when auditMacKey names a label no key has: choose a new label; the old key's MACs stay checkable only with it"
        guard key.objectClass == .secretKey, let spec = key.spec, case .hmac = spec.kind, v.bool(.sign) == true else {
            throw ByokError(.keyReserved, "auditMacKey \"\(key.label)\" on token \"\(token.label)\" is \(key.typeDescription), not an HMAC key that can sign; \(advice)")
        }
        var flaws: [String] = []
        if key.extractable != false { flaws.append("it is extractable (CKA_EXTRACTABLE=\(key.extractable.map { "\($0)" } ?? "unknown"))") }
        if v.bool(.neverExtractable) != true { flaws.append("it was extractable once (CKA_NEVER_EXTRACTABLE is not true)") }
        if key.sensitive != true { flaws.append("it is not sensitive (CKA_SENSITIVE)") }
        if v.bool(.alwaysSensitive) != true { flaws.append("it was not always sensitive (CKA_ALWAYS_SENSITIVE is not true)") }
        guard flaws.isEmpty else {
            throw ByokError(.keyReserved, "byokd will not MAC its audit log with key \"\(key.label)\" on token \"\(token.label)\": \(flaws.joined(separator: "; ")); a copy of it may exist outside the token, and whoever holds one can forge a fully MACed history. \(advice)")
        }
    }

    func isAuditKey(_ key: TokenKey) -> Bool {
        guard key.objectClass == .secretKey else { return false }
        return identity.withLock { $0.map { $0.label == key.label && $0.id == key.id } ?? false }
    }

    /// Refuses to wrap or import the audit MAC key.
    func refuseToRelease(_ key: TokenKey) throws {
        if isAuditKey(key) {
            throw ByokError(.keyReserved, "key \"\(key.label)\" is byokd's audit MAC key; it never leaves the token and cannot be imported into AWS KMS")
        }
    }

    /// `keys list`: the audit MAC key with no importable spec, marked as byokd's own.
    func mark(_ key: TokenKey, _ info: KeyInfo) -> KeyInfo {
        guard isAuditKey(key) else { return info }
        var i = info
        i.spec = nil
        i.reservedFor = "audit-mac"
        return i
    }

    /// The MAC of `digest` on the token, or why it cannot be made.
    func sign(_ digest: [UInt8], service: TokenService) throws -> [UInt8] {
        try TokenErrors.guarded("audit MAC") {
            try service.withSession(retry: true) { session, token in
                let (key, _) = try service.keys.key(reference, store: KeyStore(session: session, token: token))
                guard isAuditKey(key), let spec = key.spec, case .hmac(let hash, _) = spec.kind else {
                    throw ByokError(.keyNotFound, "\"\(reference)\" no longer names the audit MAC key byokd checked at start")
                }
                return try session.sign(.hmac(hash), key: key.handle, data: digest)
            }
        }
    }

    /// Whether a record's MAC is the token's; nil when the token cannot say.
    func check(_ record: AuditRecord, service: TokenService) -> Bool? {
        guard let hex = record.mac else { return nil }
        guard let mac = [UInt8](hex: hex) else { return false }
        guard let expected = try? sign(Digest.sha256(AuditVerifier.macInput(record)), service: service) else { return nil }
        return mac == expected
    }
}
