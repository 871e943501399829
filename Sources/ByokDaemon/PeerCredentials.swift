import CByokSys
import Foundation

/// Who is on the other end of a Unix socket connection, as the kernel says (SO_PEERCRED).
/// Never taken from the request.
public struct PeerCredentials: Sendable, CustomStringConvertible {
    public let pid: Int32
    public let uid: UInt32
    public let gid: UInt32
    /// The user's name and groups, looked up once per connection (not per request).
    public let userName: String
    let groups: Set<UInt32>

    init(pid: Int32, uid: UInt32, gid: UInt32, userName: String, groups: Set<UInt32>) {
        self.pid = pid; self.uid = uid; self.gid = gid; self.userName = userName; self.groups = groups
    }

    init?(fd: Int32) {
        var p: pid_t = 0, u: uid_t = 0, g: gid_t = 0
        guard byok_peercred(fd, &p, &u, &g) == 0 else { return nil }
        pid = p
        uid = u
        gid = g
        let name = Self.name(of: u)
        userName = name ?? String(u)
        groups = name.map { Self.groups(user: $0, gid: g) } ?? [g]
    }

    /// Only the uid of the peer (no name lookup): for counting a user's connections as they arrive.
    static func uid(of fd: Int32) -> UInt32? {
        var p: pid_t = 0, u: uid_t = 0, g: gid_t = 0
        guard byok_peercred(fd, &p, &u, &g) == 0 else { return nil }
        return u
    }

    static func name(of uid: UInt32) -> String? {
        var pw = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buf = [CChar](repeating: 0, count: 4096)
        if getpwuid_r(uid, &pw, &buf, buf.count, &result) == 0, result != nil { return String(cString: pw.pw_name) }
        return nil
    }

    public var description: String { "uid=\(uid) gid=\(gid) pid=\(pid)" }
}
