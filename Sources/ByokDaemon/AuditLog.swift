import BYOK
import ByokAPI
import Foundation

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
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]) }
        fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ByokError(.internal, "cannot open the audit log \(path): \(String(cString: strerror(errno)))") }
        // Continue the chain from the last record on disk.
        head = Self.genesis
        seq = 0
        if let data = FileManager.default.contents(atPath: path), !data.isEmpty {
            let lines = data.split(separator: UInt8(ascii: "\n"))
            if let last = lines.last {
                head = SoftwareCrypto.sha256(Array(last)).hex
                if let r = try? JSONDecoder().decode(AuditRecord.self, from: Data(last)) { seq = r.seq }
            }
            if data.last != UInt8(ascii: "\n") {
                // A torn last line (crash mid-write) would break the chain: end it so the next record starts clean.
                _ = "\n".withCString { write(fd, $0, 1) }
            }
        }
    }

    deinit { close(fd) }

    /// Appends a record (filling seq and prev), then fdatasync. Throws if it cannot be made durable.
    public func append(_ record: AuditRecord) throws {
        var r = record
        lock.lock()
        defer { lock.unlock() }
        r.seq = seq + 1
        r.prev = head
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let line = Array((try? enc.encode(r)) ?? Data())
        var bytes = line
        bytes.append(UInt8(ascii: "\n"))
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + off, $0.count - off) }
            if n < 0 { if errno == EINTR { continue }; throw ByokError(.internal, "cannot write the audit log \(path): \(String(cString: strerror(errno)))") }
            off += n
        }
        guard fdatasync(fd) == 0 else { throw ByokError(.internal, "cannot sync the audit log \(path): \(String(cString: strerror(errno)))") }
        seq += 1
        head = SoftwareCrypto.sha256(line).hex
    }

    /// The whole log's bytes (for `GET /v1/audit`).
    public func contents() -> Data { FileManager.default.contents(atPath: path) ?? Data() }
}

