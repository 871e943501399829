@testable import ByokDaemon
import Foundation
import XCTest

/// The request reader looks at each received byte once: a client sending 16 KB of headers a byte
/// at a time (a slowloris) costs byokd time linear in what it sends, not quadratic.
final class HTTPReaderScanTests: XCTestCase {
    func testHeadersArrivingAByteAtATimeAreScannedOnce() throws {
        let line = "X-Padding: " + String(repeating: "a", count: 60) + "\r\n"
        var text = "GET /v1/status HTTP/1.1\r\nHost: byokd\r\n"
        while text.utf8.count + line.utf8.count < 16 * 1024 - 64 { text += line }
        let bytes = Array((text + "\r\n").utf8)
        var buffer: [UInt8] = []
        var progress = HTTPReader.Progress()
        var request: HTTPRequest?
        let started = ProcessInfo.processInfo.systemUptime
        for b in bytes {
            buffer.append(b)
            request = try HTTPReader.parse(&buffer, progress: &progress, maxHeaderBytes: 16 * 1024, maxBodyBytes: 1 << 20)
        }
        let seconds = ProcessInfo.processInfo.systemUptime - started
        XCTAssertEqual(request?.path, "/v1/status")
        XCTAssertEqual(buffer.count, 0)
        // Scanning from byte 0 on every byte took 4.6 s of CPU for this; once, well under 0.5 s.
        XCTAssertLessThan(seconds, 0.5, "\(bytes.count) header bytes a byte at a time took \(seconds) s")
    }

    func testABodyArrivingAByteAtATimeDoesNotReparseTheHeaders() throws {
        let body = Array(repeating: UInt8(ascii: "x"), count: 4_000)
        var text = "POST /v1/keys HTTP/1.1\r\nContent-Length: \(body.count)\r\n"
        while text.utf8.count < 15 * 1024 { text += "X-Padding: " + String(repeating: "b", count: 60) + "\r\n" }
        var buffer = Array((text + "\r\n").utf8)
        var progress = HTTPReader.Progress()
        XCTAssertNil(try HTTPReader.parse(&buffer, progress: &progress, maxHeaderBytes: 16 * 1024, maxBodyBytes: 1 << 20))
        let started = ProcessInfo.processInfo.systemUptime
        var request: HTTPRequest?
        for b in body {
            buffer.append(b)
            request = try HTTPReader.parse(&buffer, progress: &progress, maxHeaderBytes: 16 * 1024, maxBodyBytes: 1 << 20)
        }
        let seconds = ProcessInfo.processInfo.systemUptime - started
        XCTAssertEqual(request?.body.count, body.count)
        XCTAssertLessThan(seconds, 1.0, "a 4 KB body a byte at a time took \(seconds) s")
    }
}
