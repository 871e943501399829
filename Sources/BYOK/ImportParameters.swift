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
    /// The cloud they are for (AWS unless they came from Azure or Google Cloud).
    public var provider: CloudProvider = .aws
    /// Azure: the KEK's key identifier (`kid`), which the `.byok` file names.
    public var azureKid: String?
    /// Google Cloud: the import job's resource name and import method.
    public var gcpImportJob: String?
    public var gcpImportMethod: GCPImportMethod?

    public init(publicKeyDER: [UInt8], importToken: [UInt8], kmsKeyId: String? = nil, validTo: Date? = nil,
                wrappingAlgorithm: WrappingAlgorithm? = nil, wrappingKeySpec: WrappingKeySpec? = nil,
                kmsKeySpec: KeySpec? = nil, source: String) {
        self.publicKeyDER = publicKeyDER; self.importToken = importToken; self.kmsKeyId = kmsKeyId
        self.validTo = validTo; self.wrappingAlgorithm = wrappingAlgorithm; self.wrappingKeySpec = wrappingKeySpec
        self.kmsKeySpec = kmsKeySpec; self.source = source
    }

    /// A wrapping key must be what AWS KMS issues, or the "wrap" can hand the key material to
    /// anyone: with exponent 1 the ciphertext is the padded plaintext, with 3 and a short message
    /// an integer cube root recovers it, and a modulus with a small factor is no RSA key at all.
    /// AWS's wrapping keys (GetParametersForImport) are RSA_2048/3072/4096 with exponent 65537,
    /// the exponent of every AWS KMS RSA key and FIPS 186-5's usual choice; nothing else is
    /// accepted (docs/DESIGN.md, "Wrapping keys").
    static func checkIsWhatAWSIssues(_ key: RSAPublicKey) throws {
        let e = Array(key.publicExponent.drop { $0 == 0 })
        guard e == [0x01, 0x00, 0x01] else {
            let shown = e.count <= 8 ? String(e.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }) : "a \(e.count * 8)-bit number"
            throw ByokError(.wrappingKeyExponent, "the wrapping public key's exponent is \(shown), but AWS KMS wrapping keys use 65537; byokd refuses it, because a wrap under such a key may be readable without any private key — download the parameters from AWS KMS again")
        }
        if let p = smallFactor(of: key.modulus) {
            throw ByokError(.wrappingKeyModulus, "the wrapping public key's modulus \(p == 2 ? "is even" : "is divisible by \(p)"), so it is no RSA key AWS KMS would issue; byokd refuses it — download the parameters from AWS KMS again")
        }
    }

    /// The least prime below 1,000 that divides `n` (big-endian bytes), if any. Primes are taken
    /// in groups whose product stays below 2^55, so one pass over `n` checks a whole group.
    static func smallFactor(of n: [UInt8]) -> Int? {
        for (product, primes) in primeGroups {
            var r: UInt64 = 0
            for b in n { r = (r << 8 | UInt64(b)) % product }
            if let p = primes.first(where: { r % UInt64($0) == 0 }) { return p }
        }
        return nil
    }

    static let primeGroups: [(UInt64, [Int])] = {
        let primes = (2..<1000).filter { n in (2..<n).prefix { $0 * $0 <= n }.allSatisfy { n % $0 != 0 } }
        var groups: [(UInt64, [Int])] = []
        for p in primes {
            if let last = groups.last, last.0.multipliedReportingOverflow(by: UInt64(p)).partialValue < 1 << 55,
               !last.0.multipliedReportingOverflow(by: UInt64(p)).overflow {
                groups[groups.count - 1] = (last.0 * UInt64(p), last.1 + [p])
            } else {
                groups.append((UInt64(p), [p]))
            }
        }
        return groups
    }()

    /// Parameters checked and ready for the token.
    public struct Resolved: Sendable {
        public let parameters: ImportParameters
        public let wrappingKey: RSAPublicKey
        public let algorithm: WrappingAlgorithm
        public var wrappingKeySpec: WrappingKeySpec { WrappingKeySpec(bits: wrappingKey.bits)! }
        /// What every wrap's answer repeats, computed once per distinct parameters (byokd keeps
        /// resolved parameters): the import token's SHA-256 (hex) and base64.
        public let importTokenSha256: String
        public let importTokenBase64: String

        init(parameters: ImportParameters, wrappingKey: RSAPublicKey, algorithm: WrappingAlgorithm) {
            self.parameters = parameters
            self.wrappingKey = wrappingKey
            self.algorithm = algorithm
            importTokenSha256 = Digest.sha256(parameters.importToken).hex
            importTokenBase64 = Data(parameters.importToken).base64EncodedString()
        }
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
        try Self.checkIsWhatAWSIssues(key)
        if let spec = wrappingKeySpec, spec.bits != key.bits {
            throw ByokError(.paramsInvalid, "the parameters say the wrapping key is \(spec.rawValue) but the public key is RSA-\(key.bits); the files do not belong together")
        }
        if importToken.isEmpty && provider == .aws {
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
