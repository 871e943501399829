import PKCS11

/// AWS's wrapping algorithms (GetParametersForImport `WrappingAlgorithm`).
public enum WrappingAlgorithm: String, CaseIterable, Sendable, Codable {
    case RSAES_OAEP_SHA_1, RSAES_OAEP_SHA_256
    case RSA_AES_KEY_WRAP_SHA_1, RSA_AES_KEY_WRAP_SHA_256
    /// Refused: AWS stopped accepting it on October 10, 2023.
    case RSAES_PKCS1_V1_5
    /// Refused: SM2 wrapping exists only in AWS China Regions and needs an SM2 token.
    case SM2PKE

    /// The algorithms byokd can produce, in order of preference.
    public static let usable: [WrappingAlgorithm] = [.RSAES_OAEP_SHA_256, .RSAES_OAEP_SHA_1, .RSA_AES_KEY_WRAP_SHA_256, .RSA_AES_KEY_WRAP_SHA_1]

    /// The OAEP (and MGF1) hash.
    public var hash: HashAlgorithm? {
        switch self {
        case .RSAES_OAEP_SHA_1, .RSA_AES_KEY_WRAP_SHA_1: .sha1
        case .RSAES_OAEP_SHA_256, .RSA_AES_KEY_WRAP_SHA_256: .sha256
        default: nil
        }
    }

    /// OAEP(ephemeral AES-256) || RFC 5649 wrap of the key, rather than OAEP of the key itself.
    public var isHybrid: Bool { self == .RSA_AES_KEY_WRAP_SHA_1 || self == .RSA_AES_KEY_WRAP_SHA_256 }

    /// Why byokd will not produce this algorithm at all, if it will not.
    public var refusal: String? {
        switch self {
        case .RSAES_PKCS1_V1_5: "RSAES_PKCS1_V1_5 is refused: AWS KMS stopped accepting it on October 10, 2023; use RSAES_OAEP_SHA_256"
        case .SM2PKE: "SM2PKE is refused: it exists only in AWS China Regions and byokd wraps with RSA"
        default: nil
        }
    }

    /// Parses an AWS name, case-insensitively, with `-` for `_` tolerated.
    public init?(name: String) {
        let n = name.uppercased().replacingOccurrences(of: "-", with: "_")
        guard let a = WrappingAlgorithm(rawValue: n) else { return nil }
        self = a
    }
}

/// AWS's wrapping key specs (GetParametersForImport `WrappingKeySpec`).
public enum WrappingKeySpec: String, CaseIterable, Sendable, Codable {
    case RSA_2048, RSA_3072, RSA_4096

    public var bits: Int {
        switch self { case .RSA_2048: 2048; case .RSA_3072: 3072; case .RSA_4096: 4096 }
    }

    public init?(bits: Int) {
        guard let s = WrappingKeySpec.allCases.first(where: { $0.bits == bits }) else { return nil }
        self = s
    }
}
