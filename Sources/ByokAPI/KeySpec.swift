/// The AWS KMS key specs byokd can generate and import, with AWS's names (CreateKey `KeySpec`).
/// One list for the daemon, the client's help and completion, and the docs; what each is on a
/// token is the BYOK layer's business (`KeySpec.kind`).
public enum KeySpec: String, CaseIterable, Sendable, Codable {
    case SYMMETRIC_DEFAULT
    case HMAC_224, HMAC_256, HMAC_384, HMAC_512
    case RSA_2048, RSA_3072, RSA_4096
    case ECC_NIST_P256, ECC_NIST_P384, ECC_NIST_P521, ECC_SECG_P256K1
}
