import ByokAPI
import COpenSSL
import Foundation
import PKCS11

/// The little software cryptography byokd needs, from OpenSSL's libcrypto: hashing, parsing the
/// AWS wrapping key, and the *throwaway* RSA key pair and unwrap of the mechanism self-test.
/// No customer key material ever passes through here.
public enum SoftwareCrypto {
    static func md(_ h: HashAlgorithm) -> OpaquePointer? {
        switch h {
        case .sha1: EVP_sha1()
        case .sha224: EVP_sha224()
        case .sha256: EVP_sha256()
        case .sha384: EVP_sha384()
        case .sha512: EVP_sha512()
        }
    }

    /// AES-ECB encryption of whole blocks (for key check values of a key known in software).
    public static func aesECB(key: [UInt8], data: [UInt8]) -> [UInt8]? {
        guard let ctx = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(ctx) }
        let cipher: OpaquePointer? = switch key.count { case 16: EVP_aes_128_ecb(); case 24: EVP_aes_192_ecb(); case 32: EVP_aes_256_ecb(); default: nil }
        guard let cipher, EVP_EncryptInit_ex(ctx, cipher, nil, key, nil) == 1 else { return nil }
        EVP_CIPHER_CTX_set_padding(ctx, 0)
        var out = [UInt8](repeating: 0, count: data.count + 16)
        var n: Int32 = 0, m: Int32 = 0
        guard EVP_EncryptUpdate(ctx, &out, &n, data, Int32(data.count)) == 1 else { return nil }
        let ok = out.withUnsafeMutableBufferPointer { EVP_EncryptFinal_ex(ctx, $0.baseAddress! + Int(n), &m) }
        guard ok == 1 else { return nil }
        return Array(out.prefix(Int(n + m)))
    }

    /// RFC 5649 AES key unwrap with padding (`id-aes256-wrap-pad`, IV A65959A6).
    public static func aesUnwrapPad(kek: [UInt8], wrapped: [UInt8]) -> [UInt8]? {
        guard let ctx = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(ctx) }
        let cipher: OpaquePointer? = switch kek.count { case 16: EVP_aes_128_wrap_pad(); case 24: EVP_aes_192_wrap_pad(); case 32: EVP_aes_256_wrap_pad(); default: nil }
        guard let cipher else { return nil }
        EVP_CIPHER_CTX_set_flags(ctx, Int32(EVP_CIPHER_CTX_FLAG_WRAP_ALLOW))
        guard EVP_DecryptInit_ex(ctx, cipher, nil, kek, nil) == 1 else { return nil }
        var out = [UInt8](repeating: 0, count: wrapped.count + 16)
        var n: Int32 = 0, m: Int32 = 0
        guard EVP_DecryptUpdate(ctx, &out, &n, wrapped, Int32(wrapped.count)) == 1 else { return nil }
        let ok = out.withUnsafeMutableBufferPointer { EVP_DecryptFinal_ex(ctx, $0.baseAddress! + Int(n), &m) }
        guard ok == 1 else { return nil }
        return Array(out.prefix(Int(n + m)))
    }

    static func spkiDER(_ key: OpaquePointer) -> [UInt8]? {
        let n = i2d_PUBKEY(key, nil)
        guard n > 0 else { return nil }
        var out = [UInt8](repeating: 0, count: Int(n))
        out.withUnsafeMutableBufferPointer { b in
            var p: UnsafeMutablePointer<UInt8>? = b.baseAddress
            _ = i2d_PUBKEY(key, &p)
        }
        return out
    }

    /// Drains OpenSSL's error queue (so one failure does not show up in the next call).
    static func clearErrors() { ERR_clear_error() }
}

/// An RSA public key parsed from a DER SubjectPublicKeyInfo.
public struct RSAPublicKey: Sendable {
    public let der: [UInt8]
    public let modulus: [UInt8]
    public let publicExponent: [UInt8]
    public let bits: Int
    /// SHA-256 of `der`, and its hex: the wrapping key's fingerprint, computed once per parse
    /// (every manifest, audit record and cache lookup names the key by it).
    public let sha256: [UInt8]
    public let sha256Hex: String

    public enum ParseError: Error, Equatable {
        case notDER
        case trailingBytes
        case notRSA(String)
    }

    /// Parses and checks a DER SubjectPublicKeyInfo. The whole input must be the key. RSA keys are
    /// read by the strict DER reader (`init(derReader:)`; OpenSSL 3's decoder framework costs more
    /// than the wrap itself); what it refuses goes to OpenSSL (`d2i_PUBKEY`), which names what it is.
    public init(spki der: [UInt8]) throws {
        do {
            self = try RSAPublicKey(derReader: der)
        } catch {
            self = try RSAPublicKey(openSSL: der)
        }
    }

    init(der: [UInt8], modulus: [UInt8], publicExponent: [UInt8], bits: Int) {
        self.der = der
        self.modulus = modulus
        self.publicExponent = publicExponent
        self.bits = bits
        sha256 = Digest.sha256(der)
        sha256Hex = sha256.hex
    }

    /// The same with OpenSSL's parser only: the reference the fast reader is fuzzed against.
    public init(openSSL der: [UInt8]) throws {
        defer { SoftwareCrypto.clearErrors() }
        let parsed: (OpaquePointer, Int)? = der.withUnsafeBufferPointer { buf in
            var p: UnsafePointer<UInt8>? = buf.baseAddress
            guard let base = buf.baseAddress, let key = d2i_PUBKEY(nil, &p, buf.count) else { return nil }
            return (key, p! - base)
        }
        guard let (key, used) = parsed else { throw ParseError.notDER }
        defer { EVP_PKEY_free(key) }
        guard used == der.count else { throw ParseError.trailingBytes }
        let id = EVP_PKEY_get_base_id(key)
        guard id == EVP_PKEY_RSA else {
            let name = id == EVP_PKEY_EC ? "an EC key" : id == EVP_PKEY_RSA_PSS ? "an RSA-PSS key" : "not an RSA key (type \(id))"
            throw ParseError.notRSA(name)
        }
        func bn(_ name: String) -> [UInt8] {
            var b: OpaquePointer? = nil
            guard EVP_PKEY_get_bn_param(key, name, &b) == 1, let b else { return [] }
            defer { BN_free(b) }
            var out = [UInt8](repeating: 0, count: Int((BN_num_bits(b) + 7) / 8))
            _ = BN_bn2bin(b, &out)
            return out
        }
        self.init(der: der, modulus: bn("n"), publicExponent: bn("e"), bits: Int(EVP_PKEY_get_bits(key)))
    }
}

/// A throwaway RSA key pair made in software, playing "AWS" in the self-test: its public half goes
/// to the token, and what the token wraps is unwrapped here and compared.
public final class SoftwareRSAKeyPair: @unchecked Sendable {  // an OpenSSL EVP_PKEY, never changed after creation
    private let key: OpaquePointer
    public let publicKey: RSAPublicKey

    public init(bits: Int) throws {
        guard let k = byok_rsa_gen(UInt32(bits)) else { throw ByokSelfTestError("OpenSSL could not generate an RSA-\(bits) key") }
        key = k
        guard let der = SoftwareCrypto.spkiDER(k) else { throw ByokSelfTestError("OpenSSL could not encode the RSA public key") }
        publicKey = try RSAPublicKey(spki: der)
    }

    deinit { EVP_PKEY_free(key) }

    /// RSAES-OAEP decryption with the given OAEP and MGF1 hashes and an empty label.
    public func decryptOAEP(_ ciphertext: [UInt8], hash: HashAlgorithm, mgf: HashAlgorithm) -> [UInt8]? {
        defer { SoftwareCrypto.clearErrors() }
        guard let ctx = EVP_PKEY_CTX_new(key, nil) else { return nil }
        defer { EVP_PKEY_CTX_free(ctx) }
        guard EVP_PKEY_decrypt_init(ctx) == 1,
              byok_evp_pkey_ctx_set_rsa_oaep(ctx, SoftwareCrypto.md(hash), SoftwareCrypto.md(mgf)) == 1 else { return nil }
        var len = 0
        guard EVP_PKEY_decrypt(ctx, nil, &len, ciphertext, ciphertext.count) == 1 else { return nil }
        var out = [UInt8](repeating: 0, count: len)
        guard EVP_PKEY_decrypt(ctx, &out, &len, ciphertext, ciphertext.count) == 1 else { return nil }
        return Array(out.prefix(len))
    }
}

public struct ByokSelfTestError: Error, CustomStringConvertible {
    public let description: String
    public init(_ s: String) { description = s }
}
