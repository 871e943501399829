import ByokAPI
import Foundation
import PKCS11

/// How the token produces one wrapping algorithm, as the self-test found it.
public enum WrapRoute: String, Sendable {
    /// C_WrapKey(CKM_RSA_PKCS_OAEP) of the key itself.
    case oaep
    /// C_WrapKey(CKM_RSA_AES_KEY_WRAP), the token's own mechanism.
    case nativeRsaAes
    /// Ephemeral AES-256 on the token, C_WrapKey(CKM_AES_KEY_WRAP_PAD) of the key, C_WrapKey(OAEP) of the ephemeral.
    case steps
    /// The same with CKM_AES_KEY_WRAP_KWP for the RFC 5649 step.
    case stepsKWP

    public var description: String {
        switch self {
        case .oaep: "CKM_RSA_PKCS_OAEP"
        case .nativeRsaAes: "CKM_RSA_AES_KEY_WRAP"
        case .steps: "CKM_AES_KEY_WRAP_PAD + CKM_RSA_PKCS_OAEP"
        case .stepsKWP: "CKM_AES_KEY_WRAP_KWP + CKM_RSA_PKCS_OAEP"
        }
    }
}

/// Wraps keys on the token with an AWS wrapping public key. Plaintext never leaves the token.
public struct OnTokenWrap {
    public let session: Session
    public let token: TokenInfo

    public init(session: Session, token: TokenInfo) {
        self.session = session
        self.token = token
    }

    /// Creates the wrapping public key on the token as a session object (CKA_TOKEN=false, CKA_WRAP=true).
    public func createWrappingKey(_ key: RSAPublicKey) throws -> ObjectHandle {
        try session.createObject([.class(.publicKey), .keyType(.rsa), .token(false), .private(false), .wrap(true), .encrypt(true),
                                  .modulus(key.modulus), .publicExponent(key.publicExponent), .label("byokd-wrapping-key")])
    }

    /// As the Security Officer: the wrapping key as a trusted public token object, which alone
    /// may wrap keys marked CKA_WRAP_WITH_TRUSTED. Destroy it after the wrap.
    public func createTrustedWrappingKey(_ key: RSAPublicKey, label: String) throws -> ObjectHandle {
        try session.createObject([.class(.publicKey), .keyType(.rsa), .token(true), .private(false), .wrap(true), .encrypt(false),
                                  .trusted(true), .modulus(key.modulus), .publicExponent(key.publicExponent), .label(label)])
    }

    /// As the Security Officer: the ephemeral AES-256 key of the stepwise RSA_AES_KEY_WRAP route,
    /// trusted (so it may wrap the target) and itself wrap-with-trusted (so only the trusted
    /// wrapping key can take it out). Wrap only: it encrypts and unwraps nothing. Destroy it after.
    public func createTrustedEphemeralKey(label: String) throws -> ObjectHandle {
        try session.generateKey(.aesKeyGen, [.class(.secretKey), .keyType(.aes), .valueLen(32), .token(true), .private(false),
                                             .sensitive(true), .extractable(true), .wrap(true), .encrypt(false), .decrypt(false),
                                             .unwrap(false), .trusted(true), .wrapWithTrusted(true), .label(label)])
    }

    /// The label prefix of the objects the Security Officer step makes, one set per request.
    public static let trustedLabelPrefix = "byokd-trusted-for-"

    /// The wrap itself, given a wrapping key already on the token. Returns the EncryptedKeyMaterial.
    /// The stepwise routes make their own ephemeral AES key unless given one (the trusted one).
    /// `sizes`: the wrapping key's modulus and the most key material the key can hold, in bytes,
    /// so each C_WrapKey is one call into a buffer of the right size (no size query first).
    public func wrap(key: ObjectHandle, with algorithm: WrappingAlgorithm, route: WrapRoute, wrappingKey: ObjectHandle,
                     ephemeral given: ObjectHandle? = nil, sizes: (modulus: Int, material: Int)? = nil) throws -> [UInt8] {
        guard let hash = algorithm.hash else { throw ByokError(.algorithmRefused, algorithm.refusal ?? "\(algorithm.rawValue) is not supported") }
        // RFC 5649: the padded material plus one 8-byte block.
        let kwp = sizes.map { ($0.material + 7) / 8 * 8 + 8 }
        switch route {
        case .oaep:
            return try session.wrapKey(.rsaPkcsOaep(hash: hash, mgf: hash), wrappingKey: wrappingKey, key: key, expectedLength: sizes?.modulus)
        case .nativeRsaAes:
            return try session.wrapKey(.rsaAesKeyWrap(aesKeyBits: 256, hash: hash, mgf: hash), wrappingKey: wrappingKey, key: key,
                                       expectedLength: sizes.map { $0.modulus + kwp! })
        case .steps, .stepsKWP:
            let ephemeral = try given ?? session.generateKey(.aesKeyGen, [.class(.secretKey), .keyType(.aes), .valueLen(32), .token(false),
                                                                          .private(true), .sensitive(true), .extractable(true), .wrap(true),
                                                                          .label("byokd-ephemeral")])
            defer { if given == nil { try? session.destroyObject(ephemeral) } }
            let wrappedTarget = try session.wrapKey(route == .stepsKWP ? .aesKeyWrapKwp : .aesKeyWrapPad, wrappingKey: ephemeral, key: key,
                                                    expectedLength: kwp)
            let wrappedEphemeral = try session.wrapKey(.rsaPkcsOaep(hash: hash, mgf: hash), wrappingKey: wrappingKey, key: ephemeral,
                                                       expectedLength: sizes?.modulus)
            return wrappedEphemeral + wrappedTarget
        }
    }
}
