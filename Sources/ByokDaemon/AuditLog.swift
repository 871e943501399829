import BYOK
import ByokAPI
import Foundation
import Posix

/// The append-only audit log (JSON Lines, hash-chained, optionally MACed on the token). A record is
/// written and fdatasync'd before the answer it describes goes out; a request whose record cannot
/// be written is refused. The file holds whole records only: a failed write is cut back before the
/// error is returned, a torn tail left by a crash is cut off at start (and said so in an
/// `audit.recovered` record), and `seq` continues from the last whole record.
///
/// The file is opened once, without following a symbolic link, locked against a second daemon,
/// and read back (`GET /v1/audit`) through the same descriptor.
public final class AuditLog: @unchecked Sendable {  // every `var` behind `cond`
    public let path: String
    private let fd: Int32
    private let cond = NSCondition()

    /// Whole records up to byte `end`; the last one's `seq`, line hash, and whether it carries a MAC.
    private struct Tail {
        var end: off_t
        var seq: UInt64
        var head: String
        var maced = false
    }
    /// What has been written, and what of it an fdatasync has made durable.
    private var written: Tail
    private var durable: Tail
    /// Appends written, appends made durable, and appends undone after a failed sync.
    private var generation: UInt64 = 0
    private var syncedGeneration: UInt64 = 0
    private var failedThrough: UInt64 = 0
    private var failedSync = ""
    private var syncing = false
    /// Intents written without waiting (`IntentDurability.withOutcome`) until their outcome is
    /// appended, by the request id the outcome carries too (a seq is not enough: after a failed
    /// sync the next record takes the seq of what was cut back): their seq, the generation of their
    /// write, and whether a failed sync cut them back before any sync made them durable.
    private var pendingIntents: [String: (seq: UInt64, generation: UInt64, lost: Bool)] = [:]
    /// Once a record carries a MAC, every later one does or says why not (`macError`).
    private var macsBegan: Bool
    /// Set when a failed write could not be cut back: the file may end in a fragment.
    private var unusable: String?
    /// A torn tail cut off at open, until `recordRecovery` writes what it was.
    private var torn: [UInt8]?

    /// Computes a record's MAC on the token (with `auditMacKey`); throws why it cannot.
    public typealias Signer = @Sendable (_ digest: [UInt8]) throws -> [UInt8]
    private let signer: Signer?
    /// Told the durable head after every sync: byokd writes it to its journal, anchoring the tail.
    private let onSync: (@Sendable (AuditAnchor) -> Void)?
    /// fdatasync(2); tests replace it to make a sync fail.
    var syncCall: (Int32) -> Int32 = { fdatasync($0) }

    public static let genesis = AuditVerifier.genesis
    /// How much of the end of the log is read at start to find the last record.
    static let tailWindow = 1 << 20

    /// Opens (creating) the log at `path`, locks it, cuts off a torn tail and continues its chain.
    /// Call `recordRecovery` next, once the signer can sign.
    public init(path: String, signer: Signer? = nil, onSync: (@Sendable (AuditAnchor) -> Void)? = nil) throws {
        self.path = path
        self.signer = signer
        self.onSync = onSync
        let fd: Int32
        do { fd = try Posix.retrying("open") { open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600) } } catch {
            if error.code == ELOOP {
                throw ByokError(.auditLogFailed, "the audit log \(path) is a symbolic link; byokd does not follow one for its log (records could be appended to another file): remove the link, or set auditLog to the real file")
            }
            throw ByokError(.auditLogFailed, "cannot open the audit log \(path): \(error.message)")
        }
        var tail = Tail(end: 0, seq: 0, head: Self.genesis)
        var began = false
        var torn: [UInt8] = []
        do {
            try Self.checkFile(fd, path: path)
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                throw ByokError(.auditLogFailed, "the audit log \(path) is locked by another process (another byokd writing it?); byokd will not interleave records with it")
            }
            (tail, began, torn) = try Self.lastRecord(fd, path: path)
            if !torn.isEmpty {
                guard ftruncate(fd, tail.end) == 0 else {
                    throw ByokError(.auditLogFailed, "cannot cut the torn end off the audit log \(path): \(String(cString: strerror(errno)))")
                }
                _ = fdatasync(fd)
            }
        } catch {
            close(fd)
            throw error
        }
        self.fd = fd
        written = tail
        durable = tail
        macsBegan = began
        self.torn = torn.isEmpty ? nil : torn
    }

    /// Writes an `audit.recovered` record if `init` cut a torn tail off: how many bytes, and their SHA-256.
    public func recordRecovery() throws {
        guard let torn = cond.withLock({ self.torn }) else { return }
        var r = AuditRecord(time: Timestamp.string(Date()), requestId: "-", operation: AuditEvent.recovered, result: "ok")
        r.droppedBytes = torn.count
        r.droppedSha256 = Digest.sha256(torn).hex
        r.note = "byokd cut \(torn.count) bytes off the end of the log at start: a record torn by a crash in the middle of a write (its request got no answer)"
        try append(r)
        cond.withLock { self.torn = nil }
    }

    deinit { close(fd) }

    /// A regular file of byokd's own user, writable by no one else.
    private static func checkFile(_ fd: Int32, path: String) throws {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ByokError(.auditLogFailed, "cannot stat the audit log \(path)") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw ByokError(.auditLogFailed, "the audit log \(path) is not a regular file") }
        guard st.st_uid == geteuid() else {
            throw ByokError(.auditLogFailed, "the audit log \(path) belongs to uid \(st.st_uid), but byokd runs as uid \(geteuid()); it writes only a log of its own (`chown` it)")
        }
        guard st.st_mode & 0o022 == 0 else {
            throw ByokError(.auditLogFailed, "the audit log \(path) is writable by its group or others (mode \(String(st.st_mode & 0o7777, radix: 8))); `chmod 0600` it")
        }
    }

    /// The last whole record (its end, seq and hash), whether MACs had begun, and any torn bytes
    /// after it. Only the end of the file is read: the log grows without bound, start-up must not.
    private static func lastRecord(_ fd: Int32, path: String) throws -> (Tail, Bool, [UInt8]) {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw ByokError(.auditLogFailed, "cannot stat the audit log \(path)") }
        let size = Int(st.st_size)
        guard size > 0 else { return (Tail(end: 0, seq: 0, head: genesis), false, []) }
        let start = max(0, size - tailWindow)
        var window = [UInt8](repeating: 0, count: size - start)
        let n: Int
        do { n = try Posix.readAll(fd, into: &window, at: off_t(start)) } catch {
            throw ByokError(.auditLogFailed, "cannot read the audit log \(path): \(error.message)")
        }
        window = Array(window.prefix(n))
        let newline = UInt8(ascii: "\n")
        guard let lastNewline = window.lastIndex(of: newline) else {
            if start == 0 { return (Tail(end: 0, seq: 0, head: genesis), false, window) }
            throw ByokError(.auditLogFailed, "the last \(tailWindow) bytes of the audit log \(path) hold no end of a record; byokd will not continue a log it cannot read — check it with `byokctl audit verify`")
        }
        let torn = Array(window[(lastNewline + 1)...])
        let lineStart = window[..<lastNewline].lastIndex(of: newline).map { $0 + 1 } ?? 0
        if lineStart == 0 && start > 0 {
            throw ByokError(.auditLogFailed, "the last record of the audit log \(path) is longer than \(tailWindow) bytes; byokd will not continue a log it cannot read — check it with `byokctl audit verify`")
        }
        let line = Array(window[lineStart..<lastNewline])
        guard let record = try? JSONDecoder().decode(AuditRecord.self, from: Data(line)) else {
            throw ByokError(.auditLogFailed, "the last line of the audit log \(path) is not an audit record; byokd will not continue a chain it cannot read — check the file with `byokctl audit verify \(path)`, then move it aside to begin a new log")
        }
        let tail = Tail(end: off_t(start + lastNewline + 1), seq: record.seq, head: Digest.sha256(line).hex, maced: record.mac != nil)
        return (tail, record.mac != nil || record.macError != nil, torn)
    }

    /// Appends a record (filling seq, prev and mac) and returns once it is on disk.
    public func append(_ record: AuditRecord) throws { try append([record]) }

    /// When a write-ahead record must be on disk.
    public enum IntentDurability: Sendable {
        /// Before this call returns, so before the token is touched: for what changes the token
        /// or sends key material elsewhere (generate, import, the Security Officer's step).
        case beforeToken
        /// Together with its outcome (one fdatasync for both, before the answer): for a wrap, whose
        /// only effect is the answer. The intent is written first, so a full disk still stops the
        /// wrap before the token is touched, and the answer leaves only once both are durable; a
        /// crash before that loses the wrapped bytes with the records (docs/DESIGN.md, "Write-ahead").
        case withOutcome
    }

    /// Writes the write-ahead record of an operation about to touch the token (result "intent")
    /// and returns its seq, durable as `durability` says; the outcome record names it in `intent`.
    /// If this throws, the operation must not run.
    public func intent(_ record: AuditRecord, durability: IntentDurability = .beforeToken) throws -> UInt64 {
        var r = record
        r.result = AuditEvent.intentResult
        r.errorCode = nil
        switch durability {
        case .beforeToken: return try append([r])[0]
        case .withOutcome: return try write([r], wait: false)[0]
        }
    }

    /// Appends records in order and returns their seqs once all of them are on disk. Concurrent
    /// callers share one fdatasync (group commit): whoever syncs, syncs everything written so far.
    /// A failed write is cut back to the last whole record; a failed sync cuts back everything
    /// not yet durable, and every append it held fails.
    @discardableResult
    public func append(_ records: [AuditRecord]) throws -> [UInt64] {
        try write(records, wait: true)
    }

    /// Writes records; with `wait`, returns once they are durable. Without, the write is an intent
    /// whose outcome's append makes it durable (`pendingIntents`).
    private func write(_ records: [AuditRecord], wait: Bool) throws -> [UInt64] {
        guard !records.isEmpty else { return [] }
        cond.lock()
        defer { cond.unlock() }
        if let unusable { throw ByokError(.auditLogFailed, unusable) }
        // An outcome whose intent a failed sync cut back must not be written: its operation would
        // stand in the log without the record written ahead of it (and its answer is refused).
        for r in records {
            guard let seq = r.intent, let pending = pendingIntents[r.requestId], pending.seq == seq else { continue }
            pendingIntents[r.requestId] = nil
            if pending.lost {
                throw ByokError(.auditLogFailed, "byokd cannot sync its audit log \(path): \(failedSync) (the record written ahead of this operation was lost with the failed sync)")
            }
        }
        var tail = written
        var bytes: [UInt8] = []
        var seqs: [UInt64] = []
        for record in records {
            var r = record
            tail.seq += 1
            r.seq = tail.seq
            r.prev = tail.head
            r.mac = nil
            r.macError = nil
            sign(&r)
            let line = AuditVerifier.line(r)
            tail.head = Digest.sha256(line).hex
            tail.maced = r.mac != nil
            bytes += line
            bytes.append(UInt8(ascii: "\n"))
            seqs.append(r.seq)
        }
        do { try Posix.writeAll(fd, bytes) } catch {
            cutBack(to: written.end)
            throw ByokError(.auditLogFailed, "byokd cannot write its audit log \(path): \(error.message)")
        }
        tail.end += off_t(bytes.count)
        written = tail
        generation += 1
        if wait {
            try waitUntilDurable(generation)
        } else {
            for (seq, r) in zip(seqs, records) { pendingIntents[r.requestId] = (seq, generation, false) }
        }
        return seqs
    }

    /// Signs `r` on the token, or says in the record why it carries no MAC once MACs began.
    private func sign(_ r: inout AuditRecord) {
        guard let signer else {
            if macsBegan { r.macError = "byokd runs without auditMacKey, so it MACs no records" }
            return
        }
        do {
            r.mac = try signer(Digest.sha256(AuditVerifier.macInput(r))).hex
            macsBegan = true
        } catch {
            if macsBegan { r.macError = "the token could not sign this record: \(error)" }
        }
    }

    /// Waits (lock held) until append `mine` is durable, syncing for everyone if no one else is.
    private func waitUntilDurable(_ mine: UInt64) throws {
        while true {
            if syncedGeneration >= mine { return }
            if failedThrough >= mine {
                throw ByokError(.auditLogFailed, "byokd cannot sync its audit log \(path): \(failedSync)")
            }
            if syncing { cond.wait(); continue }
            syncing = true
            let target = (generation, written)
            cond.unlock()
            let result = Result { () throws(Errno) in try Posix.retrying("fdatasync") { syncCall(fd) } }
            cond.lock()
            syncing = false
            switch result {
            case .success:
                syncedGeneration = target.0
                durable = target.1
                onSync?(AuditAnchor(seq: durable.seq, hash: durable.head))
            case .failure(let e):
                // What was written since the last good sync may not be on disk: none of it counts,
                // and a wrap intent among it is lost (one a good sync made durable is not).
                for (id, pending) in pendingIntents where pending.generation > syncedGeneration { pendingIntents[id]?.lost = true }
                cutBack(to: durable.end)
                written = durable
                failedThrough = generation
                failedSync = e.message
            }
            cond.broadcast()
        }
    }

    /// Cuts the file back to `end` (lock held); if it cannot, no further record is written.
    private func cutBack(to end: off_t) {
        if ftruncate(fd, end) != 0 {
            unusable = "byokd could not cut a failed write off its audit log \(path) (\(String(cString: strerror(errno)))), so it writes no more records; restart it once the disk has room (it cuts the torn end off then)"
        }
    }

    /// The last durable record's seq and line hash, from memory (a file cut short behind byokd's
    /// back does not move it).
    public func head() -> AuditAnchor {
        cond.withLock { AuditAnchor(seq: durable.seq, hash: durable.head) }
    }

    /// Whether the last record carries a MAC (false for an empty log).
    public var lastRecordIsMACed: Bool { cond.withLock { written.maced } }

    /// The log's durable records, read through byokd's own descriptor (for `GET /v1/audit`).
    public func contents() throws -> [UInt8] {
        let end = cond.withLock { durable.end }
        var out = [UInt8](repeating: 0, count: Int(end))
        do {
            let n = try Posix.readAll(fd, into: &out, at: 0)
            return Array(out.prefix(n))
        } catch {
            throw ByokError(.auditLogFailed, "cannot read the audit log \(path): \(error.message)")
        }
    }
}
