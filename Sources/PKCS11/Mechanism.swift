import CPKCS11

/// A mechanism type (`CK_MECHANISM_TYPE`), open to vendor values.
public struct MechanismType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt
    public init(rawValue: UInt) { self.rawValue = rawValue }
    init(_ v: CK_MECHANISM_TYPE) { rawValue = UInt(v) }

    public static let rsaPkcsKeyPairGen = MechanismType(CKM_RSA_PKCS_KEY_PAIR_GEN)
    public static let rsaPkcsOaep = MechanismType(CKM_RSA_PKCS_OAEP)
    public static let rsaAesKeyWrap = MechanismType(CKM_RSA_AES_KEY_WRAP)
    public static let ecKeyPairGen = MechanismType(CKM_EC_KEY_PAIR_GEN)
    public static let aesKeyGen = MechanismType(CKM_AES_KEY_GEN)
    public static let aesEcb = MechanismType(CKM_AES_ECB)
    public static let aesKeyWrapPad = MechanismType(CKM_AES_KEY_WRAP_PAD)
    /// PKCS#11 v3.0's RFC 5649 mechanism (0x210B). Some modules (NSS) implement CKM_AES_KEY_WRAP_PAD
    /// as RFC 3394 with PKCS#7 padding instead, and offer RFC 5649 only under this name.
    public static let aesKeyWrapKwp = MechanismType(rawValue: 0x210B)
    public static let genericSecretKeyGen = MechanismType(CKM_GENERIC_SECRET_KEY_GEN)

    public var description: String {
        let names: [UInt: String] = [
            0: "CKM_RSA_PKCS_KEY_PAIR_GEN", 9: "CKM_RSA_PKCS_OAEP", 0x1054: "CKM_RSA_AES_KEY_WRAP",
            0x1040: "CKM_EC_KEY_PAIR_GEN", 0x1080: "CKM_AES_KEY_GEN", 0x1081: "CKM_AES_ECB",
            0x210a: "CKM_AES_KEY_WRAP_PAD", 0x210b: "CKM_AES_KEY_WRAP_KWP", 0x2109: "CKM_AES_KEY_WRAP", 0x350: "CKM_GENERIC_SECRET_KEY_GEN",
            0x221: "CKM_SHA_1_HMAC", 0x256: "CKM_SHA224_HMAC", 0x251: "CKM_SHA256_HMAC",
            0x261: "CKM_SHA384_HMAC", 0x271: "CKM_SHA512_HMAC",
        ]
        return names[rawValue] ?? "CKM_0x" + String(rawValue, radix: 16)
    }
}

/// Hash functions as PKCS#11 names them for OAEP, MGF1 and HMAC.
public enum HashAlgorithm: String, Sendable, CaseIterable {
    case sha1 = "SHA-1", sha224 = "SHA-224", sha256 = "SHA-256", sha384 = "SHA-384", sha512 = "SHA-512"

    var ckm: CK_MECHANISM_TYPE {
        switch self {
        case .sha1: CKM_SHA_1
        case .sha224: CKM_SHA224
        case .sha256: CKM_SHA256
        case .sha384: CKM_SHA384
        case .sha512: CKM_SHA512
        }
    }
    var mgf: CK_RSA_PKCS_MGF_TYPE {
        switch self {
        case .sha1: CK_RSA_PKCS_MGF_TYPE(CKG_MGF1_SHA1)
        case .sha224: CK_RSA_PKCS_MGF_TYPE(CKG_MGF1_SHA224)
        case .sha256: CK_RSA_PKCS_MGF_TYPE(CKG_MGF1_SHA256)
        case .sha384: CK_RSA_PKCS_MGF_TYPE(CKG_MGF1_SHA384)
        case .sha512: CK_RSA_PKCS_MGF_TYPE(CKG_MGF1_SHA512)
        }
    }
    public var hmacMechanism: MechanismType {
        switch self {
        case .sha1: MechanismType(CKM_SHA_1_HMAC)
        case .sha224: MechanismType(CKM_SHA224_HMAC)
        case .sha256: MechanismType(CKM_SHA256_HMAC)
        case .sha384: MechanismType(CKM_SHA384_HMAC)
        case .sha512: MechanismType(CKM_SHA512_HMAC)
        }
    }
    /// Output length in bytes.
    public var length: Int {
        switch self { case .sha1: 20; case .sha224: 28; case .sha256: 32; case .sha384: 48; case .sha512: 64 }
    }
}

/// A mechanism with its parameters (`CK_MECHANISM`). Converted to C only inside `withC`.
public enum Mechanism: Sendable, CustomStringConvertible {
    case rsaPkcsKeyPairGen
    case ecKeyPairGen
    case aesKeyGen
    case genericSecretKeyGen
    case aesEcb
    case aesKeyWrapPad
    case aesKeyWrapKwp
    /// `CKM_RSA_PKCS_OAEP` with the given hash for OAEP and MGF1, and no label.
    case rsaPkcsOaep(hash: HashAlgorithm, mgf: HashAlgorithm)
    /// `CKM_RSA_AES_KEY_WRAP` with an ephemeral AES key of `aesKeyBits` and OAEP parameters.
    case rsaAesKeyWrap(aesKeyBits: Int, hash: HashAlgorithm, mgf: HashAlgorithm)
    case hmac(HashAlgorithm)

    public var type: MechanismType {
        switch self {
        case .rsaPkcsKeyPairGen: .rsaPkcsKeyPairGen
        case .ecKeyPairGen: .ecKeyPairGen
        case .aesKeyGen: .aesKeyGen
        case .genericSecretKeyGen: .genericSecretKeyGen
        case .aesEcb: .aesEcb
        case .aesKeyWrapPad: .aesKeyWrapPad
        case .aesKeyWrapKwp: .aesKeyWrapKwp
        case .rsaPkcsOaep: .rsaPkcsOaep
        case .rsaAesKeyWrap: .rsaAesKeyWrap
        case .hmac(let h): h.hmacMechanism
        }
    }

    public var description: String {
        switch self {
        case .rsaPkcsOaep(let h, let m): "CKM_RSA_PKCS_OAEP(\(h.rawValue), MGF1-\(m.rawValue))"
        case .rsaAesKeyWrap(let b, let h, let m): "CKM_RSA_AES_KEY_WRAP(AES-\(b), \(h.rawValue), MGF1-\(m.rawValue))"
        default: type.description
        }
    }

    /// The one place a typed mechanism becomes a `CK_MECHANISM`.
    func withC<R>(_ body: (UnsafeMutablePointer<CK_MECHANISM>) throws -> R) rethrows -> R {
        switch self {
        case .rsaPkcsOaep(let hash, let mgf):
            var p = CK_RSA_PKCS_OAEP_PARAMS(hashAlg: hash.ckm, mgf: mgf.mgf, source: CK_RSA_PKCS_OAEP_SOURCE_TYPE(CKZ_DATA_SPECIFIED),
                                           pSourceData: nil, ulSourceDataLen: 0)
            return try withUnsafeMutablePointer(to: &p) { pp in
                var m = CK_MECHANISM(mechanism: type.rawValue.ck, pParameter: UnsafeMutableRawPointer(pp),
                                     ulParameterLen: CK_ULONG(MemoryLayout<CK_RSA_PKCS_OAEP_PARAMS>.size))
                return try body(&m)
            }
        case .rsaAesKeyWrap(let bits, let hash, let mgf):
            var oaep = CK_RSA_PKCS_OAEP_PARAMS(hashAlg: hash.ckm, mgf: mgf.mgf, source: CK_RSA_PKCS_OAEP_SOURCE_TYPE(CKZ_DATA_SPECIFIED),
                                              pSourceData: nil, ulSourceDataLen: 0)
            return try withUnsafeMutablePointer(to: &oaep) { op in
                var p = BYOK_RSA_AES_KEY_WRAP_PARAMS(ulAESKeyBits: CK_ULONG(bits), pOAEPParams: op)
                return try withUnsafeMutablePointer(to: &p) { pp in
                    var m = CK_MECHANISM(mechanism: type.rawValue.ck, pParameter: UnsafeMutableRawPointer(pp),
                                         ulParameterLen: CK_ULONG(MemoryLayout<BYOK_RSA_AES_KEY_WRAP_PARAMS>.size))
                    return try body(&m)
                }
            }
        default:
            var m = CK_MECHANISM(mechanism: type.rawValue.ck, pParameter: nil, ulParameterLen: 0)
            return try body(&m)
        }
    }
}

extension UInt {
    var ck: CK_ULONG { CK_ULONG(self) }
}
