import CPKCS11

/// An attribute type (`CK_ATTRIBUTE_TYPE`), open to vendor values.
public struct AttributeType: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt
    public init(rawValue: UInt) { self.rawValue = rawValue }
    init(_ v: CK_ATTRIBUTE_TYPE) { rawValue = UInt(v) }

    public static let `class` = AttributeType(CKA_CLASS)
    public static let keyType = AttributeType(CKA_KEY_TYPE)
    public static let token = AttributeType(CKA_TOKEN)
    public static let `private` = AttributeType(CKA_PRIVATE)
    public static let label = AttributeType(CKA_LABEL)
    public static let id = AttributeType(CKA_ID)
    public static let sensitive = AttributeType(CKA_SENSITIVE)
    public static let extractable = AttributeType(CKA_EXTRACTABLE)
    public static let alwaysSensitive = AttributeType(CKA_ALWAYS_SENSITIVE)
    public static let neverExtractable = AttributeType(CKA_NEVER_EXTRACTABLE)
    public static let encrypt = AttributeType(CKA_ENCRYPT)
    public static let decrypt = AttributeType(CKA_DECRYPT)
    public static let wrap = AttributeType(CKA_WRAP)
    public static let unwrap = AttributeType(CKA_UNWRAP)
    public static let sign = AttributeType(CKA_SIGN)
    public static let verify = AttributeType(CKA_VERIFY)
    public static let derive = AttributeType(CKA_DERIVE)
    public static let valueLen = AttributeType(CKA_VALUE_LEN)
    public static let modulus = AttributeType(CKA_MODULUS)
    public static let modulusBits = AttributeType(CKA_MODULUS_BITS)
    public static let publicExponent = AttributeType(CKA_PUBLIC_EXPONENT)
    public static let ecParams = AttributeType(CKA_EC_PARAMS)
    public static let ecPoint = AttributeType(CKA_EC_POINT)
    /// Only the security officer may set it to true; a trusted key may wrap keys marked `wrapWithTrusted`.
    public static let trusted = AttributeType(CKA_TRUSTED)
    /// The key can be wrapped only under a key with `trusted` set (the token enforces it).
    public static let wrapWithTrusted = AttributeType(CKA_WRAP_WITH_TRUSTED)
}

/// An object class (`CKO_*`).
public struct ObjectClass: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt
    public init(rawValue: UInt) { self.rawValue = rawValue }
    public static let publicKey = ObjectClass(rawValue: UInt(CKO_PUBLIC_KEY))
    public static let privateKey = ObjectClass(rawValue: UInt(CKO_PRIVATE_KEY))
    public static let secretKey = ObjectClass(rawValue: UInt(CKO_SECRET_KEY))
}

/// A key type (`CKK_*`).
public struct KeyType: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt
    public init(rawValue: UInt) { self.rawValue = rawValue }
    public static let rsa = KeyType(rawValue: UInt(CKK_RSA))
    public static let ec = KeyType(rawValue: UInt(CKK_EC))
    public static let aes = KeyType(rawValue: UInt(CKK_AES))
    public static let genericSecret = KeyType(rawValue: UInt(CKK_GENERIC_SECRET))
    public static let sha1Hmac = KeyType(rawValue: UInt(CKK_SHA_1_HMAC))
    public static let sha224Hmac = KeyType(rawValue: UInt(CKK_SHA224_HMAC))
    public static let sha256Hmac = KeyType(rawValue: UInt(CKK_SHA256_HMAC))
    public static let sha384Hmac = KeyType(rawValue: UInt(CKK_SHA384_HMAC))
    public static let sha512Hmac = KeyType(rawValue: UInt(CKK_SHA512_HMAC))
}

/// A typed attribute with its value, for templates.
public enum Attribute: Sendable {
    case `class`(ObjectClass)
    case keyType(KeyType)
    case token(Bool)
    case `private`(Bool)
    case label(String)
    case id([UInt8])
    case sensitive(Bool)
    case extractable(Bool)
    case encrypt(Bool)
    case decrypt(Bool)
    case wrap(Bool)
    case unwrap(Bool)
    case sign(Bool)
    case verify(Bool)
    case derive(Bool)
    case valueLen(Int)
    case modulus([UInt8])
    case modulusBits(Int)
    case publicExponent([UInt8])
    case ecParams([UInt8])
    case trusted(Bool)
    case wrapWithTrusted(Bool)

    public var type: AttributeType {
        switch self {
        case .class: .class
        case .keyType: .keyType
        case .token: .token
        case .private: .private
        case .label: .label
        case .id: .id
        case .sensitive: .sensitive
        case .extractable: .extractable
        case .encrypt: .encrypt
        case .decrypt: .decrypt
        case .wrap: .wrap
        case .unwrap: .unwrap
        case .sign: .sign
        case .verify: .verify
        case .derive: .derive
        case .valueLen: .valueLen
        case .modulus: .modulus
        case .modulusBits: .modulusBits
        case .publicExponent: .publicExponent
        case .ecParams: .ecParams
        case .trusted: .trusted
        case .wrapWithTrusted: .wrapWithTrusted
        }
    }

    /// The value as the bytes `pValue` points at.
    var bytes: [UInt8] {
        func bool(_ b: Bool) -> [UInt8] { [b ? UInt8(CK_TRUE) : UInt8(CK_FALSE)] }
        func ulong(_ v: UInt) -> [UInt8] { withUnsafeBytes(of: CK_ULONG(v)) { Array($0) } }
        switch self {
        case .class(let c): return ulong(c.rawValue)
        case .keyType(let k): return ulong(k.rawValue)
        case .token(let b), .private(let b), .sensitive(let b), .extractable(let b), .encrypt(let b),
             .decrypt(let b), .wrap(let b), .unwrap(let b), .sign(let b), .verify(let b), .derive(let b),
             .trusted(let b), .wrapWithTrusted(let b):
            return bool(b)
        case .label(let s): return Array(s.utf8)
        case .id(let b), .modulus(let b), .publicExponent(let b), .ecParams(let b): return b
        case .valueLen(let n), .modulusBits(let n): return ulong(UInt(n))
        }
    }
}

/// The one place a template becomes a `CK_ATTRIBUTE` array. Buffers live for the closure only.
func withCTemplate<R>(_ template: [Attribute], _ body: (UnsafeMutablePointer<CK_ATTRIBUTE>?, CK_ULONG) throws -> R) rethrows -> R {
    let values = template.map { $0.bytes }
    let buffers = values.map { v -> UnsafeMutableRawBufferPointer in
        let b = UnsafeMutableRawBufferPointer.allocate(byteCount: max(v.count, 1), alignment: 8)
        b.copyBytes(from: v)
        return b
    }
    defer { buffers.forEach { $0.deallocate() } }
    var attrs = zip(template, zip(buffers, values)).map { a, bv in
        CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(a.type.rawValue), pValue: bv.0.baseAddress, ulValueLen: CK_ULONG(bv.1.count))
    }
    return try attrs.withUnsafeMutableBufferPointer { try body($0.baseAddress, CK_ULONG($0.count)) }
}

/// Attribute values read from an object. A missing entry means the token would not give it
/// (sensitive, or not an attribute of this object).
public struct AttributeValues: Sendable {
    public var raw: [AttributeType: [UInt8]]

    public subscript(_ t: AttributeType) -> [UInt8]? { raw[t] }

    public func bool(_ t: AttributeType) -> Bool? {
        guard let v = raw[t], let b = v.first else { return nil }
        return b != 0
    }
    public func ulong(_ t: AttributeType) -> UInt? {
        guard let v = raw[t], v.count == MemoryLayout<CK_ULONG>.size else { return nil }
        return UInt(v.withUnsafeBytes { $0.loadUnaligned(as: CK_ULONG.self) })
    }
    public func string(_ t: AttributeType) -> String? {
        raw[t].map { String(decoding: $0, as: UTF8.self) }
    }
    public var objectClass: ObjectClass? { ulong(.class).map(ObjectClass.init(rawValue:)) }
    public var keyType: KeyType? { ulong(.keyType).map(KeyType.init(rawValue:)) }
}
