/// Just enough DER to build a SubjectPublicKeyInfo from a token's public key attributes.
enum DER {
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
