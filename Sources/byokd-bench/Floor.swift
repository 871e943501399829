import BYOK
import ByokAPI
import Foundation
import PKCS11
import Posix
import Synchronization

/// The physical floor of a wrap, measured in this process on byokd's token and disk: ONE
/// C_WrapKey of byokd's own key into a buffer of the wrapping key's modulus size, one append of an
/// audit record's size to a file next to byokd's audit log, and one fdatasync of that file.
/// Nothing a daemon could leave out.
final class Floor: @unchecked Sendable {  // PKCS#11 sessions (C handles): batch() gives each parallel iteration its own; `record` is set before any measurement
    let module: Module
    let sessions: [Session]
    let mechanism: Mechanism
    let hash: HashAlgorithm
    let wrappingKey: ObjectHandle
    let key: ObjectHandle
    let modulusBytes: Int
    let fd: Int32
    let path: String
    /// One audit record's bytes (its size taken from byokd's log), newline included.
    var record: [UInt8]

    /// `sessions`: as many as byokd opens, for the batch floor; the single wrap uses the first.
    init(_ t: TokenSetup, keyLabel: String, wrappingKey aws: RSAPublicKey, sessions count: Int, auditDir: String) throws {
        module = try Module(t.module, initArgs: t.initArgs)
        let (slot, info) = try TokenSelector(t.tokenLabel).select(in: module)
        sessions = try (0..<count).map { _ in try slot.openSession() }
        if info.loginRequired { try sessions[0].login(try PIN(file: t.pinFile)) }
        let s = sessions[0]
        // A session object is visible to every session of this process, as byokd's wrapping keys are.
        wrappingKey = try OnTokenWrap(session: s, token: info).createWrappingKey(aws)
        let found = try s.findObjects([.class(.secretKey), .token(true), .label(keyLabel)])
        guard found.count == 1 else { throw BenchError("the floor needs exactly one key \"\(keyLabel)\" on the token, found \(found.count)") }
        key = found[0]
        modulusBytes = aws.bits / 8
        // The hash byokd's self-test passes on this token: SHA-256 where the token takes it.
        let sha256 = Mechanism.rsaPkcsOaep(hash: .sha256, mgf: .sha256)
        hash = (try? s.wrapKey(sha256, wrappingKey: wrappingKey, key: key, expectedLength: modulusBytes)) != nil ? .sha256 : .sha1
        mechanism = .rsaPkcsOaep(hash: hash, mgf: hash)
        let path = auditDir + "/floor.jsonl"
        self.path = path
        fd = try Posix.retrying("open") { open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600) }
        record = [UInt8](repeating: 0x61, count: 700) + [10]
    }

    deinit {
        close(fd)
        unlink(path)
        sessions.forEach { $0.close() }
    }

    /// One wrap on `session`: a single C_WrapKey call into a buffer of the modulus' size.
    @inline(__always) func wrap(on session: Session) throws {
        let blob = try session.wrapKey(mechanism, wrappingKey: wrappingKey, key: key, expectedLength: modulusBytes)
        guard blob.count == modulusBytes else { throw BenchError("the floor's wrap gave \(blob.count) bytes") }
    }

    /// Appends `records` audit records in one write and syncs them in one fdatasync.
    @inline(__always) func appendAndSync(_ records: Int) throws {
        try Posix.writeAll(fd, records == 1 ? record : Array([[UInt8]](repeating: record, count: records).joined()))
        try Posix.retrying("fdatasync") { fdatasync(fd) }
    }

    /// One wrap and its record, as one timing: (the whole, its C_WrapKey part).
    func wrapAndSync() throws -> (total: Double, wrap: Double) {
        let t0 = now()
        try wrap(on: sessions[0])
        let t1 = now()
        try appendAndSync(1)
        return (now() - t0, t1 - t0)
    }

    /// A batch as byokd runs one: groups of `group` wraps spread over all the sessions in parallel,
    /// then the group's records in one append and one fdatasync. Returns the seconds it took.
    func batch(_ count: Int, group: Int) throws -> Double {
        try timed {
            var start = 0
            while start < count {
                let n = min(group, count - start)
                let failed = Mutex(false)
                DispatchQueue.concurrentPerform(iterations: sessions.count) { s in
                    for _ in stride(from: s, to: n, by: sessions.count) {
                        do { try wrap(on: sessions[s]) } catch { failed.withLock { $0 = true } }
                    }
                }
                if failed.withLock({ $0 }) { throw BenchError("a floor batch wrap failed") }
                try appendAndSync(n)
                start += n
            }
        }
    }
}

/// What a starting byokd cannot avoid on the token: load the module, C_Initialize, open its
/// sessions, C_Login. Measured in this process, for the cold-start row.
func openToken(_ t: TokenSetup, sessions count: Int) throws -> Double {
    try timed {
        let m = try Module(t.module, initArgs: t.initArgs)
        let (slot, info) = try TokenSelector(t.tokenLabel).select(in: m)
        let sessions = try (0..<count).map { _ in try slot.openSession() }
        if info.loginRequired { try sessions[0].login(try PIN(file: t.pinFile)) }
        sessions.forEach { $0.close() }
    }
}
