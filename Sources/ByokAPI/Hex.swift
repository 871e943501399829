extension Sequence where Element == UInt8 {
    /// Lowercase hex.
    public var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for b in self { out.append(digits[Int(b >> 4)]); out.append(digits[Int(b & 15)]) }
        return String(decoding: out, as: UTF8.self)
    }
}

extension Array where Element == UInt8 {
    /// Parses hex (either case); nil if not hex.
    public init?(hex: String) {
        let c = Array(hex.utf8)
        guard c.count % 2 == 0 else { return nil }
        func v(_ x: UInt8) -> UInt8? {
            switch x { case 48...57: x - 48; case 97...102: x - 87; case 65...70: x - 55; default: nil }
        }
        var out = [UInt8]()
        out.reserveCapacity(c.count / 2)
        var i = 0
        while i < c.count {
            guard let hi = v(c[i]), let lo = v(c[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        self = out
    }
}
