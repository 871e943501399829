import ByokAPI
import Foundation

/// The two pieces of the systemd protocol byokd speaks, without libsystemd.
enum Systemd {
    /// The listening socket systemd passed (socket activation), if it passed one to this process.
    static func inheritedSocket(_ env: [String: String] = ProcessInfo.processInfo.environment) -> Int32? {
        guard let pid = env["LISTEN_PID"], Int32(pid) == getpid(), let n = env["LISTEN_FDS"].flatMap(Int.init), n >= 1 else { return nil }
        let fd: Int32 = 3
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        unsetenv("LISTEN_PID"); unsetenv("LISTEN_FDS"); unsetenv("LISTEN_FDNAMES")
        return fd
    }

    /// sd_notify(3): one datagram to $NOTIFY_SOCKET ("READY=1", "STOPPING=1", "STATUS=...").
    @discardableResult
    static func notify(_ state: String, _ env: [String: String] = ProcessInfo.processInfo.environment) -> Bool {
        guard let path = env["NOTIFY_SOCKET"], !path.isEmpty else { return false }
        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let msg = Array(state.utf8)
        let sent = UnixSocketAddress.with(path) { sa, len in
            msg.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sa, len) }
        }
        return sent == msg.count
    }
}
