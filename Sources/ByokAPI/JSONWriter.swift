/// Writes JSON exactly as Foundation's `JSONEncoder` with `.sortedKeys` does, byte for byte, for
/// the few fixed shapes on a wrap's path (`JSONWritable`): the answer of a wrap, a batch line, an
/// error. JSONEncoder's generic machinery (a boxed value tree, then a writer) costs a wrap more
/// than its own JSON does. Tests compare both encoders' bytes (`JSONWriterTests`).
///
/// What JSONEncoder does and this mirrors: keys in UTF-8 byte order (each shape writes its keys in
/// that order, nested objects too), absent optionals left out, `"` `\` `/` escaped with a backslash
/// (`/` not with `escapingSlashes: false`, as `.withoutEscapingSlashes`), the control characters as
/// `\b \t \n \f \r` or `\u00xx` (lowercase hex), everything else as UTF-8; integers of every
/// width in decimal, as their `description` (`-` for a negative, no `+`, no leading zeros).
public struct JSONWriter {
    public private(set) var bytes: [UInt8] = []
    private var needsComma = false
    private let escapingSlashes: Bool

    /// `capacity`: a wrap's answer is about 2.4 KB. `escapingSlashes: false` writes `/` as it is,
    /// as JSONEncoder's `.withoutEscapingSlashes` does (audit records).
    public init(capacity: Int = 4096, escapingSlashes: Bool = true) {
        bytes.reserveCapacity(capacity)
        self.escapingSlashes = escapingSlashes
    }

    /// `{ … }`: `body` writes the fields, keys in sorted order.
    public mutating func object(_ body: (inout JSONWriter) -> Void) {
        bytes.append(UInt8(ascii: "{"))
        let outer = needsComma
        needsComma = false
        body(&self)
        bytes.append(UInt8(ascii: "}"))
        needsComma = outer
    }

    public mutating func field(_ key: StaticString, _ value: String?) {
        guard let value else { return }
        self.key(key)
        string(value)
    }

    public mutating func field(_ key: StaticString, _ value: Int) {
        self.key(key)
        integer(value)
    }

    /// Any integer type (`UInt64`, `UInt32`, `Int32`, `Int?`…): left out when nil.
    public mutating func field<Value: FixedWidthInteger>(_ key: StaticString, _ value: Value?) {
        guard let value else { return }
        self.key(key)
        integer(value)
    }

    public mutating func field(_ key: StaticString, _ value: Bool?) {
        guard let value else { return }
        self.key(key)
        bytes.append(contentsOf: value ? "true".utf8 : "false".utf8)
    }

    public mutating func field<Value: JSONWritable>(_ key: StaticString, _ value: Value?) {
        guard let value else { return }
        self.key(key)
        value.write(to: &self)
    }

    public mutating func field<Value: RawRepresentable>(_ key: StaticString, _ value: Value?) where Value.RawValue == String {
        field(key, value?.rawValue)
    }

    /// Keys are the shapes' own identifiers: plain ASCII, nothing to escape.
    private mutating func key(_ key: StaticString) {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
        needsComma = true
        bytes.append(UInt8(ascii: "\""))
        key.withUTF8Buffer { bytes.append(contentsOf: $0) }
        bytes.append(UInt8(ascii: "\""))
        bytes.append(UInt8(ascii: ":"))
    }

    /// The decimal digits of `value`, as `value.description` spells them (and JSONEncoder writes
    /// them), without making a String.
    private mutating func integer<Value: FixedWidthInteger>(_ value: Value) {
        guard Value.bitWidth <= 64 else { return bytes.append(contentsOf: value.description.utf8) }
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var m = UInt64(value.magnitude)
        let start = bytes.count
        repeat {
            bytes.append(UInt8(ascii: "0") + UInt8(m % 10))
            m /= 10
        } while m > 0
        bytes[start...].reverse()
    }

    private mutating func string(_ s: String) {
        var s = s
        let escapingSlashes = escapingSlashes
        s.withUTF8 { Self.appendQuoted($0, escapingSlashes: escapingSlashes, to: &bytes) }
    }

    private static func appendQuoted(_ utf8: UnsafeBufferPointer<UInt8>, escapingSlashes: Bool, to out: inout [UInt8]) {
        let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
        // Without escaping slashes, `slash` names `"` a second time (escaped anyway), so `/` goes
        // out as it is with no extra test in the loop below.
        let slash = escapingSlashes ? UInt8(ascii: "/") : quote
        out.append(quote)
        var run = 0, i = 0  // bytes from `run` to `i` go out as they are
        while i < utf8.count {
            let c = utf8[i]
            if c >= 0x20 && c != quote && c != backslash && c != slash { i += 1; continue }
            out.append(contentsOf: UnsafeBufferPointer(start: utf8.baseAddress! + run, count: i - run))
            out.append(backslash)
            switch c {
            case quote, backslash, slash: out.append(c)
            case 0x08: out.append(UInt8(ascii: "b"))
            case 0x09: out.append(UInt8(ascii: "t"))
            case 0x0A: out.append(UInt8(ascii: "n"))
            case 0x0C: out.append(UInt8(ascii: "f"))
            case 0x0D: out.append(UInt8(ascii: "r"))
            default:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: "u00".utf8)
                out.append(hex[Int(c >> 4)])
                out.append(hex[Int(c & 15)])
            }
            i += 1
            run = i
        }
        if let base = utf8.baseAddress { out.append(contentsOf: UnsafeBufferPointer(start: base + run, count: utf8.count - run)) }
        out.append(quote)
    }
}

/// A shape `JSONWriter` writes: the same bytes as `JSONEncoder` with `.sortedKeys` gives its
/// `Encodable` conformance (with `.withoutEscapingSlashes` too, for a writer made with
/// `escapingSlashes: false`).
public protocol JSONWritable: Encodable {
    func write(to json: inout JSONWriter)
}

extension JSONWritable {
    /// The JSON bytes, as `JSONEncoder` with `.sortedKeys` would give them.
    public var jsonBytes: [UInt8] {
        var w = JSONWriter()
        write(to: &w)
        return w.bytes
    }
}
