import ByokAPI

/// Each cloud's rules for which key may be wrapped how, next to AWS's (`ImportRules`), checked
/// before the token is touched.
///
/// Azure Key Vault Premium / Managed HSM — "Bring your own key specification" (Microsoft Learn,
/// checked 2026-11): the KEK is an RSA-HSM key of 2048, 3072 or 4096 bits with key_ops only
/// "import"; the target is wrapped with CKM_RSA_AES_KEY_WRAP, RSA-OAEP with SHA-1 around an
/// ephemeral AES-256 key, then AES key wrap with padding of the target: PKCS#8 for RSA and EC keys,
/// raw bytes for oct keys. Targets: RSA 2048/3072/4096, EC P-256, P-384, P-521, P-256K; oct-HSM
/// AES 128/192/256 on Managed HSM only. No HMAC keys.
///
/// Google Cloud KMS — "Importing a key version into Cloud KMS" and the ImportMethod and
/// CryptoKeyVersionAlgorithm references (checked 2026-11): AES-256 (GOOGLE_SYMMETRIC_ENCRYPTION,
/// 32 bytes), HMAC keys (the hash's length), RSA 2048/3072/4096 and EC P-256, P-384 and secp256k1
/// as PKCS#8; the direct RSA_OAEP_*_SHA256 methods carry at most the OAEP capacity and are not for
/// RSA keys. Import jobs expire after 3 days.
public enum CloudRules {
    public static func check(provider: CloudProvider, spec: KeySpec, algorithm: WrappingAlgorithm, wrappingKeyBits: Int,
                             kmsKeySpec: KeySpec?) throws {
        switch provider {
        case .aws:
            try ImportRules.check(spec: spec, algorithm: algorithm, wrappingKeyBits: wrappingKeyBits, kmsKeySpec: kmsKeySpec)
        case .azure:
            if case .hmac = spec.kind {
                throw ByokError(.keyNotImportable, "Azure Key Vault does not import HMAC keys; \(spec.rawValue) can go to AWS KMS or Google Cloud KMS")
            }
            guard algorithm == .RSA_AES_KEY_WRAP_SHA_1 else {
                throw ByokError(.algorithmNotAllowed, "Azure's .byok format is CKM_RSA_AES_KEY_WRAP with SHA-1 (byokd's RSA_AES_KEY_WRAP_SHA_1), not \(algorithm.rawValue)")
            }
        case .gcp:
            switch spec {
            case .AES_128, .AES_192:
                throw ByokError(.keyNotImportable, "Google Cloud KMS imports 256-bit AES keys only; this key is \(spec.rawValue)")
            case .ECC_NIST_P521:
                throw ByokError(.keyNotImportable, "Google Cloud KMS has no P-521 keys (it imports EC P-256, P-384 and secp256k1)")
            default: break
            }
            let material = ImportRules.material(of: spec)
            if !algorithm.isHybrid {
                if material == .rsaPrivate || material == .eccPrivate {
                    throw ByokError(.algorithmNotAllowed, "a private key leaves a PKCS#11 token only through the RSA_OAEP_*_AES_256 import methods (CKM_RSA_PKCS_OAEP wraps secret keys only); create the import job with one of those")
                }
                if let h = algorithm.hash, spec.maximumMaterialLength > ImportRules.oaepCapacity(modulusBits: wrappingKeyBits, hashLength: h.length) {
                    throw ByokError(.materialTooLarge, "\(spec.rawValue) key material does not fit in RSA-OAEP under an RSA-\(wrappingKeyBits) key; use an RSA_OAEP_*_AES_256 import job")
                }
            }
        }
    }

    /// What the provider calls the wrapping construction, for the manifest.
    public static func methodName(provider: CloudProvider, algorithm: WrappingAlgorithm, gcpMethod: GCPImportMethod?) -> String {
        switch provider {
        case .aws: algorithm.rawValue
        case .azure: "CKM_RSA_AES_KEY_WRAP"
        case .gcp: gcpMethod?.rawValue ?? algorithm.rawValue
        }
    }
}
