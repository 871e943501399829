/// Text that came from a client or a token, made safe for a terminal or a log line: control
/// characters (C0, DEL, C1), line and paragraph separators and bidirectional overrides become
/// visible escapes (`\n`, `\u{1B}`), so an escape sequence in a key label or a KMS key id can
/// neither repaint an approver's screen nor forge a log line.
public enum Display {
    public static func escaped(_ s: String) -> String {
        // Most text is printable ASCII without a backslash: nothing to change (every unsafe
        // character is a C0 byte, DEL, or outside ASCII).
        if s.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\\") }) { return s }
        var out = ""
        out.reserveCapacity(s.utf8.count)
        for u in s.unicodeScalars {
            if isUnsafe(u) {
                switch u {
                case "\n": out += "\\n"
                case "\r": out += "\\r"
                case "\t": out += "\\t"
                default: out += "\\u{" + String(u.value, radix: 16, uppercase: true) + "}"
                }
            } else if u == "\\" {
                out += "\\\\"
            } else {
                out.unicodeScalars.append(u)
            }
        }
        return out
    }

    /// `s` with only the unsafe characters escaped (backslashes kept as they are): for a client
    /// printing text that its daemon escaped already, as a second line of defence.
    public static func sanitized(_ s: String) -> String {
        guard hasUnsafe(s) else { return s }
        var out = ""
        for u in s.unicodeScalars {
            if isUnsafe(u) { out += "\\u{" + String(u.value, radix: 16, uppercase: true) + "}" } else { out.unicodeScalars.append(u) }
        }
        return out
    }

    /// Whether `s` holds anything `escaped` would change (other than a backslash).
    public static func hasUnsafe(_ s: String) -> Bool { s.unicodeScalars.contains(where: isUnsafe) }

    static func isUnsafe(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x00...0x1F, 0x7F...0x9F: true
        case 0x2028, 0x2029: true  // line and paragraph separators
        case 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: true  // bidirectional marks and overrides
        default: false
        }
    }
}
