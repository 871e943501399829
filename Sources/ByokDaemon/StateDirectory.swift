import ByokAPI
import Foundation
import Posix

/// byokd's state directory (audit log, dev token): private to byokd's user, and used by one
/// daemon at a time — an exclusive lock on `byokd.lock` inside it, held for the daemon's life,
/// whose file names the holder's pid and socket for the next one to say who it is.
final class StateDirectory {
    let path: String
    private let lockFD: Int32
    static let lockName = "byokd.lock"

    /// Creates the directory if needed (0700), checks it, and takes its lock.
    init(_ path: String) throws {
        self.path = path
        if !FileManager.default.fileExists(atPath: path) {
            do { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]) } catch {
                throw ByokError(.badRequest, "cannot create the state directory \(path): \(error.localizedDescription)")
            }
        }
        try Self.checkPrivate(path, what: "the state directory", owners: [geteuid()])
        let lock = path + "/" + Self.lockName
        let fd: Int32
        do { fd = try Posix.retrying("open") { open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600) } } catch {
            throw ByokError(.badRequest, "cannot open the lock file \(lock): \(error.message)")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let holder = Self.describeHolder(fd)
            close(fd)
            throw ByokError(.badRequest, "another byokd (\(holder)) is using the state directory \(path); two daemons on one directory would break the audit chain — stop that one first, or give this one its own --state-dir")
        }
        lockFD = fd
        record(socket: nil)
    }

    deinit { close(lockFD) }

    /// Writes who holds the lock: this pid and, once known, the socket it serves.
    func record(socket: String?) {
        let text = "pid \(getpid())\nsocket \(socket ?? "(not yet bound)")\n"
        _ = ftruncate(lockFD, 0)
        _ = try? Posix.retrying("pwrite") { pwrite(lockFD, text, text.utf8.count, 0) }
    }

    private static func describeHolder(_ fd: Int32) -> String {
        var buf = [UInt8](repeating: 0, count: 4096)
        let n = (try? Posix.readAll(fd, into: &buf, at: 0)) ?? 0
        var fields: [String: String] = [:]
        for line in String(decoding: buf.prefix(n), as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2 { fields[String(parts[0])] = String(parts[1]) }
        }
        guard let pid = fields["pid"] else { return "its pid not yet written" }
        return "pid \(pid), socket \(fields["socket"] ?? "unknown")"
    }

    /// The directory of an audit log kept outside the state directory (`auditLog`): made if
    /// missing (0700), and then byokd's own or root's, writable by no one else.
    static func prepareAuditDirectory(for log: String, stateDir: String) throws {
        let dir = PathName.parent(log)
        let resolved = { (p: String) in URL(fileURLWithPath: p).standardizedFileURL.path }
        guard !dir.isEmpty, resolved(dir) != resolved(stateDir) else { return }
        if !FileManager.default.fileExists(atPath: dir) {
            do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700]) } catch {
                throw ByokError(.badRequest, "cannot create the audit log's directory \(dir): \(error.localizedDescription)")
            }
        }
        try checkPrivate(dir, what: "the audit log's directory", owners: [geteuid(), 0])
    }

    /// A directory byokd keeps files in must be owned by one of `owners` and writable by no one
    /// else: whoever can write it can replace the audit log or the lock.
    static func checkPrivate(_ path: String, what: String, owners: Set<uid_t>) throws {
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw ByokError(.badRequest, "cannot use \(what) \(path): \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { throw ByokError(.badRequest, "\(what) \(path) is not a directory") }
        let mode = String(st.st_mode & 0o7777, radix: 8)
        guard owners.contains(st.st_uid) else {
            throw ByokError(.badRequest, "\(what) \(path) belongs to uid \(st.st_uid), but byokd runs as uid \(geteuid()); it keeps its audit log there, so the directory must be its own: `chown \(PeerCredentials.name(of: geteuid()) ?? String(geteuid())) \(path)`")
        }
        guard st.st_mode & 0o022 == 0 else {
            throw ByokError(.badRequest, "\(what) \(path) is writable by its group or others (mode \(mode)); anyone who can write it can replace the audit log: `chmod 0700 \(path)`")
        }
    }
}
