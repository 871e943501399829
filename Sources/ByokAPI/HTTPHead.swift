/// The head of an HTTP/1.1 message read as bytes (RFC 9112 §2–5): the one reader of header fields
/// for the daemon's requests (`HTTPReader`) and the client's answers (`DaemonClient`). Lines end at
/// CRLF (a lone CR or LF stays part of its line); a field is `name: value`, split at the first
/// colon; names compare without ASCII case (returned lowercased); values are trimmed of SP and HTAB
/// only (a non-ASCII space is part of the value); bytes that are not UTF-8 become U+FFFD. As RFC
/// 9112 §5.1 and §5.2 require of a server, a field line with whitespace between its name and the
/// colon (`Content-Length : 5`) or folded onto the line before (starting with SP or HTAB) is refused
/// rather than read as some other field (which would leave the framing to a field byokd ignores).
public enum HTTPHead {
    /// A field line without a colon, with whitespace before its colon, or folded (obs-fold).
    public struct BadFieldLine: Error, Equatable {}

    /// The offset of the first CRLFCRLF (the end of a head) in `buffer` at or after `start`.
    public static func end(of buffer: [UInt8], from start: Int = 0) -> Int? {
        guard buffer.count >= 4 else { return nil }
        var i = max(0, start)
        while i + 3 < buffer.count {
            if buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 { return i }
            i += 1
        }
        return nil
    }

    /// A head's start line (the request or status line): `bytes` (a head, up to and not including
    /// its CRLFCRLF) up to its first CRLF.
    public static func startLine(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        bytes[bytes.startIndex..<lineEnd(bytes, from: bytes.startIndex)]
    }

    /// Hands each field of a head (`bytes`, up to and not including its CRLFCRLF) to `field`, in
    /// order, its name lowercased; a line without a colon throws `BadFieldLine` (after the fields
    /// before it were handed on).
    public static func fields(_ bytes: ArraySlice<UInt8>, _ field: (_ name: String, _ value: String) throws -> Void) throws {
        let space = UInt8(ascii: " "), tab = UInt8(ascii: "\t"), colon = UInt8(ascii: ":")
        var next = lineEnd(bytes, from: bytes.startIndex)  // the CRLF before the next line, or the end
        while next < bytes.endIndex {
            let start = next + 2
            let end = lineEnd(bytes, from: start)
            next = end
            if start >= end { continue }
            guard let c = bytes[start..<end].firstIndex(of: colon), bytes[start] != space, bytes[start] != tab,
                  c == start || (bytes[c - 1] != space && bytes[c - 1] != tab) else { throw BadFieldLine() }
            var from = c + 1, to = end
            while from < to && (bytes[from] == space || bytes[from] == tab) { from += 1 }
            while to > from && (bytes[to - 1] == space || bytes[to - 1] == tab) { to -= 1 }
            try field(asciiLowercased(bytes[start..<c]), String(decoding: bytes[from..<to], as: UTF8.self))
        }
    }

    /// A Content-Length value: 1 to 12 ASCII digits (RFC 9110 §8.6), nil for anything else.
    public static func contentLength(_ value: String) -> Int? {
        guard !value.isEmpty, value.utf8.count <= 12, value.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        return Int(value)
    }

    /// The index of the first CRLF at or after `start` in `bytes`, or its end.
    static func lineEnd(_ bytes: ArraySlice<UInt8>, from start: Int) -> Int {
        var i = start
        while i + 1 < bytes.endIndex {
            if bytes[i] == 13 && bytes[i + 1] == 10 { return i }
            i += 1
        }
        return bytes.endIndex
    }

    /// `bytes` as UTF-8 (invalid bytes as U+FFFD), A–Z lowercased.
    static func asciiLowercased(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.lazy.map { $0 &- 65 < 26 ? $0 | 0x20 : $0 }, as: UTF8.self)
    }
}
