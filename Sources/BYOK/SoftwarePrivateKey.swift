import COpenSSL
import Foundation
import PKCS11

/// A throwaway private key made in software for the self-test. Its PKCS#8 is known here, so a wrap
/// of it made on the token can be unwrapped in software and checked byte for byte — which is how
/// byokd proves a route byte-exact without ever reading a key's CKA_VALUE. No customer key is one.
public final class SoftwarePrivateKey: @unchecked Sendable {  // an OpenSSL EVP_PKEY, never changed after creation
    public enum Kind: Sendable, Equatable, CustomStringConvertible {
        case rsa(bits: Int)
        /// OpenSSL's curve name, e.g. "P-256".
        case ec(curve: String)
        public var description: String {
            switch self { case .rsa(let b): "RSA-\(b)"; case .ec(let c): "EC \(c)" }
        }
    }

    private let key: OpaquePointer
    public let kind: Kind
    /// The key as DER PKCS#8 PrivateKeyInfo, as OpenSSL encodes it.
    public let pkcs8: [UInt8]
    /// An EC key's public point, uncompressed (04 || X || Y); nil for RSA.
    public var publicPoint: [UInt8]? {
        guard case .ec = kind else { return nil }
        var len = 0
        guard EVP_PKEY_get_octet_string_param(key, "pub", nil, 0, &len) == 1, len > 0 else { return nil }
        var out = [UInt8](repeating: 0, count: len)
        guard EVP_PKEY_get_octet_string_param(key, "pub", &out, len, &len) == 1 else { return nil }
        return Array(out.prefix(len))
    }

    /// Makes a key whose PKCS#8 length is not a multiple of 8, so a token that pads before the
    /// RFC 5649 wrap shows it (tries a few RSA keys; an EC P-256 PKCS#8 is never a multiple of 8).
    public init(_ kind: Kind) throws {
        var made: (OpaquePointer, [UInt8])?
        for _ in 0..<16 {
            let k: OpaquePointer?
            switch kind {
            case .rsa(let bits): k = byok_rsa_gen(UInt32(bits))
            case .ec(let curve): k = byok_ec_gen(curve)
            }
            guard let k else { break }
            guard let der = SoftwarePrivateKey.encode(k) else { EVP_PKEY_free(k); break }
            if der.count % 8 != 0 { made = (k, der); break }
            EVP_PKEY_free(k)
        }
        SoftwareCrypto.clearErrors()
        guard let (k, der) = made else { throw ByokSelfTestError("OpenSSL could not make a throwaway \(kind) key") }
        key = k
        self.kind = kind
        pkcs8 = der
    }

    deinit { EVP_PKEY_free(key) }

    static func encode(_ key: OpaquePointer) -> [UInt8]? {
        var out: UnsafeMutablePointer<UInt8>?
        let n = byok_pkcs8_der(key, &out)
        guard n > 0, let out else { return nil }
        defer { byok_free(out) }
        return Array(UnsafeBufferPointer(start: out, count: Int(n)))
    }

    /// Why `material` is not exactly this key as AWS takes it — one DER PKCS#8 PrivateKeyInfo with
    /// nothing after it, holding the same private key — or nil when it is.
    public func mismatch(_ material: [UInt8]) -> String? {
        defer { SoftwareCrypto.clearErrors() }
        guard let length = DER.firstElementLength(material), material.first == 0x30 else {
            return "the unwrapped \(kind) key (\(material.count) bytes) does not start with a DER structure"
        }
        if length != material.count {
            let extra = material[length...]
            let zeros = extra.allSatisfy { $0 == 0 } ? " zero" : ""
            return "the unwrapped \(kind) key is \(material.count) bytes: its \(length)-byte PKCS#8 followed by \(extra.count) extra\(zeros) byte\(extra.count == 1 ? "" : "s") (the token pads the key before the RFC 5649 wrap, so the length AWS reads is wrong)"
        }
        var used = 0
        guard let parsed = material.withUnsafeBufferPointer({ byok_pkcs8_parse($0.baseAddress, $0.count, &used) }) else {
            return "the unwrapped \(kind) key is no PKCS#8 PrivateKeyInfo OpenSSL can read"
        }
        defer { EVP_PKEY_free(parsed) }
        guard used == material.count else { return "the unwrapped \(kind) key has \(material.count - used) bytes after its PKCS#8" }
        let privateName = { if case .rsa = kind { return "d" } else { return "priv" } }()
        guard EVP_PKEY_eq(parsed, key) == 1, let a = bn(parsed, privateName), let b = bn(key, privateName), a == b else {
            return "the unwrapped \(kind) key is another key than the one placed on the token"
        }
        return nil
    }

    private func bn(_ k: OpaquePointer, _ name: String) -> [UInt8]? {
        var b: OpaquePointer?
        guard EVP_PKEY_get_bn_param(k, name, &b) == 1, let b else { return nil }
        defer { BN_clear_free(b) }
        var out = [UInt8](repeating: 0, count: Int((BN_num_bits(b) + 7) / 8))
        _ = BN_bn2bin(b, &out)
        return out
    }
}

extension SoftwareCrypto {
    /// RFC 5649 AES key wrap with padding (`id-aes256-wrap-pad`), for placing the self-test's
    /// throwaway keys on the token.
    public static func aesWrapPad(kek: [UInt8], plaintext: [UInt8]) -> [UInt8]? {
        guard let ctx = EVP_CIPHER_CTX_new() else { return nil }
        defer { EVP_CIPHER_CTX_free(ctx) }
        let cipher: OpaquePointer? = switch kek.count { case 16: EVP_aes_128_wrap_pad(); case 24: EVP_aes_192_wrap_pad(); case 32: EVP_aes_256_wrap_pad(); default: nil }
        guard let cipher else { return nil }
        EVP_CIPHER_CTX_set_flags(ctx, Int32(EVP_CIPHER_CTX_FLAG_WRAP_ALLOW))
        guard EVP_EncryptInit_ex(ctx, cipher, nil, kek, nil) == 1 else { return nil }
        var out = [UInt8](repeating: 0, count: plaintext.count + 32)
        var n: Int32 = 0, m: Int32 = 0
        guard EVP_EncryptUpdate(ctx, &out, &n, plaintext, Int32(plaintext.count)) == 1 else { return nil }
        let ok = out.withUnsafeMutableBufferPointer { EVP_EncryptFinal_ex(ctx, $0.baseAddress! + Int(n), &m) }
        guard ok == 1 else { return nil }
        return Array(out.prefix(Int(n + m)))
    }

    /// RSAES-OAEP encryption under a public key (OAEP and MGF1 with `hash`, empty label).
    public static func encryptOAEP(_ plaintext: [UInt8], to publicKey: RSAPublicKey, hash: HashAlgorithm) -> [UInt8]? {
        defer { clearErrors() }
        let der = publicKey.der
        guard let key = der.withUnsafeBufferPointer({ buf -> OpaquePointer? in
            var p: UnsafePointer<UInt8>? = buf.baseAddress
            return d2i_PUBKEY(nil, &p, buf.count)
        }) else { return nil }
        defer { EVP_PKEY_free(key) }
        guard let ctx = EVP_PKEY_CTX_new(key, nil) else { return nil }
        defer { EVP_PKEY_CTX_free(ctx) }
        guard EVP_PKEY_encrypt_init(ctx) == 1, byok_evp_pkey_ctx_set_rsa_oaep(ctx, md(hash), md(hash)) == 1 else { return nil }
        var len = 0
        guard EVP_PKEY_encrypt(ctx, nil, &len, plaintext, plaintext.count) == 1 else { return nil }
        var out = [UInt8](repeating: 0, count: len)
        guard EVP_PKEY_encrypt(ctx, &out, &len, plaintext, plaintext.count) == 1 else { return nil }
        return Array(out.prefix(len))
    }

    /// Random bytes from OpenSSL's DRBG (a throwaway transport key of the self-test).
    public static func randomBytes(_ n: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: n)
        return RAND_bytes(&out, Int32(n)) == 1 ? out : nil
    }
}
