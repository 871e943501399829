import ByokAPI
import Foundation
import Posix

/// A parsed HTTP/1.1 request. byokd speaks only what curl and byokctl send: a request line,
/// headers, and a body framed by Content-Length.
struct HTTPRequest {
    var method: String
    var path: String
    var headers: [String: String]
    var body: [UInt8]
    var keepAlive: Bool
}

struct HTTPResponse {
    var status: Int
    var body: [UInt8]
    var contentType = "application/json"
    /// A streamed body (chunked transfer encoding): called with a writer; returns false when the
    /// client went away.
    var stream: ((_ write: ([UInt8]) -> Bool) -> Void)? = nil

    static func json<T: Encodable>(_ value: T, status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, body: JSONCoding.encode(value))
    }
    static func json<T: JSONWritable>(_ value: T, status: Int = 200) -> HTTPResponse {
        HTTPResponse(status: status, body: JSONCoding.encode(value))
    }
    static func error(_ e: ByokError) -> HTTPResponse {
        json(ErrorBody(e), status: e.code.httpStatus)
    }

    /// Head of a chunked (streamed) answer.
    func streamHead(keepAlive: Bool) -> [UInt8] {
        var head = "HTTP/1.1 \(status) OK\r\nContent-Type: \(contentType)\r\nTransfer-Encoding: chunked\r\n"
        head += keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n"
        head += "Server: byokd/\(ByokVersion.current)\r\n\r\n"
        return Array(head.utf8)
    }

    static func chunk(_ bytes: [UInt8]) -> [UInt8] {
        Array(String(bytes.count, radix: 16).utf8) + [13, 10] + bytes + [13, 10]
    }

    func serialize(keepAlive: Bool) -> [UInt8] {
        let connection = keepAlive ? "keep-alive" : "close"
        var out = Array(("HTTP/1.1 \(status) \(Self.reason(status))\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
                         + "Connection: \(connection)\r\nServer: byokd/\(ByokVersion.current)\r\n\r\n").utf8)
        out += body
        return out
    }

    static func reason(_ status: Int) -> String {
        switch status {
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 400: "Bad Request"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 411: "Length Required"
        case 413: "Content Too Large"
        case 429: "Too Many Requests"
        case 500: "Internal Server Error"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        default: "Status"
        }
    }
}

/// Answers are JSON with sorted keys: from `JSONWriter` for the shapes on a wrap's path (the same
/// bytes, without JSONEncoder's cost), from `JSONEncoder` for the rest.
enum JSONCoding {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        return e
    }()
    static func encode<T: Encodable>(_ v: T) -> [UInt8] { (try? encoder.encode(v)).map(Array.init) ?? Array("{}".utf8) }
    static func encode<T: JSONWritable>(_ v: T) -> [UInt8] { v.jsonBytes }
    /// Decodes a request body strictly (`StrictJSON`): unknown fields, repeated keys, wrong types
    /// and trailing text are BAD_REQUEST naming the field.
    static func decode<T: Decodable>(_ t: T.Type, _ body: [UInt8]) throws -> T {
        do { return try StrictJSON.decode(t, from: body) } catch let f as StrictJSON.Failure {
            throw ByokError(.badRequest, f.sentence("the request body") + " (see docs/API.md)")
        }
    }
}

/// Reads requests from one connection with bounds on size and time. Each received byte is looked
/// at once while searching for the end of the headers, and the headers are parsed once, so a
/// client sending a byte at a time costs byokd time linear in what it sends.
struct HTTPReader {
    let fd: Int32
    let maxHeaderBytes: Int
    let maxBodyBytes: Int
    /// Seconds a whole request may take to arrive once its first byte has.
    let readTimeout: Double
    /// Seconds a kept-alive connection may sit idle between requests.
    let idleTimeout: Double
    var buffer: [UInt8] = []
    /// Where the request being read stands: how far `buffer` was searched for the end of the
    /// headers, and its parsed head once they are complete.
    var progress = Progress()
    /// Receive buffer, allocated once per connection.
    private var chunk = [UInt8](repeating: 0, count: 65536)

    init(fd: Int32, maxHeaderBytes: Int, maxBodyBytes: Int, readTimeout: Double, idleTimeout: Double) {
        self.fd = fd; self.maxHeaderBytes = maxHeaderBytes; self.maxBodyBytes = maxBodyBytes
        self.readTimeout = readTimeout; self.idleTimeout = idleTimeout
    }

    enum ReadError: Error { case closed, timeout, tooLarge(Int), malformed(String), lengthRequired }

    struct Progress {
        var scanned = 0
        var head: Head?
    }

    /// A request's line and headers, parsed, waiting for its body.
    struct Head {
        var method: String
        var path: String
        var headers: [String: String]
        var keepAlive: Bool
        var bodyStart: Int
        var length: Int
    }

    /// Blocks until a whole request is buffered; throws on timeout, EOF, or limits.
    mutating func next() throws -> HTTPRequest {
        let idleDeadline = Date().addingTimeInterval(idleTimeout)
        var requestDeadline: Date? = buffer.isEmpty ? nil : Date().addingTimeInterval(readTimeout)
        while true {
            if let request = try Self.parse(&buffer, progress: &progress, maxHeaderBytes: maxHeaderBytes, maxBodyBytes: maxBodyBytes) { return request }
            try fill(deadline: requestDeadline ?? idleDeadline, idle: requestDeadline == nil)
            if requestDeadline == nil { requestDeadline = Date().addingTimeInterval(readTimeout) }
        }
    }

    /// Takes one whole request off the front of `buffer`, or returns nil if more bytes are needed.
    /// Throws as soon as the bytes so far cannot become an acceptable request (too large headers or
    /// body, a bad request line or header, chunked encoding). The request decoder under fuzzing.
    static func parse(_ buffer: inout [UInt8], maxHeaderBytes: Int, maxBodyBytes: Int) throws -> HTTPRequest? {
        var progress = Progress()
        return try parse(&buffer, progress: &progress, maxHeaderBytes: maxHeaderBytes, maxBodyBytes: maxBodyBytes)
    }

    /// `parse`, resuming where the last call on the same request stopped.
    static func parse(_ buffer: inout [UInt8], progress: inout Progress, maxHeaderBytes: Int, maxBodyBytes: Int) throws -> HTTPRequest? {
        if progress.head == nil {
            guard let headerEnd = findHeaderEnd(buffer, from: progress.scanned) else {
                if buffer.count > maxHeaderBytes { throw ReadError.malformed("request headers exceed \(maxHeaderBytes) bytes") }
                progress.scanned = max(0, buffer.count - 3)
                return nil
            }
            if headerEnd > maxHeaderBytes { throw ReadError.malformed("request headers exceed \(maxHeaderBytes) bytes") }
            progress.head = try parseHead(buffer[0..<headerEnd], maxBodyBytes: maxBodyBytes)
        }
        guard let head = progress.head, buffer.count >= head.bodyStart + head.length else { return nil }
        let body = Array(buffer[head.bodyStart..<(head.bodyStart + head.length)])
        buffer.removeSubrange(0..<(head.bodyStart + head.length))
        progress = Progress()
        return HTTPRequest(method: head.method, path: head.path, headers: head.headers, body: body, keepAlive: head.keepAlive)
    }

    /// The request line and headers (`bytes`: the head, without the blank line that ends it), read
    /// from the bytes:
    /// - lines end at CRLF (a lone CR or LF is part of its line); empty lines are skipped;
    /// - the request line is split at runs of spaces (0x20; a tab is no separator) into exactly
    ///   three parts: a method, a target starting with `/` (its query string, from the first `?`, is
    ///   dropped) and a version starting with `HTTP/1.`;
    /// - a header line is split at its first `:`. The name is lowercased in ASCII (A–Z; other bytes
    ///   stay as they are). The value is trimmed of spaces (0x20) and tabs (0x09) at both ends and
    ///   of nothing else (a lone CR or LF, a vertical tab, a form feed, U+00A0 stay): RFC 9110's OWS,
    ///   and all of `.whitespaces` found in ASCII text. A repeated header's last value wins, but two
    ///   different Content-Lengths are refused;
    /// - the method, path, names and values are decoded as UTF-8, invalid bytes as U+FFFD.
    /// For a head in ASCII (all curl and byokctl send) this is exactly what the former parser, on a
    /// String, made of it (`HTTPReaderTests` replays both on random heads). With other bytes it
    /// follows the bytes where that one followed Unicode: a combining mark (or a prepended one) next
    /// to a space, `:`, `/` or `?` no longer hides it, Unicode spaces (U+00A0…) at a value's edges
    /// are no longer trimmed, and a name's non-ASCII letters keep their case (of those only U+212A
    /// KELVIN SIGN lowercases into ASCII, to `k`, which none of the names read here has).
    private static func parseHead(_ bytes: ArraySlice<UInt8>, maxBodyBytes: Int) throws -> Head {
        // The request line's three parts, at runs of spaces.
        let requestLine = HTTPHead.startLine(bytes)
        let space = UInt8(ascii: " ")
        var method = 0..<0, target = 0..<0, version = 0..<0, parts = 0
        var i = requestLine.startIndex
        while i < requestLine.endIndex {
            if requestLine[i] == space { i += 1; continue }
            let start = i
            while i < requestLine.endIndex && requestLine[i] != space { i += 1 }
            parts += 1
            switch parts {
            case 1: method = start..<i
            case 2: target = start..<i
            case 3: version = start..<i
            default: throw ReadError.malformed("bad request line")
            }
        }
        guard parts == 3, bytes[version].starts(with: "HTTP/1.".utf8), bytes[target].first == UInt8(ascii: "/") else {
            throw ReadError.malformed("bad request line")
        }
        var headers: [String: String] = [:]
        do {
            try HTTPHead.fields(bytes) { name, value in
                if name == "content-length", let previous = headers[name], previous != value { throw ReadError.malformed("conflicting Content-Length headers") }
                headers[name] = value
            }
        } catch is HTTPHead.BadFieldLine {
            throw ReadError.malformed("bad header line")
        }
        if headers["transfer-encoding"] != nil { throw ReadError.lengthRequired }
        var length = 0
        if let cl = headers["content-length"] {
            guard let n = HTTPHead.contentLength(cl) else {
                throw ReadError.malformed("bad Content-Length")
            }
            length = n
        }
        if length > maxBodyBytes { throw ReadError.tooLarge(length) }
        // No endpoint takes a query string: it is dropped.
        let path = bytes[target].prefix { $0 != UInt8(ascii: "?") }
        let http10 = bytes[version].elementsEqual("HTTP/1.0".utf8)
        let conn = headers["connection"]?.lowercased()
        let keepAlive = http10 ? conn == "keep-alive" : conn != "close"
        return Head(method: String(decoding: bytes[method], as: UTF8.self), path: String(decoding: path, as: UTF8.self), headers: headers,
                    keepAlive: keepAlive, bodyStart: bytes.count + 4, length: length)
    }

    /// The offset of the first CRLFCRLF at or after `start`.
    private static func findHeaderEnd(_ buffer: [UInt8], from start: Int) -> Int? { HTTPHead.end(of: buffer, from: start) }

    private mutating func fill(deadline: Date, idle: Bool) throws {
        // Most requests are already there: try once without waiting.
        if let ready = try? Posix.receive(fd, into: &chunk, flags: Int32(MSG_DONTWAIT)) {
            if ready == 0 { throw ReadError.closed }
            buffer.append(contentsOf: chunk[0..<ready])
            return
        }
        while true {
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 { throw idle && buffer.isEmpty ? ReadError.closed : ReadError.timeout }
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard let r = try? Posix.retrying("poll", { poll(&pfd, 1, Int32(min(remaining * 1000, 1000)) + 1) }) else { throw ReadError.closed }
            if r == 0 { continue }
            let n: Int
            do { n = try Posix.receive(fd, into: &chunk) } catch where error.code == EAGAIN { continue } catch { throw ReadError.closed }
            if n == 0 { throw ReadError.closed }
            buffer.append(contentsOf: chunk[0..<n])
            return
        }
    }
}

/// How sending an answer ended.
enum SendResult: Equatable {
    case sent
    /// The client went away (EPIPE, ECONNRESET).
    case gone
    /// The client did not take the bytes within the time allowed (it does not read).
    case timedOut
}

/// Sends all of `bytes` on a connection within `timeout` seconds (`writeTimeoutSeconds`): a
/// client that does not read its answers cannot hold a thread and a connection slot forever.
func send(_ fd: Int32, _ bytes: [UInt8], timeout: Double) -> SendResult {
    let deadline = Date().addingTimeInterval(timeout)
    var done = 0
    while done < bytes.count {
        let sent = bytes.withUnsafeBytes { raw in
            Result { () throws(Errno) in
                try Posix.retrying("send") { Glibc.send(fd, raw.baseAddress! + done, raw.count - done, Int32(MSG_DONTWAIT) | Int32(MSG_NOSIGNAL)) }
            }
        }
        switch sent {
        case .success(let n):
            done += n
        case .failure(let e) where e.code == EAGAIN || e.code == EWOULDBLOCK:
            let remaining = deadline.timeIntervalSinceNow
            if remaining <= 0 { return .timedOut }
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard (try? Posix.retrying("poll", { poll(&pfd, 1, Int32(min(remaining * 1000, 1000)) + 1) })) != nil else { return .gone }
        case .failure:
            return .gone
        }
    }
    return .sent
}
