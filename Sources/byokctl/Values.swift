import ArgumentParser
import ByokAPI

/// The enumerated values byokctl's options take: offered by shell completion and `--help`, and
/// checked before byokd is asked, with the same error codes byokd would give (a script matching
/// on KEY_SPEC_UNKNOWN sees no difference). Names are AWS's, matched as byokd matches them
/// (case-insensitively, `-` for `_`).
enum Values {
    /// AWS's wrapping algorithms byokd produces (GetParametersForImport `WrappingAlgorithm`), in
    /// byokd's order of preference; the BYOK layer's `WrappingAlgorithm.usable` (a test keeps them equal).
    static let wrappingAlgorithms = ["RSAES_OAEP_SHA_256", "RSAES_OAEP_SHA_1", "RSA_AES_KEY_WRAP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1"]
    /// AWS names byokd knows and refuses with its reason (byokd says why), so they pass through.
    static let refusedAlgorithms = ["RSAES_PKCS1_V1_5", "SM2PKE"]
    static let wrappingKeySpecs = ["RSA_2048", "RSA_3072", "RSA_4096"]
    static let keySpecs = KeySpec.allCases.map(\.rawValue)
    static let awsKeySpecs = KeySpec.allCases.filter(\.isAWS).map(\.rawValue)
    static let keyUsages = ["ENCRYPT_DECRYPT", "SIGN_VERIFY", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT"]
    static let importTypes = ["NEW_KEY_MATERIAL", "EXISTING_KEY_MATERIAL"]
    /// Google Cloud KMS import methods, as `gcloud kms import-jobs create --import-method` spells them.
    static let gcpImportMethods = ["rsa-oaep-3072-sha1-aes-256", "rsa-oaep-4096-sha1-aes-256", "rsa-oaep-3072-sha256-aes-256",
                                   "rsa-oaep-4096-sha256-aes-256", "rsa-oaep-3072-sha256", "rsa-oaep-4096-sha256"]

    static func normalized(_ value: String) -> String { String(value.uppercased().map { $0 == "-" ? "_" : $0 }) }

    /// `value` if it is one of `allowed`, else the error byokd would give for it.
    static func check(_ value: String?, in allowed: [String], option: String, code: ErrorCode, what: String) throws {
        guard let value else { return }
        guard allowed.contains(normalized(value)) else {
            throw ByokError(code, "\(option) \"\(Display.escaped(value))\" is not \(what); the values are \(allowed.joined(separator: ", "))")
        }
    }

    static func checkAlgorithm(_ value: String?, option: String = "--wrapping-algorithm") throws {
        guard let value, !refusedAlgorithms.contains(normalized(value)) else { return }
        try check(value, in: wrappingAlgorithms, option: option, code: .algorithmUnknown, what: "a wrapping algorithm AWS KMS has")
    }
}

extension CompletionKind {
    /// A file of any name (parameters, keys, PIN files).
    static var anyFile: CompletionKind { .file() }
    static var algorithms: CompletionKind { .list(Values.wrappingAlgorithms) }
}
