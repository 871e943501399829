/// Stable error codes. Clients and scripts match on these; messages may change, codes do not.
///
/// Each code belongs to a category, which decides `byokctl`'s exit code:
/// 2 bad input or usage, 3 HSM or token, 4 denied, 5 daemon unreachable, 6 AWS KMS, 1 anything else.
public enum ErrorCode: String, Codable, Sendable, CaseIterable {
    // Requests and input files (exit 2)
    case badRequest = "BAD_REQUEST"
    case requestTooLarge = "REQUEST_TOO_LARGE"
    case requestTimeout = "REQUEST_TIMEOUT"
    case notFound = "NOT_FOUND"
    case paramsInvalid = "PARAMS_INVALID"
    case paramsEncoding = "PARAMS_ENCODING"
    case paramsDER = "PARAMS_DER"
    case paramsExpired = "PARAMS_EXPIRED"
    case paramsZip = "PARAMS_ZIP"
    case wrappingKeyNotRSA = "WRAPPING_KEY_NOT_RSA"
    case wrappingKeySize = "WRAPPING_KEY_SIZE"
    case wrappingKeyExponent = "WRAPPING_KEY_EXPONENT"
    case wrappingKeyModulus = "WRAPPING_KEY_MODULUS"
    case wrappingKeyUnconfirmed = "WRAPPING_KEY_UNCONFIRMED"
    case keyLabelInvalid = "KEY_LABEL_INVALID"
    case algorithmUnknown = "ALGORITHM_UNKNOWN"
    case algorithmMissing = "ALGORITHM_MISSING"
    case algorithmRefused = "ALGORITHM_REFUSED"
    case algorithmConflict = "ALGORITHM_CONFLICT"
    case algorithmNotAllowed = "ALGORITHM_NOT_ALLOWED_FOR_KEY"
    case materialTooLarge = "MATERIAL_TOO_LARGE_FOR_OAEP"
    case keySpecUnknown = "KEY_SPEC_UNKNOWN"
    case keySpecMismatch = "KEY_SPEC_MISMATCH"
    case keyNotFound = "KEY_NOT_FOUND"
    case keyAmbiguous = "KEY_AMBIGUOUS"
    case keyExists = "KEY_EXISTS"
    case keyNotImportable = "KEY_NOT_IMPORTABLE"
    /// The key is byokd's own (its audit MAC key): never wrapped, imported or listed as importable.
    case keyReserved = "KEY_RESERVED"
    case outputExists = "OUTPUT_EXISTS"
    case outputUnwritable = "OUTPUT_UNWRITABLE"
    case inputUnreadable = "INPUT_UNREADABLE"
    case approvalNotFound = "APPROVAL_NOT_FOUND"
    case auditChainBroken = "AUDIT_CHAIN_BROKEN"
    // byokd's start-up: the places it must write (it exits 1; byokctl never sees these)
    case stateDirUnusable = "STATE_DIR_UNUSABLE"
    case socketUnavailable = "SOCKET_UNAVAILABLE"
    // The token (exit 3)
    case tokenUnavailable = "TOKEN_UNAVAILABLE"
    case tokenError = "TOKEN_ERROR"
    case tokenLoginFailed = "TOKEN_LOGIN_FAILED"
    case tokenLacksAlgorithm = "TOKEN_LACKS_ALGORITHM"
    case keyNotExtractable = "KEY_NOT_EXTRACTABLE"
    case trustedWrappingUnavailable = "TRUSTED_WRAPPING_UNAVAILABLE"
    case busy = "BUSY"
    /// The caller's user holds `maxConnectionsPerUser` connections already.
    case connectionLimit = "CONNECTION_LIMIT"
    /// Too many requests wait for approval (`maxPendingApprovalsPerUser`, `maxPendingApprovals`).
    case pendingLimit = "PENDING_LIMIT"
    // AWS KMS (exit 6; access denied is exit 4)
    case kmsNotConfigured = "KMS_NOT_CONFIGURED"
    case kmsUnreachable = "KMS_UNREACHABLE"
    case kmsTimeout = "KMS_TIMEOUT"
    case kmsInvalidCiphertext = "KMS_INVALID_CIPHERTEXT"
    case kmsExpiredImportToken = "KMS_EXPIRED_IMPORT_TOKEN"
    case kmsInvalidImportToken = "KMS_INVALID_IMPORT_TOKEN"
    case kmsIncorrectKeyMaterial = "KMS_INCORRECT_KEY_MATERIAL"
    case kmsInvalidState = "KMS_INVALID_STATE"
    case kmsNotFound = "KMS_NOT_FOUND"
    case kmsAccessDenied = "KMS_ACCESS_DENIED"
    case kmsError = "KMS_ERROR"
    // Authorization (exit 4)
    case denied = "DENIED"
    case approvalExpired = "APPROVAL_EXPIRED"
    case wrappingKeySourceRefused = "WRAPPING_KEY_SOURCE_REFUSED"
    // The daemon cannot be reached (exit 5)
    case daemonUnreachable = "DAEMON_UNREACHABLE"
    // Anything else (exit 1)
    /// byokd could not write (or sync) its audit log, e.g. a full disk: nothing was done, or the
    /// answer was withheld.
    case auditLogFailed = "AUDIT_LOG_FAILED"
    case `internal` = "INTERNAL"

    public enum Category: Sendable { case input, token, denied, unreachable, kms, other }

    public var category: Category {
        switch self {
        case .tokenUnavailable, .tokenError, .tokenLoginFailed, .tokenLacksAlgorithm, .keyNotExtractable, .busy, .trustedWrappingUnavailable, .connectionLimit, .pendingLimit: .token
        case .denied, .approvalExpired, .kmsAccessDenied, .wrappingKeySourceRefused: .denied
        case .kmsNotConfigured, .kmsUnreachable, .kmsTimeout, .kmsInvalidCiphertext, .kmsExpiredImportToken, .kmsInvalidImportToken,
             .kmsIncorrectKeyMaterial, .kmsInvalidState, .kmsNotFound, .kmsError: .kms
        case .daemonUnreachable: .unreachable
        case .internal, .auditLogFailed: .other
        default: .input
        }
    }

    /// `byokctl`'s exit code for this error.
    public var exitCode: Int32 {
        switch category { case .input: 2; case .token: 3; case .denied: 4; case .unreachable: 5; case .kms: 6; case .other: 1 }
    }

    /// The HTTP status the daemon answers with.
    public var httpStatus: Int {
        switch self {
        case .requestTooLarge: 413
        case .requestTimeout: 408
        case .notFound, .keyNotFound, .approvalNotFound: 404
        case .keyExists, .outputExists: 409
        case .denied, .approvalExpired, .wrappingKeySourceRefused: 403
        case .busy, .tokenUnavailable, .connectionLimit, .auditLogFailed: 503
        case .pendingLimit: 429
        case .internal: 500
        default: category == .token || category == .kms ? 502 : 400
        }
    }
}

/// An error with a stable code and a sentence an operator understands.
public struct ByokError: Error, CustomStringConvertible, Sendable, Equatable {
    public let code: ErrorCode
    public let message: String
    public init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }
    public var description: String { "\(message) [\(code.rawValue)]" }
}
