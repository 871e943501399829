import BYOK
import ByokAPI
import Foundation
import Posix

/// The append-only audit log (JSON Lines, hash-chained). A record is written and fsync'd before
/// the answer it describes goes out; a request whose record cannot be written is refused.
public final class AuditLog: @unchecked Sendable {
    public let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var head: String
    private var seq: UInt64
    public static let genesis = String(repeating: "0", count: 64)

    public init(path: String) throws {
        self.path = path
        let dir = PathName.parent(path)
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]) }
        do { fd = try Posix.retrying("open") { open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600) } } catch {
            throw ByokError(.internal, "cannot open the audit log \(path): \(error.message)")
        }
        // Continue the chain from the last record on disk.
        head = Self.genesis
        seq = 0
        // Only the tail is read: the log grows without bound, start-up must not.
        let data = Self.tail(fd: fd, path: path, bytes: 1 << 20)
        if !data.isEmpty {
            let lines = data.split(separator: UInt8(ascii: "\n"))
            if let last = lines.last {
                head = Digest.sha256(Array(last)).hex
                if let r = try? JSONDecoder().decode(AuditRecord.self, from: Data(last)) { seq = r.seq }
            }
            if data.last != UInt8(ascii: "\n") {
                // A torn last line (crash mid-write) would break the chain: end it so the next record starts clean.
                try? Posix.writeAll(fd, [UInt8(ascii: "\n")])
            }
        }
    }

    deinit { close(fd) }

    /// The last `bytes` of the file (a record is far smaller).
    static func tail(fd: Int32, path: String, bytes: Int) -> [UInt8] {
        guard let rfd = try? Posix.retrying("open", { open(path, O_RDONLY | O_CLOEXEC) }) else { return [] }
        defer { close(rfd) }
        let size = Int(lseek(rfd, 0, SEEK_END))
        guard size > 0 else { return [] }
        let start = max(0, size - bytes)
        var out = [UInt8](repeating: 0, count: size - start)
        let n = (try? Posix.readAll(rfd, into: &out, at: off_t(start))) ?? 0
        return Array(out.prefix(n))
    }

    /// Appends a record (filling seq and prev) and returns once it is on disk.
    public func append(_ record: AuditRecord) throws { try append([record]) }

    private var written: UInt64 = 0  // bytes' worth of records written (by count)
    private var synced: UInt64 = 0
    private var syncing = false
    private let synced_ = NSCondition()
    /// Computes a record's MAC on the token (set when `auditMacKey` is configured).
    public var signer: (([UInt8]) -> [UInt8]?)?

    /// Appends records in order and returns once all of them are on disk. Concurrent callers share
    /// one fdatasync (group commit): whoever syncs, syncs everything written so far.
    public func append(_ records: [AuditRecord]) throws {
        guard !records.isEmpty else { return }
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        lock.lock()
        var bytes: [UInt8] = []
        var newHead = head
        var newSeq = seq
        for record in records {
            var r = record
            newSeq += 1
            r.seq = newSeq
            r.prev = newHead
            if let signer {
                r.mac = signer(Digest.sha256(AuditVerifier.macInput(r)))?.hex
            }
            let line = Array((try? enc.encode(r)) ?? Data())
            newHead = Digest.sha256(line).hex
            bytes += line
            bytes.append(UInt8(ascii: "\n"))
        }
        do { try Posix.writeAll(fd, bytes) } catch {
            lock.unlock()
            throw ByokError(.internal, "cannot write the audit log \(path): \(error.message)")
        }
        seq = newSeq
        head = newHead
        written += 1
        let mine = written
        lock.unlock()

        synced_.lock()
        defer { synced_.unlock() }
        while synced < mine {
            if syncing { synced_.wait(); continue }
            syncing = true
            lock.lock(); let target = written; lock.unlock()
            synced_.unlock()
            let sync = Result { () throws(Errno) in try Posix.retrying("fdatasync") { fdatasync(fd) } }
            synced_.lock()
            syncing = false
            if case .success = sync { synced = max(synced, target) }
            synced_.broadcast()
            if case .failure(let e) = sync { throw ByokError(.internal, "cannot sync the audit log \(path): \(e.message)") }
        }
    }

    /// The whole log's bytes (for `GET /v1/audit`).
    public func contents() -> Data { FileManager.default.contents(atPath: path) ?? Data() }
}

