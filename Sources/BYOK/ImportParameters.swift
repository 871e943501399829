import ByokAPI
import Foundation

/// A wrapping public key and import token from AWS KMS (GetParametersForImport), with what the
/// operator's files say about them. Parsing checks encodings; `resolve` checks the rest.
public struct ImportParameters: Sendable {
    /// The wrapping public key, DER SubjectPublicKeyInfo.
    public var publicKeyDER: [UInt8]
    /// The import token, raw bytes, passed to AWS untouched.
    public var importToken: [UInt8]
    public var kmsKeyId: String?
    public var validTo: Date?
    /// The algorithm and specs the parameters were requested for, when the files say (ZIP README).
    public var wrappingAlgorithm: WrappingAlgorithm?
    public var wrappingKeySpec: WrappingKeySpec?
    public var kmsKeySpec: KeySpec?
    /// Where they came from, for messages: "AWS CLI JSON", "ImportParameters.zip", "files".
    public var source: String

    public init(publicKeyDER: [UInt8], importToken: [UInt8], kmsKeyId: String? = nil, validTo: Date? = nil,
                wrappingAlgorithm: WrappingAlgorithm? = nil, wrappingKeySpec: WrappingKeySpec? = nil,
                kmsKeySpec: KeySpec? = nil, source: String) {
        self.publicKeyDER = publicKeyDER; self.importToken = importToken; self.kmsKeyId = kmsKeyId
        self.validTo = validTo; self.wrappingAlgorithm = wrappingAlgorithm; self.wrappingKeySpec = wrappingKeySpec
        self.kmsKeySpec = kmsKeySpec; self.source = source
    }

    /// Parameters checked and ready for the token.
    public struct Resolved: Sendable {
        public let parameters: ImportParameters
        public let wrappingKey: RSAPublicKey
        public let algorithm: WrappingAlgorithm
        public var wrappingKeySpec: WrappingKeySpec { WrappingKeySpec(bits: wrappingKey.bits)! }
    }

    /// Checks, before the token is touched: an RSA SubjectPublicKeyInfo of 2048, 3072 or 4096 bits;
    /// not expired; one wrapping algorithm, from `requested` or from the files, and not both differing.
    public func resolve(requested: String?, now: Date = Date()) throws -> Resolved {
        let key: RSAPublicKey
        do {
            key = try RSAPublicKey(spki: publicKeyDER)
        } catch RSAPublicKey.ParseError.notRSA(let what) {
            throw ByokError(.wrappingKeyNotRSA, "the wrapping public key is \(what); AWS KMS wrapping keys are RSA (RSA_2048, RSA_3072 or RSA_4096) — is this the right file?")
        } catch RSAPublicKey.ParseError.trailingBytes {
            throw ByokError(.paramsDER, "the wrapping public key has extra bytes after its DER SubjectPublicKeyInfo; the file looks damaged")
        } catch {
            throw ByokError(.paramsDER, "the wrapping public key is not a DER SubjectPublicKeyInfo (\(publicKeyDER.count) bytes); the file may be truncated or not the PublicKey from AWS")
        }
        guard WrappingKeySpec(bits: key.bits) != nil else {
            throw ByokError(.wrappingKeySize, "the wrapping public key is RSA-\(key.bits); AWS KMS wrapping keys are RSA_2048, RSA_3072 or RSA_4096 — is this the right file?")
        }
        if let spec = wrappingKeySpec, spec.bits != key.bits {
            throw ByokError(.paramsInvalid, "the parameters say the wrapping key is \(spec.rawValue) but the public key is RSA-\(key.bits); the files do not belong together")
        }
        if importToken.isEmpty {
            throw ByokError(.paramsInvalid, "the import token is empty")
        }
        if let validTo, validTo <= now {
            let ago = Int(now.timeIntervalSince(validTo))
            let agoText = ago >= 7200 ? "\(ago / 3600) hours ago" : ago >= 120 ? "\(ago / 60) minutes ago" : "\(ago) seconds ago"
            throw ByokError(.paramsExpired, "the import parameters expired at \(Timestamp.string(validTo)) (\(agoText)); AWS keeps a wrapping key and import token valid for 24 hours — download new ones with `aws kms get-parameters-for-import`")
        }
        var chosen = wrappingAlgorithm
        if let requested, !requested.isEmpty {
            guard let r = WrappingAlgorithm(name: requested) else {
                throw ByokError(.algorithmUnknown, "unknown wrapping algorithm \"\(requested)\"; AWS's names are \(WrappingAlgorithm.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if let known = wrappingAlgorithm, known != r {
                throw ByokError(.algorithmConflict, "--wrapping-algorithm says \(r.rawValue) but the import parameters were issued for \(known.rawValue); a wrapping key and import token work only with the algorithm they were requested for")
            }
            chosen = r
        }
        guard let algorithm = chosen else {
            throw ByokError(.algorithmMissing, "the import parameters do not say which wrapping algorithm they were requested for; give the one you passed to get-parameters-for-import with --wrapping-algorithm (e.g. RSAES_OAEP_SHA_256)")
        }
        if let refusal = algorithm.refusal { throw ByokError(.algorithmRefused, refusal) }
        return Resolved(parameters: self, wrappingKey: key, algorithm: algorithm)
    }
}
