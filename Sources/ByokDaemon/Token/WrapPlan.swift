import BYOK
import ByokAPI
import Foundation

/// A wrap checked before anyone approves it: the token key it names (as found now), the parameters
/// resolved, and where the wrapping key came from. An approved or trusted wrap runs exactly this
/// plan, so the approver's view and what happens are the same thing.
struct WrapPlan: Sendable {
    let keyReference: String
    let key: KeyInfo
    let resolved: ImportParameters.Resolved
    let source: WrappingKeySource
    /// The KMS key id as the request gave it.
    let kmsKeyIdAsGiven: String?
    /// Online mode: what ImportKeyMaterial takes besides the wrapped material.
    let kmsImport: KMSImportRequest?

    var wrappingKeySha256: String { resolved.wrappingKey.sha256Hex }

    /// The plan as the approver or Security Officer sees it; every string escaped.
    func describe(into p: inout PendingRequest) {
        p.key = .init(label: Display.escaped(key.label), id: key.id, spec: key.spec, fingerprint: key.fingerprint)
        p.wrappingAlgorithm = resolved.algorithm.rawValue
        p.wrappingPublicKeySha256 = wrappingKeySha256
        p.wrappingKeySource = source
        p.parametersValidTo = resolved.parameters.validTo.map(Timestamp.string)
        p.kmsKeyId = (kmsKeyIdAsGiven ?? resolved.parameters.kmsKeyId).map(Display.escaped)
        p.provider = resolved.parameters.provider == .aws ? nil : resolved.parameters.provider
        p.target = target.map(Display.escaped)
        p.confirmWrappingKey = source == .operator
    }

    /// What names the key's destination outside AWS: the Azure KEK's kid, the Google import job.
    var target: String? { resolved.parameters.azureKid ?? resolved.parameters.gcpImportJob }

    var summary: String {
        let fp = key.fingerprint.map { key.kcv != nil ? ", KCV \($0)" : ", public key SHA-256 \($0.prefix(16))…" } ?? ""
        return "\(kmsImport == nil ? "wrap" : "import") key \"\(Display.escaped(key.label))\" (\(key.spec ?? "?"), id \(key.id)\(fp)) with \(resolved.algorithm.rawValue) "
            + "under wrapping key SHA-256 \(wrappingKeySha256.prefix(16))… (\(source == .kms ? "fetched from AWS KMS by byokd" : "supplied by the requester")) "
            + destination
    }

    private var destination: String {
        switch resolved.parameters.provider {
        case .aws: "for KMS key \(Display.escaped(kmsKeyIdAsGiven ?? resolved.parameters.kmsKeyId ?? "(not named)"))"
        case .azure: "for Azure (KEK \(Display.escaped(target ?? "?")))"
        case .gcp: "for Google Cloud KMS (import job \(Display.escaped(target ?? "?")))"
        }
    }
}
