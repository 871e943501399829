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
