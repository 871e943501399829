import ByokAPI
import Foundation

/// Google Cloud KMS import methods (ImportJob `importMethod`), as byokd produces them on the token.
/// Source: Cloud KMS documentation, "Importing a key version" and the ImportMethod reference
/// (checked 2026-11): the `_AES_256` methods are CKM_RSA_AES_KEY_WRAP (RSA-OAEP of an ephemeral
/// AES-256 key, empty label, then RFC 5649 of the key material); the others are RSA-OAEP of the
/// key material itself.
public enum GCPImportMethod: String, CaseIterable, Sendable, Codable {
    case RSA_OAEP_3072_SHA1_AES_256, RSA_OAEP_4096_SHA1_AES_256
    case RSA_OAEP_3072_SHA256_AES_256, RSA_OAEP_4096_SHA256_AES_256
    case RSA_OAEP_3072_SHA256, RSA_OAEP_4096_SHA256

    /// The same construction under byokd's (AWS) name, whose self-test verdict applies.
    public var algorithm: WrappingAlgorithm {
        switch self {
        case .RSA_OAEP_3072_SHA1_AES_256, .RSA_OAEP_4096_SHA1_AES_256: .RSA_AES_KEY_WRAP_SHA_1
        case .RSA_OAEP_3072_SHA256_AES_256, .RSA_OAEP_4096_SHA256_AES_256: .RSA_AES_KEY_WRAP_SHA_256
        case .RSA_OAEP_3072_SHA256, .RSA_OAEP_4096_SHA256: .RSAES_OAEP_SHA_256
        }
    }

    /// The import job's key size.
    public var bits: Int { rawValue.contains("_3072_") ? 3072 : 4096 }
}

extension ImportParameters {
    /// Azure's key exchange key as `az keyvault key show` prints it: a JSON Web Key under "key"
    /// (`kid`, `kty` RSA or RSA-HSM, `n`, `e` base64url, `key_ops` only "import").
    public static func parse(azureKeyJSON data: [UInt8]) throws -> ImportParameters {
        guard data.count <= maxInput, let obj = try? JSONSerialization.jsonObject(with: Data(data)) as? [String: Any] else {
            throw ByokError(.paramsInvalid, "the Azure key file is not the JSON object `az keyvault key show` prints")
        }
        let jwk = (obj["key"] as? [String: Any]) ?? obj
        guard let kid = jwk["kid"] as? String, !kid.isEmpty else {
            throw ByokError(.paramsInvalid, "the Azure key JSON has no key.kid; expected the output of `az keyvault key show`")
        }
        guard let kty = jwk["kty"] as? String, kty == "RSA" || kty == "RSA-HSM" else {
            throw ByokError(.wrappingKeyNotRSA, "the Azure key \(Display.escaped(kid)) is \(Display.escaped(jwk["kty"] as? String ?? "of no type")); a key exchange key is RSA-HSM")
        }
        if let ops = jwk["key_ops"] as? [String], ops != ["import"] {
            throw ByokError(.paramsInvalid, "the Azure key \(Display.escaped(kid)) allows \(ops.map(Display.escaped).joined(separator: ", ")); a key exchange key (KEK) allows only \"import\" — create one with `az keyvault key create --kty RSA-HSM --ops import`")
        }
        guard let n = (jwk["n"] as? String).flatMap(base64URL), let e = (jwk["e"] as? String).flatMap(base64URL) else {
            throw ByokError(.paramsEncoding, "the Azure key \(Display.escaped(kid)) lacks a readable n or e (base64url)")
        }
        var p = ImportParameters(publicKeyDER: DER.rsaSPKI(modulus: n, exponent: e), importToken: [], validTo: nil, source: "Azure key JSON")
        p.provider = .azure
        p.azureKid = kid
        p.wrappingAlgorithm = .RSA_AES_KEY_WRAP_SHA_1
        return p
    }

    /// The KEK as `az keyvault key download` writes it (PEM or DER), with its key identifier.
    public static func parse(azureKEK publicKey: [UInt8], kid: String) throws -> ImportParameters {
        guard !kid.isEmpty else { throw ByokError(.paramsInvalid, "an Azure KEK needs its key identifier: give --kid https://VAULT.vault.azure.net/keys/NAME/VERSION") }
        var p = ImportParameters(publicKeyDER: try decodeFlexible(publicKey, what: "the Azure KEK file"), importToken: [], source: "Azure KEK file")
        p.provider = .azure
        p.azureKid = kid
        p.wrappingAlgorithm = .RSA_AES_KEY_WRAP_SHA_1
        return p
    }

    /// A Google Cloud import job as `gcloud kms import-jobs describe --format=json` prints it:
    /// name, importMethod, state (must be ACTIVE), expireTime, publicKey.pem.
    public static func parse(gcpImportJobJSON data: [UInt8]) throws -> ImportParameters {
        guard data.count <= maxInput, let obj = try? JSONSerialization.jsonObject(with: Data(data)) as? [String: Any] else {
            throw ByokError(.paramsInvalid, "the import job file is not the JSON object `gcloud kms import-jobs describe --format=json` prints")
        }
        guard let name = obj["name"] as? String, name.contains("/importJobs/") else {
            throw ByokError(.paramsInvalid, "the import job JSON has no name (projects/…/importJobs/…)")
        }
        if let state = obj["state"] as? String, state != "ACTIVE" {
            throw ByokError(state == "EXPIRED" ? .paramsExpired : .paramsInvalid,
                            "import job \(Display.escaped(name)) is \(Display.escaped(state)), not ACTIVE; \(state == "PENDING_GENERATION" ? "wait until Cloud KMS has made its key" : "create a new import job (they expire after 3 days)")")
        }
        guard let pem = (obj["publicKey"] as? [String: Any])?["pem"] as? String else {
            throw ByokError(.paramsInvalid, "import job \(Display.escaped(name)) has no publicKey.pem yet")
        }
        var p = try parse(gcpPublicKey: Array(pem.utf8), importJob: name, method: obj["importMethod"] as? String ?? "")
        p.source = "gcloud import job JSON"
        if let t = obj["expireTime"] as? String {
            guard let d = Timestamp.parse(t) else { throw ByokError(.paramsInvalid, "expireTime \"\(Display.escaped(t))\" is not an RFC 3339 time") }
            p.validTo = d
        }
        return p
    }

    /// The import job's public key (PEM) with its name and import method.
    public static func parse(gcpPublicKey publicKey: [UInt8], importJob: String, method: String) throws -> ImportParameters {
        guard let m = GCPImportMethod(rawValue: method.uppercased()) else {
            throw ByokError(.algorithmUnknown, "unknown Cloud KMS import method \"\(Display.escaped(method))\"; the methods are \(GCPImportMethod.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard importJob.hasPrefix("projects/"), importJob.contains("/importJobs/") else {
            throw ByokError(.paramsInvalid, "the import job name must be its resource name: projects/P/locations/L/keyRings/R/importJobs/J")
        }
        var p = ImportParameters(publicKeyDER: try decodeFlexible(publicKey, what: "the import job's public key"), importToken: [], source: "import job files")
        p.provider = .gcp
        p.gcpImportJob = importJob
        p.gcpImportMethod = m
        p.wrappingAlgorithm = m.algorithm
        p.wrappingKeySpec = WrappingKeySpec(bits: m.bits)
        return p
    }

    static func base64URL(_ s: String) -> [UInt8]? {
        var t = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        t += String(repeating: "=", count: (4 - t.count % 4) % 4)
        return Data(base64Encoded: t).map { [UInt8]($0) }
    }
}
