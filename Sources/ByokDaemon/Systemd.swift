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
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }  // abstract namespace
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else { return false }
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes) }
        let len = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count)
        let msg = Array(state.utf8)
        let sent = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                msg.withUnsafeBytes { sendto(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL), sa, len) }
            }
        }
        return sent == msg.count
    }
}
