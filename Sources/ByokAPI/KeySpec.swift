/// The key specs byokd can generate and wrap: AWS KMS's names (CreateKey `KeySpec`), plus
/// `AES_128` and `AES_192`, which Azure Managed HSM imports as oct-HSM keys and AWS does not.
/// One list for the daemon, the client's help and completion, and the docs; what each is on a
/// token is the BYOK layer's business (`KeySpec.kind`).
public enum KeySpec: String, CaseIterable, Sendable, Codable {
    case SYMMETRIC_DEFAULT
    case HMAC_224, HMAC_256, HMAC_384, HMAC_512
    case RSA_2048, RSA_3072, RSA_4096
    case ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521, ECC_SECG_P256K1
    case AES_128, AES_192

    /// Whether AWS KMS has this key spec.
    public var isAWS: Bool { self != .AES_128 && self != .AES_192 }
}

/// The clouds byokd wraps keys for, each in its own import format.
public enum CloudProvider: String, Codable, Sendable, CaseIterable {
    /// AWS KMS: EncryptedKeyMaterial + ImportToken for `aws kms import-key-material`.
    case aws
    /// Azure Key Vault Premium and Managed HSM: a `.byok` file for `az keyvault key import`.
    case azure
    /// Google Cloud KMS: a wrapped key for `gcloud kms keys versions import`.
    case gcp
}
