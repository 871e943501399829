@testable import ByokDaemon
import Foundation
import XCTest

/// byokd's HTTP/1.1 request decoder, in process: what it refuses, how it frames, and `next()` over
/// a real socket with a slow writer.
final class HTTPReaderTests: XCTestCase {
    func parse(_ text: String, maxHeaderBytes: Int = 16 * 1024, maxBodyBytes: Int = 1 << 20) throws -> (HTTPRequest?, [UInt8]) {
        var buffer = Array(text.utf8)
        let r = try HTTPReader.parse(&buffer, maxHeaderBytes: maxHeaderBytes, maxBodyBytes: maxBodyBytes)
        return (r, buffer)
    }

    func error(_ text: String, maxHeaderBytes: Int = 16 * 1024, maxBodyBytes: Int = 1 << 20) -> HTTPReader.ReadError? {
        do {
            let (r, _) = try parse(text, maxHeaderBytes: maxHeaderBytes, maxBodyBytes: maxBodyBytes)
            XCTFail("parsed \(String(describing: r)) from \(text.debugDescription)")
            return nil
        } catch {
            return error as? HTTPReader.ReadError
        }
    }

    func testARequestWithItsHeadersAndBody() throws {
        let (r, rest) = try parse("POST /v1/keys?x=1 HTTP/1.1\r\nHost: byokd\r\nContent-Type: application/json\r\nCONTENT-LENGTH:  7 \r\n\r\n{\"a\":1}")
        let req = try XCTUnwrap(r)
        XCTAssertEqual(req.method, "POST")
        XCTAssertEqual(req.path, "/v1/keys", "the query string is dropped")
        XCTAssertEqual(req.headers["content-type"], "application/json", "names are lowercased, values trimmed")
        XCTAssertEqual(req.headers["content-length"], "7")
        XCTAssertEqual(req.body, Array("{\"a\":1}".utf8))
        XCTAssertEqual(rest, [], "the request is taken off the buffer")
        let get = try XCTUnwrap(try parse("GET /v1/status HTTP/1.1\r\n\r\n").0)
        XCTAssertEqual(get.body, [], "no Content-Length: no body")
    }

    func testChunkedTransferEncodingIsRefusedAsLengthRequired() {
        guard case .lengthRequired? = error("POST /v1/wrap HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n") else {
            return XCTFail("chunked must be refused")
        }
        guard case .lengthRequired? = error("POST /v1/wrap HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: identity\r\n\r\nhello") else {
            return XCTFail("any Transfer-Encoding, even with a Content-Length")
        }
    }

    func testConflictingOrBadContentLengthIsRefused() throws {
        guard case .malformed(let why)? = error("POST /v1/keys HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}x") else {
            return XCTFail("conflicting Content-Length")
        }
        XCTAssertEqual(why, "conflicting Content-Length headers")
        // The same length twice is no conflict.
        XCTAssertEqual(try parse("POST /v1/keys HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\n{}").0?.body, Array("{}".utf8))
        for bad in ["-1", "+2", "2 2", "0x10", "", "1234567890123"] {
            guard case .malformed("bad Content-Length")? = error("POST / HTTP/1.1\r\nContent-Length: \(bad)\r\n\r\n") else {
                return XCTFail("Content-Length \"\(bad)\"")
            }
        }
    }

    func testTwoPipelinedRequestsComeOutOneByOne() throws {
        let first = "POST /v1/keys HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
        let second = "GET /v1/status HTTP/1.1\r\nConnection: close\r\n\r\n"
        let partialThird = "GET /v1/keys HTTP/1.1\r\nHo"
        var buffer = Array((first + second + partialThird).utf8)
        let a = try XCTUnwrap(try HTTPReader.parse(&buffer, maxHeaderBytes: 1024, maxBodyBytes: 1024))
        XCTAssertEqual(a.path, "/v1/keys")
        XCTAssertEqual(a.body, Array("abc".utf8), "the body ends where Content-Length says, not at the next request")
        XCTAssertEqual(buffer, Array((second + partialThird).utf8))
        let b = try XCTUnwrap(try HTTPReader.parse(&buffer, maxHeaderBytes: 1024, maxBodyBytes: 1024))
        XCTAssertEqual(b.path, "/v1/status")
        XCTAssertFalse(b.keepAlive)
        XCTAssertEqual(buffer, Array(partialThird.utf8), "the start of the next request stays")
        XCTAssertNil(try HTTPReader.parse(&buffer, maxHeaderBytes: 1024, maxBodyBytes: 1024))
        XCTAssertEqual(buffer, Array(partialThird.utf8), "an incomplete request is left untouched")
    }

    func testByteAtATimeIsNilUntilTheLastByte() throws {
        let whole = Array("POST /v1/wrap HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world".utf8)
        var buffer: [UInt8] = []
        for (i, byte) in whole.enumerated() {
            buffer.append(byte)
            let r = try HTTPReader.parse(&buffer, maxHeaderBytes: 1024, maxBodyBytes: 1024)
            if i < whole.count - 1 {
                XCTAssertNil(r, "after \(i + 1) of \(whole.count) bytes")
                XCTAssertEqual(buffer.count, i + 1, "nothing is consumed early")
            } else {
                XCTAssertEqual(r?.body, Array("hello world".utf8))
                XCTAssertEqual(buffer, [])
            }
        }
    }

    func testOversizeHeadersAndBodiesAreRefusedEarly() throws {
        // Headers: refused once the buffer passes the limit without a blank line, before it ends.
        guard case .malformed(let why)? = error("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 200), maxHeaderBytes: 100) else {
            return XCTFail("oversize headers")
        }
        XCTAssertEqual(why, "request headers exceed 100 bytes")
        guard case .malformed? = error("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 200) + "\r\n\r\n", maxHeaderBytes: 100) else {
            return XCTFail("oversize complete headers")
        }
        XCTAssertNil(try parse("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 50), maxHeaderBytes: 100).0, "under the limit: wait for more")
        // Body: refused from its Content-Length, before the body arrives.
        guard case .tooLarge(let n)? = error("POST /v1/wrap HTTP/1.1\r\nContent-Length: 1025\r\n\r\n", maxBodyBytes: 1024) else {
            return XCTFail("oversize body")
        }
        XCTAssertEqual(n, 1025)
        XCTAssertNil(try parse("POST /v1/wrap HTTP/1.1\r\nContent-Length: 1024\r\n\r\n", maxBodyBytes: 1024).0, "at the limit: wait for the body")
    }

    func testBadRequestLinesAndHeadersAreRefused() {
        for line in ["HELLO", "GET /v1/status", "GET /v1/status HTTP/2.0", "GET v1/status HTTP/1.1", "GET / HTTP/1.1 extra", ""] {
            guard case .malformed("bad request line")? = error(line + "\r\n\r\n") else { return XCTFail(line.debugDescription) }
        }
        guard case .malformed("bad header line")? = error("GET / HTTP/1.1\r\nno colon here\r\n\r\n") else { return XCTFail("header without a colon") }
    }

    func testKeepAliveRulesOfHTTP10And11() throws {
        func keepAlive(_ version: String, _ connection: String?) throws -> Bool {
            let header = connection.map { "Connection: \($0)\r\n" } ?? ""
            return try XCTUnwrap(try parse("GET /v1/status \(version)\r\n\(header)\r\n").0).keepAlive
        }
        XCTAssertTrue(try keepAlive("HTTP/1.1", nil), "1.1 keeps the connection by default")
        XCTAssertFalse(try keepAlive("HTTP/1.1", "close"))
        XCTAssertFalse(try keepAlive("HTTP/1.1", "Close"))
        XCTAssertTrue(try keepAlive("HTTP/1.1", "keep-alive"))
        XCTAssertFalse(try keepAlive("HTTP/1.0", nil), "1.0 closes by default")
        XCTAssertTrue(try keepAlive("HTTP/1.0", "Keep-Alive"))
        XCTAssertFalse(try keepAlive("HTTP/1.0", "close"))
    }

    // MARK: The head, as the byte parser reads it

    func request(_ text: String) throws -> HTTPRequest { try XCTUnwrap(try parse(text).0, text.debugDescription) }

    func testHeaderNamesAreLowercasedAndValuesTrimmedOfSpacesAndTabs() throws {
        let r = try request("GET /v1/status HTTP/1.1\r\nHost:byokd\r\nX-Tabs:\t \tv a l\t \r\nCoNtEnT-TyPe: Application/JSON\r\n"
                            + "X-Empty:\r\nX-Blank: \t \r\nX-Colons: a:b: c\r\n:no name\r\nX-Odd-Spaces: \u{0B}v\u{0C} \r\nX-Lone: a\rb\nc\r\r\n\r\n")
        XCTAssertEqual(r.headers["host"], "byokd", "no space after the colon")
        XCTAssertEqual(r.headers["x-tabs"], "v a l", "spaces and tabs trimmed at both ends, kept inside")
        XCTAssertEqual(r.headers["content-type"], "Application/JSON", "the name lowercased, the value as it came")
        XCTAssertEqual(r.headers["x-empty"], "")
        XCTAssertEqual(r.headers["x-blank"], "")
        XCTAssertEqual(r.headers["x-colons"], "a:b: c", "split at the first colon")
        XCTAssertEqual(r.headers[""], "no name")
        XCTAssertEqual(r.headers["x-odd-spaces"], "\u{0B}v\u{0C}", "only spaces and tabs are trimmed")
        XCTAssertEqual(r.headers["x-lone"], "a\rb\nc\r", "a lone CR or LF is part of its line")
        XCTAssertEqual(r.headers.count, 9)
    }

    func testNonUTF8BytesInAHeadAreReplacedNotTrusted() throws {
        var buffer = Array("GET /v1/st".utf8) + [0xFF] + Array("atus?q=".utf8) + [0xC3] + Array(" HTTP/1.1\r\nX-Bin: a".utf8) + [0xC3, 0x28, 0x80, 0xFE]
            + Array(" \r\nX-".utf8) + [0xE2, 0x82] + Array("Name: v\r\nContent-Length: 1\r\n\r\nx".utf8)
        let r = try XCTUnwrap(try HTTPReader.parse(&buffer, maxHeaderBytes: 1024, maxBodyBytes: 1024))
        XCTAssertEqual(r.path, "/v1/st\u{FFFD}atus")
        XCTAssertEqual(r.headers["x-bin"], "a\u{FFFD}(\u{FFFD}\u{FFFD}")
        XCTAssertEqual(r.headers["x-\u{FFFD}name"], "v")
        XCTAssertEqual(r.body, [UInt8(ascii: "x")])
        // Any byte in a Content-Length makes it bad, not a crash.
        var bad = Array("POST / HTTP/1.1\r\nContent-Length: 1".utf8) + [0xB9] + Array("\r\n\r\n".utf8)
        XCTAssertThrowsError(try HTTPReader.parse(&bad, maxHeaderBytes: 1024, maxBodyBytes: 1024)) {
            guard case .malformed("bad Content-Length")? = $0 as? HTTPReader.ReadError else { return XCTFail("\($0)") }
        }
    }

    func testHeaderLinesWithoutAColonAreRefused() {
        for line in ["X-Foo", "X-Foo bar", " folded continuation", "\t", "X\u{0B}Y"] {
            guard case .malformed("bad header line")? = error("GET / HTTP/1.1\r\nHost: a\r\n\(line)\r\nX: b\r\n\r\n") else {
                return XCTFail(line.debugDescription)
            }
        }
    }

    func testTheSameContentLengthTwiceIsAllowedAfterTrimmingAndADifferentOneIsNot() throws {
        XCTAssertEqual(try request("POST /v1/keys HTTP/1.1\r\nContent-Length: 2\r\nCONTENT-LENGTH:2\t\r\ncontent-length: \t2 \r\n\r\n{}").body, Array("{}".utf8))
        for (a, b) in [("2", "3"), ("2", "02"), ("2", "")] {
            guard case .malformed("conflicting Content-Length headers")? = error("POST / HTTP/1.1\r\nContent-Length: \(a)\r\nContent-Length: \(b)\r\n\r\n{}") else {
                return XCTFail("\(a) then \(b)")
            }
        }
    }

    func testConnectionValuesInAnyCase() throws {
        for (version, value, keep) in [("HTTP/1.1", "Close", false), ("HTTP/1.1", "CLOSE", false), ("HTTP/1.1", "\tcLoSe ", false), ("HTTP/1.1", "closed", true),
                                       ("HTTP/1.1", "", true), ("HTTP/1.0", "KEEP-ALIVE", true), ("HTTP/1.0", " Keep-Alive\t", true), ("HTTP/1.0", "keep-alive, x", false),
                                       ("HTTP/1.0", "", false), ("HTTP/1.9", "", true)] {
            XCTAssertEqual(try request("GET / \(version)\r\nconnection:\(value)\r\n\r\n").keepAlive, keep, "\(version) Connection: \(value)")
        }
    }

    func testRequestLinesWithExtraSpacesAndQueryStrings() throws {
        let r = try request("  GET   /v1/keys?label=a/b?c=d    HTTP/1.1  \r\n\r\n")
        XCTAssertEqual(r.method, "GET")
        XCTAssertEqual(r.path, "/v1/keys", "runs of spaces separate, leading and trailing ones are ignored; the query string is dropped")
        XCTAssertEqual(try request("GET /? HTTP/1.1\r\n\r\n").path, "/")
        XCTAssertEqual(try request("get /a%20b HTTP/1.1\r\n\r\n").method, "get", "the method as sent")
        for line in ["GET\t/ HTTP/1.1", "GET /\tHTTP/1.1", "GET  HTTP/1.1", "GET / http/1.1", "GET / HTTP/1", " ", "GET ?/ HTTP/1.1"] {
            guard case .malformed("bad request line")? = error(line + "\r\n\r\n") else { return XCTFail(line.debugDescription) }
        }
    }

    /// The former parser, on a String (components(separatedBy:), lowercased(),
    /// trimmingCharacters(in: .whitespaces)): the byte parser must give the same result on every
    /// head in ASCII, and on invalid UTF-8 and characters that neither combine nor space.
    static func formerParse(_ buffer: [UInt8], maxBodyBytes: Int) -> String {
        var end = 0
        while end + 3 < buffer.count && buffer[end..<(end + 4)] != [13, 10, 13, 10] { end += 1 }
        let head = String(decoding: buffer[0..<end], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ", omittingEmptySubsequences: true)
        guard requestLine.count == 3, requestLine[2].hasPrefix("HTTP/1."), requestLine[1].hasPrefix("/") else {
            return "\(HTTPReader.ReadError.malformed("bad request line"))"
        }
        var headers: [String: String] = [:]
        for line in lines where !line.isEmpty {
            guard let colon = line.firstIndex(of: ":") else { return "\(HTTPReader.ReadError.malformed("bad header line"))" }
            // Added on purpose to the former parser's rules (RFC 9112 §5.1, §5.2): no whitespace
            // before the colon, no folded line.
            if line.first == " " || line.first == "\t" || (colon > line.startIndex && [" ", "\t"].contains(line[line.index(before: colon)])) {
                return "\(HTTPReader.ReadError.malformed("bad header line"))"
            }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            if name == "content-length", let previous = headers[name], previous != value {
                return "\(HTTPReader.ReadError.malformed("conflicting Content-Length headers"))"
            }
            headers[name] = value
        }
        if headers["transfer-encoding"] != nil { return "\(HTTPReader.ReadError.lengthRequired)" }
        var length = 0
        if let cl = headers["content-length"] {
            guard !cl.isEmpty, cl.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), cl.utf8.count <= 12, let n = Int(cl) else {
                return "\(HTTPReader.ReadError.malformed("bad Content-Length"))"
            }
            length = n
        }
        if length > maxBodyBytes { return "\(HTTPReader.ReadError.tooLarge(length))" }
        let target = requestLine[1]
        let path = String(target[..<(target.firstIndex(of: "?") ?? target.endIndex)])
        let http10 = requestLine[2] == "HTTP/1.0"
        let conn = headers["connection"]?.lowercased()
        let keepAlive = http10 ? conn == "keep-alive" : conn != "close"
        return describe(method: String(requestLine[0]), path: path, headers: headers, keepAlive: keepAlive, length: length)
    }

    static func describe(method: String, path: String, headers: [String: String], keepAlive: Bool, length: Int) -> String {
        "\(method.debugDescription) \(path.debugDescription) \(headers.sorted { $0.key < $1.key }.map { "\($0.key.debugDescription)=\($0.value.debugDescription)" }) keepAlive \(keepAlive) length \(length)"
    }

    func testTheByteParserReadsRandomHeadsAsTheFormerParserDid() throws {
        var rng = JSONWriterTests.Seeded(state: 12)
        let pieces: [[UInt8]] = ["GET", "POST", "get", " ", "  ", "\t", "/", "/v1/keys", "?", "?a=b/c", "HTTP/1.1", "HTTP/1.0", "HTTP/1.", "HTTP/2", "http/1.1",
                                 "\r\n", "\r", "\n", ":", ": ", " :", "\t:\t", "Content-Length", "content-length", "CONTENT-length", "Transfer-Encoding",
                                 "Connection", "close", "Close", "keep-alive", "KEEP-Alive", "1", "12", "0", "007", "1025", "-1", "+1", "x", "X-A", "a b",
                                 "\u{0B}", "\u{0C}", "\u{0}", "\u{7F}", "é", "€", "😀"].map { Array($0.utf8) } + [[0x80], [0xBF], [0xC0], [0xFE], [0xFF]]
        func soup(_ n: Int) -> [UInt8] { (0..<Int.random(in: 0...n, using: &rng)).flatMap { _ in pieces.randomElement(using: &rng)! } }
        func pick(_ options: [String]) -> [UInt8] { Int.random(in: 0..<12, using: &rng) > 0 ? Array(options.randomElement(using: &rng)!.utf8) : soup(2) }
        var outcomes: [String: Int] = [:]
        for _ in 0..<4000 {
            var head = Int.random(in: 0..<4, using: &rng) == 0 ? soup(6)
                : pick(["GET", "POST"]) + pick([" ", "  "]) + pick(["/v1/keys", "/", "/v1/wrap?x=/y"]) + pick([" ", "  "]) + pick(["HTTP/1.1", "HTTP/1.0"]) + pick(["", " "])
            for _ in 0..<Int.random(in: 0...6, using: &rng) {
                head += Array("\r\n".utf8)
                head += Int.random(in: 0..<4, using: &rng) == 0 ? soup(6)
                    : pick(["Content-Length", "content-length", "Connection", "Transfer-Encoding", "Host", "X-A"]) + pick([":", ": ", ":\t", " : "])
                    + pick(["12", "1025", "0", "close", "keep-alive", "Keep-Alive", "a", ""]) + pick(["", " ", "\t"])
            }
            var buffer = head + Array("\r\n\r\n".utf8)
            let expected = Self.formerParse(buffer, maxBodyBytes: 1024)
            if let length = Int(expected.split(separator: " ").last ?? ""), expected.contains(" keepAlive ") { buffer += Array(repeating: UInt8(ascii: "b"), count: length) }
            let got: String
            do {
                if let r = try HTTPReader.parse(&buffer, maxHeaderBytes: 1 << 20, maxBodyBytes: 1024) {
                    got = Self.describe(method: r.method, path: r.path, headers: r.headers, keepAlive: r.keepAlive, length: r.body.count)
                } else {
                    got = "waiting for more bytes"
                }
            } catch {
                got = "\(error)"
            }
            XCTAssertEqual(got, expected, String(decoding: head, as: UTF8.self).debugDescription)
            outcomes[expected.contains(" keepAlive ") ? "parsed" : expected, default: 0] += 1
        }
        // The heads reach every outcome, not only the first refusal.
        XCTAssertEqual(Set(outcomes.keys), ["parsed", "malformed(\"bad request line\")", "malformed(\"bad header line\")", "lengthRequired",
                                            "malformed(\"conflicting Content-Length headers\")", "malformed(\"bad Content-Length\")", "tooLarge(1025)"], "\(outcomes)")
    }

    // MARK: next() over a socket

    func socketPair() throws -> (Int32, Int32) {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else { throw POSIXError(.init(rawValue: errno)!) }
        return (fds[0], fds[1])
    }

    func reader(_ fd: Int32, readTimeout: Double = 10, idleTimeout: Double = 10) -> HTTPReader {
        HTTPReader(fd: fd, maxHeaderBytes: 16 * 1024, maxBodyBytes: 1 << 20, readTimeout: readTimeout, idleTimeout: idleTimeout)
    }

    func testNextAssemblesARequestWrittenInPiecesByAnotherThread() throws {
        let (server, client) = try socketPair()
        defer { close(server); close(client) }
        let body = String(repeating: "x", count: 100_000)
        let wire = Array("POST /v1/wrap HTTP/1.1\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)GET /v1/status HTTP/1.1\r\n\r\n".utf8)
        let writer = Thread {
            // Pieces that split the request line, the CRLFs, the body, and the next request.
            var off = 0
            for size in [3, 1, 10, 20, 7, 1, 1, 4096, 65536, 1] + Array(repeating: 8192, count: 20) where off < wire.count {
                let n = min(size, wire.count - off)
                _ = wire[off..<(off + n)].withUnsafeBytes { send(client, $0.baseAddress, n, Int32(MSG_NOSIGNAL)) }
                off += n
                usleep(2000)
            }
            if off < wire.count { _ = wire[off...].withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }
        }
        writer.start()
        var r = reader(server)
        let first = try r.next()
        XCTAssertEqual(first.method, "POST")
        XCTAssertEqual(first.body.count, 100_000)
        XCTAssertEqual(first.body, Array(body.utf8))
        let second = try r.next()
        XCTAssertEqual(second.path, "/v1/status")
        XCTAssertEqual(r.buffer, [])
    }

    func testNextTimesOutOnAHalfRequestAndClosesOnEOF() throws {
        let (server, client) = try socketPair()
        defer { close(server) }
        let half = Array("POST /v1/keys HTTP/1.1\r\nContent-Length: 50\r\n\r\n{".utf8)
        _ = half.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        // The request deadline (1 s) applies once bytes came, not the idle one (60 s).
        var r = reader(server, readTimeout: 1, idleTimeout: 60)
        let started = Date()
        XCTAssertThrowsError(try r.next()) { error in
            guard case .timeout? = error as? HTTPReader.ReadError else { return XCTFail("\(error)") }
        }
        let waited = Date().timeIntervalSince(started)
        XCTAssertGreaterThanOrEqual(waited, 0.9, "it waited for the rest")
        XCTAssertLessThan(waited, 30, "the 1 s request deadline fired, not the 60 s idle one")
        // The peer going away is `closed`, not a timeout.
        close(client)
        var again = reader(server)
        XCTAssertThrowsError(try again.next()) { error in
            guard case .closed? = error as? HTTPReader.ReadError else { return XCTFail("\(error)") }
        }
    }

    func testAnIdleKeptAliveConnectionIsClosedQuietly() throws {
        let (server, client) = try socketPair()
        defer { close(server); close(client) }
        var r = reader(server, readTimeout: 60, idleTimeout: 0.5)
        XCTAssertThrowsError(try r.next()) { error in
            guard case .closed? = error as? HTTPReader.ReadError else { return XCTFail("idle with nothing sent is closed, not timeout: \(error)") }
        }
    }
}
