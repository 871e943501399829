import ByokAPI
import PKCS11

/// What each AWS key spec is on a PKCS#11 token.
extension KeySpec {
    public enum Kind: Sendable, Equatable {
        /// AES of `bytes` bytes (32 for SYMMETRIC_DEFAULT: AWS requires 256-bit symmetric key material).
        case aes(bytes: Int)
        /// HMAC key of `length` bytes, used with `hash`.
        case hmac(hash: HashAlgorithm, length: Int)
        case rsa(bits: Int)
        /// `params` is the DER OID of the named curve (CKA_EC_PARAMS).
        case ec(curve: String, params: [UInt8])
    }

    public var kind: Kind {
        switch self {
        case .SYMMETRIC_DEFAULT: .aes(bytes: 32)
        case .AES_128: .aes(bytes: 16)
        case .AES_192: .aes(bytes: 24)
        // AWS requires HMAC key material of 28–64 (224), 32–64 (256), 48–128 (384) and 64–128 (512)
        // bytes ("Requirements for imported key material", AWS KMS Developer Guide). byokd makes keys
        // of the hash's output length, the shortest AWS accepts and RFC 2104's recommendation.
        case .HMAC_224: .hmac(hash: .sha224, length: 28)
        case .HMAC_256: .hmac(hash: .sha256, length: 32)
        case .HMAC_384: .hmac(hash: .sha384, length: 48)
        case .HMAC_512: .hmac(hash: .sha512, length: 64)
        case .RSA_2048: .rsa(bits: 2048)
        case .RSA_3072: .rsa(bits: 3072)
        case .RSA_4096: .rsa(bits: 4096)
        case .ECC_NIST_P256: .ec(curve: "P-256", params: [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07])
        case .ECC_NIST_P384: .ec(curve: "P-384", params: [0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22])
        case .ECC_NIST_P521: .ec(curve: "P-521", params: [0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x23])
        case .ECC_SECG_P256K1: .ec(curve: "secp256k1", params: [0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x0A])
        }
    }

    public var isAsymmetric: Bool {
        switch kind { case .rsa, .ec: true; default: false }
    }

    /// What the wrap carries, in bytes, at most: the raw key for AES and HMAC keys, the DER PKCS#8
    /// PrivateKeyInfo for private keys (upper bounds of what tokens emit, with the public key).
    public var maximumMaterialLength: Int {
        switch kind {
        case .aes(let bytes): bytes
        case .hmac(_, let length): length
        case .rsa(let bits): bits / 8 * 5 + 64
        case .ec(let curve, _):
            switch curve { case "P-384": 185; case "P-521": 241; default: 138 }
        }
    }

    /// Recognises the spec of a key made by any tool, from its PKCS#11 attributes.
    public static func from(class cls: ObjectClass, keyType: KeyType, valueLength: Int?, modulusBits: Int?, ecParams: [UInt8]?) -> KeySpec? {
        if cls == .secretKey {
            if keyType == .aes { return [32: .SYMMETRIC_DEFAULT, 16: .AES_128, 24: .AES_192][valueLength ?? 0] }
            let byType: [KeyType: KeySpec] = [.sha224Hmac: .HMAC_224, .sha256Hmac: .HMAC_256, .sha384Hmac: .HMAC_384, .sha512Hmac: .HMAC_512]
            if let s = byType[keyType] { return s }
            if keyType == .genericSecret, let n = valueLength {
                return [28: .HMAC_224, 32: .HMAC_256, 48: .HMAC_384, 64: .HMAC_512][n]
            }
            return nil
        }
        if cls == .privateKey || cls == .publicKey {
            if keyType == .rsa, let b = modulusBits { return [2048: .RSA_2048, 3072: .RSA_3072, 4096: .RSA_4096][b] }
            if keyType == .ec, let p = ecParams {
                return allCases.first { if case .ec(_, let params) = $0.kind { return params == p }; return false }
            }
        }
        return nil
    }
}
