/// Just enough DER to build a SubjectPublicKeyInfo from a token's public key attributes.
public enum DER {
    static func length(_ n: Int) -> [UInt8] {
        if n < 0x80 { return [UInt8(n)] }
        var bytes: [UInt8] = []
        var v = n
        while v > 0 { bytes.insert(UInt8(v & 0xFF), at: 0); v >>= 8 }
        return [0x80 | UInt8(bytes.count)] + bytes
    }
    static func tlv(_ tag: UInt8, _ body: [UInt8]) -> [UInt8] { [tag] + length(body.count) + body }
    static func sequence(_ parts: [UInt8]...) -> [UInt8] { tlv(0x30, parts.flatMap { $0 }) }
    static func integer(_ magnitude: [UInt8]) -> [UInt8] {
        var m = Array(magnitude.drop { $0 == 0 })
        if m.isEmpty { m = [0] }
        if m[0] & 0x80 != 0 { m.insert(0, at: 0) }
        return tlv(0x02, m)
    }
    static func bitString(_ bytes: [UInt8]) -> [UInt8] { tlv(0x03, [0] + bytes) }
    static let null: [UInt8] = [0x05, 0x00]
    static let rsaEncryption: [UInt8] = [0x06, 0x09, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01]
    static let ecPublicKey: [UInt8] = [0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01]

    /// Reads one DER element at `i`: (tag, content range, end). Definite lengths only, minimal form.
    static func element(_ d: [UInt8], _ i: Int) -> (tag: UInt8, content: Range<Int>, end: Int)? {
        guard i + 2 <= d.count else { return nil }
        let tag = d[i]
        var len = Int(d[i + 1])
        var start = i + 2
        if len & 0x80 != 0 {
            let n = len & 0x7F
            guard n >= 1, n <= 3, start + n <= d.count, d[start] != 0 else { return nil }
            len = 0
            for k in 0..<n { len = len << 8 | Int(d[start + k]) }
            guard len >= 0x80 else { return nil }
            start += n
        }
        guard start + len <= d.count else { return nil }
        return (tag, start..<(start + len), start + len)
    }

    /// The body of the rsaEncryption OID (1.2.840.113549.1.1.1).
    static let rsaEncryptionOID: [UInt8] = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x01]

    /// The modulus and exponent of an RSA SubjectPublicKeyInfo (rsaEncryption, NULL parameters), read
    /// by this reader alone: strict DER (definite, minimal lengths; positive, minimal INTEGERs), the
    /// whole input and nothing after it. No OpenSSL here, so tests and the fuzzer can hold it against
    /// OpenSSL's parser (`RSAPublicKey(openSSL:)`).
    static func rsaPublicKey(_ d: [UInt8]) throws -> (modulus: [UInt8], exponent: [UInt8]) {
        typealias Failure = RSAPublicKey.ParseError
        guard let outer = element(d, 0), outer.tag == 0x30 else { throw Failure.notDER }
        guard outer.end == d.count else { throw Failure.trailingBytes }
        guard let alg = element(d, outer.content.lowerBound), alg.tag == 0x30,
              let oid = element(d, alg.content.lowerBound), oid.tag == 0x06, oid.end <= alg.end,
              let bits = element(d, alg.end), bits.tag == 0x03, bits.end == outer.end, !bits.content.isEmpty,
              d[bits.content.lowerBound] == 0 else { throw Failure.notDER }
        let algorithm = Array(d[oid.content])
        guard algorithm == rsaEncryptionOID else { throw Failure.notRSA(keyName(algorithm)) }
        guard let nul = element(d, oid.end), nul.tag == 0x05, nul.content.isEmpty, nul.end == alg.end,
              let key = element(d, bits.content.lowerBound + 1), key.tag == 0x30, key.end == bits.end,
              let n = element(d, key.content.lowerBound), n.tag == 0x02,
              let e = element(d, n.end), e.tag == 0x02, e.end == key.end else { throw Failure.notDER }
        func unsigned(_ r: Range<Int>) -> [UInt8]? {
            guard !r.isEmpty, d[r.lowerBound] & 0x80 == 0 else { return nil }  // positive
            if r.count > 1 && d[r.lowerBound] == 0 && d[r.lowerBound + 1] & 0x80 == 0 { return nil }  // minimal
            return Array(d[r].drop { $0 == 0 })
        }
        guard let modulus = unsigned(n.content), let exponent = unsigned(e.content), !modulus.isEmpty, !exponent.isEmpty else {
            throw Failure.notDER
        }
        return (modulus, exponent)
    }

    /// What a SubjectPublicKeyInfo that is not rsaEncryption holds, for the error message.
    static func keyName(_ oid: [UInt8]) -> String {
        switch oid {
        case Array(ecPublicKey.dropFirst(2)): return "an EC key"
        case [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0A]: return "an RSA-PSS key"
        default: return "not an RSA key (algorithm \(oidText(oid)))"
        }
    }

    /// Dotted text of an OID body (for messages; a malformed body prints as hex).
    static func oidText(_ b: [UInt8]) -> String {
        var arcs: [UInt64] = []
        var v: UInt64 = 0
        for (i, byte) in b.enumerated() {
            guard v < (1 << 56) else { return b.hex }
            v = v << 7 | UInt64(byte & 0x7F)
            if byte & 0x80 == 0 {
                if arcs.isEmpty { arcs += v < 80 ? [v / 40, v % 40] : [2, v - 80] } else { arcs.append(v) }
                v = 0
            } else if i == b.count - 1 { return b.hex }
        }
        return arcs.isEmpty ? b.hex : arcs.map(String.init).joined(separator: ".")
    }

    /// Bits in a modulus without leading zero bytes.
    static func bitLength(_ magnitude: [UInt8]) -> Int {
        guard let lead = magnitude.first else { return 0 }
        return (magnitude.count - 1) * 8 + (8 - lead.leadingZeroBitCount)
    }

    /// The length of the DER element (tag, length, contents) at the start of `d`, reading
    /// definite lengths of up to four length bytes; nil if `d` does not start with one. Key
    /// material AWS takes as PKCS#8 must be exactly this long: whatever follows is not part of it.
    public static func firstElementLength(_ d: [UInt8]) -> Int? {
        guard d.count >= 2 else { return nil }
        let first = Int(d[1])
        if first & 0x80 == 0 { return 2 + first <= d.count ? 2 + first : nil }
        let n = first & 0x7F
        guard n >= 1, n <= 4, 2 + n <= d.count else { return nil }
        var len = 0
        for k in 0..<n { len = len << 8 | Int(d[2 + k]) }
        let total = 2 + n + len
        return total <= d.count ? total : nil
    }

    static func rsaSPKI(modulus: [UInt8], exponent: [UInt8]) -> [UInt8] {
        sequence(sequence(rsaEncryption, null), bitString(sequence(integer(modulus), integer(exponent))))
    }

    /// CKA_EC_POINT is a DER OCTET STRING around the point (some tokens give the bare point).
    static func ecSPKI(params: [UInt8], ecPoint: [UInt8]) -> [UInt8] {
        var point = ecPoint
        if point.first == 0x04, point.count > 2 {
            // OCTET STRING? tag 0x04 followed by a length that covers the rest.
            var len = 0, hdr = 2
            if point[1] < 0x80 { len = Int(point[1]) } else {
                let n = Int(point[1] & 0x7F)
                hdr = 2 + n
                if point.count >= hdr { for i in 0..<n { len = len << 8 | Int(point[2 + i]) } }
            }
            if hdr + len == point.count, point.count > hdr, [0x02, 0x03, 0x04].contains(point[hdr]) {
                point = Array(point[hdr...])
            }
        }
        return sequence(sequence(ecPublicKey, params), bitString(point))
    }
}

extension RSAPublicKey {
    /// An RSA SubjectPublicKeyInfo read by `DER.rsaPublicKey` alone, failing with its reason; the
    /// reader under test and under fuzzing. `init(spki:)` is the production path.
    public init(derReader der: [UInt8]) throws {
        let (n, e) = try DER.rsaPublicKey(der)
        self.init(der: der, modulus: n, publicExponent: e, bits: DER.bitLength(n))
    }
}
