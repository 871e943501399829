import ByokAPI
import XCTest

/// `HTTPHead`, the one reader of header fields for the daemon's requests and the client's answers.
final class HTTPHeadTests: XCTestCase {
    func head(_ text: String) -> ArraySlice<UInt8> { Array(text.utf8)[...] }

    func testTheStartLineAndEveryFieldInOrderNamesLowercasedValuesTrimmed() throws {
        let h = head("HTTP/1.1 200 OK\r\nContent-Type:application/json\r\nCONTENT-LENGTH: \t12 \t\r\nX-Empty:\r\nX-Colon: a:b: c\r\nServer: byokd/0.1.0")
        XCTAssertEqual(String(decoding: HTTPHead.startLine(h), as: UTF8.self), "HTTP/1.1 200 OK")
        var fields: [String] = []
        try HTTPHead.fields(h) { fields.append("\($0)=\($1)") }
        XCTAssertEqual(fields, ["content-type=application/json", "content-length=12", "x-empty=", "x-colon=a:b: c", "server=byokd/0.1.0"])
    }

    func testOnlyCRLFEndsALineAndOnlySpacesAndTabsAreTrimmed() throws {
        var fields: [String] = []
        try HTTPHead.fields(head("GET / HTTP/1.1\r\nA: x\ny\r\nB: \u{A0}v\u{0B}\r\nC:\rz")) { fields.append("\($0)=\($1)") }
        XCTAssertEqual(fields, ["a=x\ny", "b=\u{A0}v\u{0B}", "c=\rz"])
    }

    func testAFieldLineWithoutAColonIsRefusedAfterTheFieldsBeforeIt() {
        var fields: [String] = []
        XCTAssertThrowsError(try HTTPHead.fields(head("GET / HTTP/1.1\r\nA: 1\r\nno colon here\r\nB: 2")) { name, _ in fields.append(name) }) {
            XCTAssertTrue($0 is HTTPHead.BadFieldLine)
        }
        XCTAssertEqual(fields, ["a"])
    }

    func testBytesThatAreNotUTF8AreReplaced() throws {
        var fields: [(String, String)] = []
        try HTTPHead.fields(Array("GET / HTTP/1.1\r\nX".utf8)[...] + [0xFF] + Array(": v".utf8) + [0xC3]) { fields.append(($0, $1)) }
        XCTAssertEqual(fields.first?.0, "x\u{FFFD}")
        XCTAssertEqual(fields.first?.1, "v\u{FFFD}")
    }

    func testTheEndOfAHeadIsFoundFromWhereTheLastSearchStopped() {
        let bytes = Array("HTTP/1.1 200 OK\r\nA: 1\r\n\r\nbody\r\n\r\n".utf8)
        XCTAssertEqual(HTTPHead.end(of: bytes), 21)
        XCTAssertEqual(HTTPHead.end(of: Array(bytes[0..<24])), nil)
        XCTAssertEqual(HTTPHead.end(of: bytes, from: 18), 21, "a search resumed 3 bytes before the old end still finds it")
        XCTAssertEqual(HTTPHead.end(of: bytes, from: 22), 29)
        XCTAssertEqual(HTTPHead.end(of: Array("\r\n\r".utf8)), nil)
    }

    /// RFC 9112 §5.1/§5.2: whitespace between a name and its colon, and folded lines, are refused,
    /// so `Content-Length : 5` cannot pass as a field byokd ignores.
    func testWhitespaceBeforeTheColonAndFoldedLinesAreRefused() {
        for bad in ["Content-Length : 5", "Content-Length\t: 5", " X: folded", "\tX: folded", "Transfer-Encoding : chunked"] {
            XCTAssertThrowsError(try HTTPHead.fields(head("POST / HTTP/1.1\r\nHost: b\r\n" + bad)) { _, _ in }, bad) {
                XCTAssertTrue($0 is HTTPHead.BadFieldLine, bad)
            }
        }
        XCTAssertNoThrow(try HTTPHead.fields(head("POST / HTTP/1.1\r\n:empty name\r\nX:no space\r\nY:  spaces after")) { _, _ in })
    }
}
