import ByokAPI
import CByokSys
import Foundation
import Logging
import Posix

/// A Unix stream socket server: one thread per connection, bounded in number (and per user, so
/// no local user can take them all), each reading HTTP/1.1 requests with size and time limits and
/// sending answers within a time limit. A connection's error is logged and never stops the server.
final class SocketServer: @unchecked Sendable {  // its counters behind `lock` (an NSCondition: stop() waits for connections to end)
    let listenFD: Int32
    let config: Configuration
    let logger: Logger
    let handler: @Sendable (HTTPRequest, PeerCredentials?, Logger) -> HTTPResponse
    private let lock = NSCondition()
    private var active = 0
    /// Connections held per uid (root's are not capped).
    private var perUser: [UInt32: Int] = [:]
    private var stopping = false
    private var requestCounter: UInt64 = 0
    /// A pipe whose write end `stop()` closes, to wake the accept loop without touching the
    /// listening socket (shutdown() on a socket systemd passed would break byokd.socket).
    private let wake: (read: Int32, write: Int32)

    init(listenFD: Int32, config: Configuration, logger: Logger, handler: @escaping @Sendable (HTTPRequest, PeerCredentials?, Logger) -> HTTPResponse) {
        self.listenFD = listenFD
        self.config = config
        self.logger = logger
        self.handler = handler
        var fds: [Int32] = [-1, -1]
        if pipe(&fds) != 0 { fds = [-1, -1] }
        for fd in fds where fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        wake = (fds[0], fds[1])
    }

    /// Binds `path` (replacing a stale socket file, never another kind of file) with `mode`.
    static func bind(path: String, mode: mode_t) throws -> Int32 {
        let fd: Int32
        do { fd = try Posix.retrying("socket") { socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) } } catch {
            throw ByokError(.internal, "socket(): \(error.message)")
        }
        var st = stat()
        if lstat(path, &st) == 0 {
            guard (st.st_mode & S_IFMT) == S_IFSOCK else {
                close(fd)
                throw ByokError(.badRequest, "\(path) exists and is not a socket; refusing to replace it")
            }
            // A live daemon answers connect(); only a stale socket file is removed.
            if connectUnix(path) { close(fd); throw ByokError(.badRequest, "another byokd is already listening on \(path)") }
            unlink(path)
        }
        let dir = PathName.parent(path)
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let old = umask(0o177)
        let bound = UnixSocketAddress.with(path) { sa, len in Result { () throws(Errno) in try Posix.retrying("bind") { Glibc.bind(fd, sa, len) } } }
        umask(old)
        guard let bound else {
            close(fd)
            throw ByokError(.badRequest, "socket path \(path) is longer than a Unix socket path may be (107 bytes)")
        }
        if case .failure(let e) = bound {
            close(fd)
            throw ByokError(.internal, "cannot bind \(path): \(e.message)")
        }
        chmod(path, mode)
        do { try Posix.retrying("listen") { listen(fd, 128) } } catch {
            close(fd)
            throw ByokError(.internal, "listen(): \(error.message)")
        }
        return fd
    }

    /// The group owning the socket file of a listening socket (the operators' group by default).
    static func group(of fd: Int32) -> UInt32? {
        var st = stat()
        guard let path = path(of: fd), stat(path, &st) == 0 else { return nil }
        return st.st_gid
    }

    /// The path a listening Unix socket is bound to.
    static func path(of fd: Int32) -> String? {
        var addr = sockaddr_un()
        var len = socklen_t(MemoryLayout<sockaddr_un>.size)
        let rc = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        guard rc == 0 else { return nil }
        let path = withUnsafeBytes(of: addr.sun_path) { raw -> String in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return path.isEmpty ? nil : path
    }

    static func connectUnix(_ path: String) -> Bool {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        return UnixSocketAddress.with(path) { Glibc.connect(fd, $0, $1) } == 0
    }

    /// Accepts until `stop()`; returns once stopping.
    func run() {
        while true {
            var fds = [pollfd(fd: listenFD, events: Int16(POLLIN), revents: 0), pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
            let ready = Result { () throws(Errno) in try Posix.retrying("poll") { poll(&fds, 2, -1) } }
            lock.lock(); let s = stopping; lock.unlock()
            if s || fds[1].revents != 0 { return }
            if case .failure(let e) = ready {
                logger.critical("poll on the listening socket failed", metadata: ["errno": "\(e.message)"])
                return
            }
            let fd: Int32
            do { fd = try Posix.retrying("accept4") { byok_accept_cloexec(listenFD) } } catch {
                if error.code == ECONNABORTED || error.code == EAGAIN { continue }
                if error.code == EBADF || error.code == ENOTSOCK || error.code == EINVAL {
                    logger.critical("the listening socket is unusable; stopping", metadata: ["errno": "\(error.message)"])
                    return
                }
                logger.error("accept failed", metadata: ["errno": "\(error.message)"])
                usleep(10_000)
                continue
            }
            // Who connects, before a thread is spent on them (the name is looked up in the thread).
            let uid = PeerCredentials.uid(of: fd) ?? UInt32.max
            lock.lock()
            if stopping { lock.unlock(); close(fd); return }
            let refusal: ByokError?
            if active >= config.resolvedMaxConnections {
                refusal = ByokError(.busy, "byokd is serving \(config.resolvedMaxConnections) connections already; try again shortly")
            } else if uid != 0, perUser[uid, default: 0] >= config.resolvedMaxConnectionsPerUser {
                refusal = ByokError(.connectionLimit, "uid \(uid) holds \(config.resolvedMaxConnectionsPerUser) connections to byokd already (setting maxConnectionsPerUser); close some, or try again shortly")
            } else {
                refusal = nil
                active += 1
                perUser[uid, default: 0] += 1
            }
            lock.unlock()
            if let refusal {
                // A fresh connection's send buffer takes the short answer at once; never wait on it here.
                _ = send(fd, HTTPResponse.error(refusal).serialize(keepAlive: false), timeout: 0.05)
                close(fd)
                continue
            }
            let t = Thread { [self] in
                serve(fd)
                close(fd)
                lock.lock()
                active -= 1
                perUser[uid, default: 1] -= 1
                if perUser[uid] == 0 { perUser[uid] = nil }
                lock.broadcast()
                lock.unlock()
            }
            t.stackSize = 1 << 20
            t.start()
        }
    }

    private func serve(_ fd: Int32) {
        let peer = PeerCredentials(fd: fd)
        var reader = HTTPReader(fd: fd, maxHeaderBytes: 16 * 1024, maxBodyBytes: config.resolvedMaxRequestBytes,
                                readTimeout: config.resolvedReadTimeout, idleTimeout: config.resolvedIdleTimeout)
        let timeout = config.resolvedWriteTimeout
        // Sends within `writeTimeoutSeconds`; a client that does not read its answers is dropped.
        func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
            switch send(fd, bytes, timeout: timeout) {
            case .sent: return true
            case .gone: return false
            case .timedOut:
                logger.notice("the client did not read its answer in time; closing its connection", metadata: [
                    "peer": "\(peer?.description ?? "?")", "writeTimeoutSeconds": "\(timeout)"])
                return false
            }
        }
        while true {
            var request: HTTPRequest
            do { request = try reader.next() } catch HTTPReader.ReadError.closed { return } catch {
                let e: ByokError
                switch error as? HTTPReader.ReadError {
                case .tooLarge(let n)?: e = ByokError(.requestTooLarge, "the request is \(n) bytes; byokd accepts at most \(config.resolvedMaxRequestBytes) (setting maxRequestBytes)")
                case .timeout?: e = ByokError(.requestTimeout, "the request did not arrive within \(Int(config.resolvedReadTimeout)) seconds")
                case .lengthRequired?: e = ByokError(.badRequest, "send the body with Content-Length; chunked transfer encoding is not accepted")
                case .malformed(let why)?: e = ByokError(.badRequest, "malformed HTTP request: \(why)")
                default: e = ByokError(.badRequest, "malformed HTTP request")
                }
                logger.notice("request rejected", metadata: ["peer": "\(peer?.description ?? "?")", "code": "\(e.code.rawValue)"])
                _ = writeAll(fd, HTTPResponse.error(e).serialize(keepAlive: false))
                return
            }
            lock.lock()
            requestCounter += 1
            let rid = requestCounter
            let s = stopping
            lock.unlock()
            var log = logger
            log[metadataKey: "request"] = "\(rid)"
            let response = handler(request, peer, log)
            request.body = []  // a streamed answer (batch) holds what it decoded, not the raw request
            let keep = request.keepAlive && !s
            if let stream = response.stream {
                guard writeAll(fd, response.streamHead(keepAlive: keep)) else { return }
                var alive = true
                stream { bytes in
                    guard alive, !bytes.isEmpty else { return alive }
                    alive = writeAll(fd, HTTPResponse.chunk(bytes))
                    return alive
                }
                guard alive, writeAll(fd, Array("0\r\n\r\n".utf8)), keep else { return }
                continue
            }
            guard writeAll(fd, response.serialize(keepAlive: keep)), keep else { return }
        }
    }

    /// Stops accepting and waits up to `grace` seconds for connections in flight to finish.
    func stop(grace: Double) {
        lock.lock()
        let first = !stopping
        stopping = true
        lock.unlock()
        if first {
            // Wake the accept loop; the listening socket itself is only closed, never shut down.
            close(wake.write)
        }
        let deadline = Date().addingTimeInterval(grace)
        lock.lock()
        while active > 0 && lock.wait(until: deadline) {}
        lock.unlock()
    }

    /// Closes the listening socket (after `run()` returned).
    func closeListener() {
        close(listenFD)
        close(wake.read)
    }
}
