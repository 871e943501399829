import ByokAPI

/// AWS's rules for which key material may be wrapped how, checked before the token is touched.
///
/// Source: AWS KMS API Reference, GetParametersForImport `WrappingAlgorithm`, and the Developer
/// Guide's "Step 3: Encrypt the key material" (checked 2026-11):
/// - RSA_AES_KEY_WRAP_SHA_256 / _SHA_1: RSA and ECC private key material.
/// - RSAES_OAEP_SHA_256 / _SHA_1: all key material except RSA private keys; not ECC_NIST_P521 under
///   an RSA_2048 wrapping key (RSAES-OAEP carries at most k − 2·hLen − 2 bytes).
/// - RSAES_PKCS1_V1_5: not accepted since October 10, 2023.
/// byokd adds one rule of PKCS#11's: CKM_RSA_PKCS_OAEP wraps secret keys only, so a private key
/// leaves the token only through the RSA_AES_KEY_WRAP construction.
public enum ImportRules {
    public enum Material: String, Sendable { case symmetric, hmac, rsaPrivate = "RSA private key", eccPrivate = "ECC private key" }

    /// The one table: material → algorithms AWS accepts for it, with byokd's on-token constraint.
    public static let table: [Material: (aws: Set<WrappingAlgorithm>, onToken: Set<WrappingAlgorithm>)] = [
        .symmetric: ([.RSAES_OAEP_SHA_1, .RSAES_OAEP_SHA_256], [.RSAES_OAEP_SHA_1, .RSAES_OAEP_SHA_256]),
        .hmac: ([.RSAES_OAEP_SHA_1, .RSAES_OAEP_SHA_256], [.RSAES_OAEP_SHA_1, .RSAES_OAEP_SHA_256]),
        .rsaPrivate: ([.RSA_AES_KEY_WRAP_SHA_1, .RSA_AES_KEY_WRAP_SHA_256], [.RSA_AES_KEY_WRAP_SHA_1, .RSA_AES_KEY_WRAP_SHA_256]),
        .eccPrivate: ([.RSAES_OAEP_SHA_1, .RSAES_OAEP_SHA_256, .RSA_AES_KEY_WRAP_SHA_1, .RSA_AES_KEY_WRAP_SHA_256],
                      [.RSA_AES_KEY_WRAP_SHA_1, .RSA_AES_KEY_WRAP_SHA_256]),
    ]

    public static func material(of spec: KeySpec) -> Material {
        switch spec.kind {
        case .aes: .symmetric
        case .hmac: .hmac
        case .rsa: .rsaPrivate
        case .ec: .eccPrivate
        }
    }

    /// The largest message RSAES-OAEP carries under a k-byte modulus: k − 2·hLen − 2.
    public static func oaepCapacity(modulusBits: Int, hashLength: Int) -> Int { modulusBits / 8 - 2 * hashLength - 2 }

    /// The algorithm byokd picks when neither the operator nor the parameters name one.
    public static func preferred(for spec: KeySpec) -> [WrappingAlgorithm] {
        let allowed = table[material(of: spec)]!.onToken
        return WrappingAlgorithm.usable.filter { allowed.contains($0) }
    }

    /// Throws the reason a wrap of `spec` with `algorithm` under a `wrappingKeyBits` key would fail.
    public static func check(spec: KeySpec, algorithm: WrappingAlgorithm, wrappingKeyBits: Int, kmsKeySpec: KeySpec?) throws {
        if let refusal = algorithm.refusal { throw ByokError(.algorithmRefused, refusal) }
        guard spec.isAWS else {
            throw ByokError(.keyNotImportable, "AWS KMS imports only 256-bit symmetric key material (SYMMETRIC_DEFAULT); this key is \(spec.rawValue) — wrap it for Azure Managed HSM (--for azure) instead")
        }
        if let kms = kmsKeySpec, kms != spec {
            throw ByokError(.keySpecMismatch, "the token key is \(spec.rawValue) but the KMS key is \(kms.rawValue); AWS imports key material only into a KMS key of the same key spec")
        }
        let m = material(of: spec)
        let rule = table[m]!
        guard rule.aws.contains(algorithm) else {
            let ok = WrappingAlgorithm.usable.filter { rule.aws.contains($0) }.map(\.rawValue).joined(separator: " or ")
            throw ByokError(.algorithmNotAllowed, "AWS KMS does not accept \(spec.rawValue) (\(m.rawValue)) wrapped with \(algorithm.rawValue); use \(ok)")
        }
        if !algorithm.isHybrid, let h = algorithm.hash {
            let cap = oaepCapacity(modulusBits: wrappingKeyBits, hashLength: h.length)
            if spec.maximumMaterialLength > cap {
                throw ByokError(.materialTooLarge, "\(spec.rawValue) key material (up to \(spec.maximumMaterialLength) bytes) does not fit in \(algorithm.rawValue) under an RSA-\(wrappingKeyBits) wrapping key, which carries at most \(cap) bytes; use RSA_AES_KEY_WRAP_SHA_256 or a larger wrapping key")
            }
        }
        guard rule.onToken.contains(algorithm) else {
            let ok = WrappingAlgorithm.usable.filter { rule.onToken.contains($0) }.map(\.rawValue).joined(separator: " or ")
            throw ByokError(.algorithmNotAllowed, "\(m == .eccPrivate ? "an" : "a") \(m.rawValue) leaves a PKCS#11 token only through RSA_AES_KEY_WRAP (CKM_RSA_PKCS_OAEP wraps secret keys only); get parameters for \(ok)")
        }
    }
}
