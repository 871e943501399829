import ByokAPI
import Foundation
import Posix

/// Talks HTTP/1.1 to byokd over its Unix socket, one connection kept alive for the client's life.
public final class DaemonClient {
    public let socketPath: String
    private var fd: Int32 = -1
    /// Seconds to wait for an answer (a wrap on a slow HSM, or a two-person approval, can take long).
    public var timeout: Double

    public init(socketPath: String, timeout: Double = 300) {
        self.socketPath = socketPath
        self.timeout = timeout
    }

    deinit { if fd >= 0 { close(fd) } }

    private func connectIfNeeded() throws {
        guard fd < 0 else { return }
        let s = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard s >= 0 else { throw ByokError(.daemonUnreachable, "cannot create a socket: \(String(cString: strerror(errno)))") }
        guard let rc = UnixSocketAddress.with(socketPath, { connect(s, $0, $1) }) else {
            close(s)
            throw ByokError(.badRequest, "socket path \(socketPath) is too long for a Unix socket")
        }
        if rc != 0 {
            let e = errno
            close(s)
            let hint = e == EACCES ? Self.permissionHint(socketPath)
                : "is byokd running? (`systemctl status byokd.socket`, or start it with `byokd --dev` to try it; a byokd elsewhere: --socket PATH)"
            throw ByokError(.daemonUnreachable, "cannot reach byokd at \(socketPath): \(String(cString: strerror(e))); \(hint)")
        }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        fd = s
    }

    /// Who may use the socket, from the socket file itself (not from what the units usually say).
    static func permissionHint(_ path: String) -> String {
        var st = stat()
        guard stat(path, &st) == 0 else { return "you may not use it" }
        let owner = getpwuid(st.st_uid).flatMap { $0.pointee.pw_name.map { String(cString: $0) } } ?? "uid \(st.st_uid)"
        let group = getgrgid(st.st_gid).flatMap { $0.pointee.gr_name.map { String(cString: $0) } } ?? "gid \(st.st_gid)"
        let mode = String(st.st_mode & 0o777, radix: 8)
        if st.st_gid == 0 || st.st_mode & 0o060 == 0 {
            return "the socket is \(owner):\(group) mode \(mode), so only \(owner) may use it; run byokctl as \(owner), or give the socket an operators' group (SocketGroup= in byokd.socket)"
        }
        return "the socket is \(owner):\(group) mode \(mode); ask to be added to the group \(group) (usermod -aG \(group) USER, effective at the next login)"
    }

    /// Sends a request and returns (status, body). Reconnects once if a kept-alive connection was closed.
    /// A chunked answer is handed to `onLine` line by line as it arrives (and also returned whole).
    public func send(_ method: String, _ path: String, body: Data? = nil, onLine: ((Data) -> Void)? = nil) throws -> (Int, Data) {
        for attempt in 0..<2 {
            let reused = fd >= 0
            try connectIfNeeded()
            var head = "\(method) \(path) HTTP/1.1\r\nHost: byokd\r\nUser-Agent: byokctl/\(ByokVersion.current)\r\n"
            if let body { head += "Content-Type: application/json\r\nContent-Length: \(body.count)\r\n" }
            head += "\r\n"
            var bytes = Array(head.utf8)
            if let body { bytes += body }
            do {
                try writeAll(bytes)
                return try readResponse(onLine: onLine)
            } catch let e as ByokError where reused && attempt == 0 && e.code == .daemonUnreachable && received == 0 {
                // A kept-alive connection byokd had closed (idle) before this request: send it again.
                // Not once any of an answer arrived: byokd may have done what was asked.
                close(fd); fd = -1
                continue
            }
        }
        throw ByokError(.daemonUnreachable, "byokd closed the connection")
    }

    private func writeAll(_ bytes: [UInt8]) throws {
        do { try Posix.sendAll(fd, bytes) } catch {
            // The daemon may answer (413) and close before reading a large body: read its answer.
            if error.code == EPIPE || error.code == ECONNRESET { return }
            throw ByokError(.daemonUnreachable, "lost the connection to byokd: \(error.message)")
        }
    }

    private var buffer = [UInt8]()
    /// Bytes of the current answer received so far.
    private var received = 0

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n: Int
        do { n = try Posix.receive(fd, into: &chunk) } catch where error.code == EAGAIN || error.code == EWOULDBLOCK {
            // SO_RCVTIMEO ran out.
            close(fd); fd = -1
            throw ByokError(.daemonUnreachable, "byokd did not answer within \(Int(timeout)) seconds")
        } catch {
            n = -1
        }
        if n <= 0 {
            close(fd); fd = -1
            throw ByokError(.daemonUnreachable, "byokd closed the connection before answering")
        }
        buffer += chunk[0..<n]
        received += n
    }

    /// Bytes up to (not including) the next CRLF, consumed with it.
    private func line() throws -> [UInt8] {
        while true {
            if buffer.count >= 2 {
                for i in 0..<(buffer.count - 1) where buffer[i] == 13 && buffer[i + 1] == 10 {
                    let l = Array(buffer[0..<i])
                    buffer.removeSubrange(0..<(i + 2))
                    return l
                }
            }
            try fill()
        }
    }

    private func take(_ n: Int) throws -> [UInt8] {
        while buffer.count < n { try fill() }
        let out = Array(buffer[0..<n])
        buffer.removeSubrange(0..<n)
        return out
    }

    /// The longest answer head byokctl reads (byokd's are about 150 bytes).
    static let maxHeadBytes = 64 * 1024

    /// What is on the socket is not an answer from byokd: the connection is dropped.
    private func notHTTP(_ what: String) -> ByokError {
        close(fd); fd = -1
        return ByokError(.daemonUnreachable, "the answer on the socket is not byokd's HTTP (\(what)); is --socket byokd's socket?")
    }

    private func readResponse(onLine: ((Data) -> Void)?) throws -> (Int, Data) {
        buffer.removeAll(keepingCapacity: true)
        received = 0
        // The head, read as the daemon reads a request's (`HTTPHead`).
        var scanned = 0
        var headEnd: Int
        while true {
            if let end = HTTPHead.end(of: buffer, from: scanned) { headEnd = end; break }
            scanned = max(0, buffer.count - 3)  // each byte looked at once
            if buffer.count > Self.maxHeadBytes { throw notHTTP("a head longer than \(Self.maxHeadBytes) bytes") }
            try fill()
        }
        let head = buffer[0..<headEnd]
        let statusLine = String(decoding: HTTPHead.startLine(head), as: UTF8.self)
        let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") ?? 0
        var length = 0
        var chunked = false
        var closeAfter = false
        do {
            try HTTPHead.fields(head) { name, value in
                switch name {
                case "content-length": length = HTTPHead.contentLength(value) ?? -1
                case "transfer-encoding": chunked = value.lowercased().firstRange(of: "chunked") != nil
                case "connection": closeAfter = value.lowercased().firstRange(of: "close") != nil
                default: break
                }
            }
        } catch {
            throw notHTTP("a header line without a colon, or with a space before it")
        }
        guard length >= 0 else { throw notHTTP("a bad Content-Length") }
        buffer.removeSubrange(0..<(headEnd + 4))
        var body = Data()
        if chunked {
            var pending = Data()
            while true {
                let size = Int(String(decoding: try line(), as: UTF8.self).split(separator: ";").first ?? "", radix: 16) ?? 0
                guard size >= 0 else { throw notHTTP("a negative chunk size") }
                if size == 0 { _ = try line(); break }
                let chunk = try take(size)
                _ = try line()
                body += chunk
                if let onLine {
                    pending += chunk
                    // Each line handed on as a slice; the rest is moved once per chunk, not once per line.
                    var start = pending.startIndex
                    while let nl = pending[start...].firstIndex(of: 10) {
                        onLine(pending[start..<nl])
                        start = nl + 1
                    }
                    pending.removeSubrange(pending.startIndex..<start)
                }
            }
        } else {
            body = Data(try take(length))
        }
        if closeAfter { close(fd); fd = -1 }
        return (status, body)
    }

    /// Runs a batch of wraps; `onResult` sees each entry's result as it arrives.
    public func batch(_ request: BatchWrapRequest, onResult: (BatchResult) -> Void) throws -> [BatchResult] {
        var results: [BatchResult] = []
        let body = try JSONEncoder().encode(request)
        let (status, data) = try withoutActuallyEscaping(onResult) { report in
            try send("POST", "/v1/wrap/batch", body: body) { line in
                if let r = try? JSONDecoder().decode(BatchResult.self, from: line) {
                    results.append(r)
                    report(r)
                }
            }
        }
        if status != 200 {
            if let e = try? JSONDecoder().decode(ErrorBody.self, from: data) { throw ByokError(e.error.code, e.error.message) }
            throw ByokError(.internal, "byokd answered \(status) to the batch")
        }
        return results
    }

    /// Sends a JSON request and decodes the answer, or throws the daemon's error. When the request
    /// needs a second person's approval (`202`), tells `onPending` and polls until it is decided.
    public func call<Response: Decodable>(_ method: String, _ path: String, _ request: (some Encodable)? = Optional<String>.none, as: Response.Type,
                                          onPending: ((PendingRequest) -> Void)? = nil) throws -> Response {
        let body = try request.map { try JSONEncoder().encode($0) }
        var (status, data) = try send(method, path, body: body)
        if status == 202, let p = try? JSONDecoder().decode(PendingBody.self, from: data) {
            onPending?(p.pending)
            while status == 202 {
                usleep(useconds_t(pollInterval * 1_000_000))
                (status, data) = try send("GET", "/v1/requests/\(p.pending.id)")
            }
        }
        if (200..<300).contains(status) {
            do { return try JSONDecoder().decode(Response.self, from: data) } catch {
                throw ByokError(.internal, "byokd's answer to \(path) was not understood (\(error)); are byokctl and byokd the same version?")
            }
        }
        if let e = try? JSONDecoder().decode(ErrorBody.self, from: data) { throw ByokError(e.error.code, e.error.message) }
        throw ByokError(.internal, "byokd answered \(status) to \(path) without an error body")
    }

    /// Seconds between polls while a request waits for approval.
    public var pollInterval: Double = 0.5

    /// Fetches a raw body (the audit log).
    public func fetch(_ path: String) throws -> Data {
        let (status, data) = try send("GET", path)
        if (200..<300).contains(status) { return data }
        if let e = try? JSONDecoder().decode(ErrorBody.self, from: data) { throw ByokError(e.error.code, e.error.message) }
        throw ByokError(.internal, "byokd answered \(status) to \(path)")
    }
}
