import CPKCS11

/// An attribute `Attribute` has no case for — a vendor's, such as NSS's `CKA_NSS_DB` — with its
/// value as the bytes `pValue` points at. Used only where a token needs one (the self-test's
/// throwaway keys on NSS softokn).
public struct RawAttribute: Sendable {
    public let type: AttributeType
    public let value: [UInt8]
    public init(_ type: AttributeType, _ value: [UInt8]) { self.type = type; self.value = value }

    /// NSS softokn's `CKA_NSS_DB` (0xD5A0DB00): the public value it files a private key under.
    /// NSS 3.87 will not unwrap an EC private key without it in the template.
    public static func nssDB(_ publicValue: [UInt8]) -> RawAttribute { RawAttribute(AttributeType(rawValue: 0xD5A0_DB00), publicValue) }
}

/// `withCTemplate` for a typed template plus raw attributes: the same conversion, for the few
/// calls that need a vendor attribute. Buffers live for the closure only.
func withCTemplate<R>(_ template: [Attribute], raw: [RawAttribute], _ body: (UnsafeMutablePointer<CK_ATTRIBUTE>?, CK_ULONG) throws -> R) rethrows -> R {
    let pairs = template.map { ($0.type, $0.bytes) } + raw.map { ($0.type, $0.value) }
    let buffers = pairs.map { pair -> UnsafeMutableRawBufferPointer in
        let b = UnsafeMutableRawBufferPointer.allocate(byteCount: max(pair.1.count, 1), alignment: 8)
        b.copyBytes(from: pair.1)
        return b
    }
    defer { buffers.forEach { $0.deallocate() } }
    var attrs = zip(pairs, buffers).map { pair, b in
        CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(pair.0.rawValue), pValue: b.baseAddress, ulValueLen: CK_ULONG(pair.1.count))
    }
    return try attrs.withUnsafeMutableBufferPointer { try body($0.baseAddress, CK_ULONG($0.count)) }
}
