import ByokAPI
import Foundation

/// The one place audit records are shaped: what a request names (so a failed request is still
/// recorded with its key and algorithm), then what its outcome adds.
enum AuditRecords {
    static func peer(_ p: PeerCredentials) -> AuditRecord.Peer {
        AuditRecord.Peer(uid: p.uid, gid: p.gid, pid: p.pid, user: p.userName)
    }

    /// A fresh record for an operation, "error" until an outcome says otherwise.
    static func start(_ operation: String, requestId: String, peer: PeerCredentials?) -> AuditRecord {
        var r = AuditRecord(time: Timestamp.string(Date()), requestId: requestId, operation: operation, result: "error")
        r.peer = peer.map(Self.peer)
        return r
    }

    /// What the request itself names.
    static func describe(_ request: DaemonRequest, into r: inout AuditRecord) {
        r.operation = request.operation.rawValue
        switch request {
        case .keysGenerate(let g):
            r.key = .init(label: g.label, spec: g.spec)
        case .wrap(let w):
            r.key = .init(label: w.key)
            r.wrappingAlgorithm = w.wrappingAlgorithm ?? w.parameters.importMethod
            r.kmsKeyId = w.parameters.kmsKeyId
            r.provider = w.parameters.provider.map(\.rawValue)
            r.target = w.parameters.kid ?? w.parameters.importJob
        case .kmsImport(let k):
            r.key = .init(label: k.key)
            r.wrappingAlgorithm = k.wrappingAlgorithm
            r.kmsKeyId = k.kmsKeyId
        case .kmsRotate(let k):
            r.key = .init(label: k.key)
            r.wrappingAlgorithm = k.wrappingAlgorithm
            r.kmsKeyId = k.kmsKeyId
        case .kmsMaterials(let k):
            r.kmsKeyId = k.kmsKeyId
        case .wrapBatch(let b):
            r.batchSize = b.entries.count
        case .approve(let id, _), .trust(let id, _), .requestPoll(let id):
            r.approvalId = id
        default: break
        }
    }

    /// What the outcome adds; an error sets `result` and `errorCode`.
    static func complete(_ r: inout AuditRecord, with result: Result<Outcome, ByokError>) {
        switch result {
        case .failure(let e):
            r.result = e.code == .denied ? "denied" : "error"
            r.errorCode = e.code.rawValue
        case .success(let outcome):
            r.result = "ok"
            r.errorCode = nil
            switch outcome {
            case .generated(let k):
                r.key = .init(k, spec: k.spec)
            case .wrapped(let w):
                describe(w.manifest, into: &r)
            case .kmsImported(let k):
                describe(k.wrap.manifest, into: &r)
                if !k.kms.arn.isEmpty { r.kmsKeyId = k.kms.arn }
            case .kmsRotated(let k):
                describe(k.imported.wrap.manifest, into: &r)
                if !k.imported.kms.arn.isEmpty { r.kmsKeyId = k.imported.kms.arn }
            case .pending(let p):
                r.result = "pending"
                r.approvalId = p.id
            default: break
            }
        }
    }

    private static func describe(_ m: Manifest, into r: inout AuditRecord) {
        r.key = .init(m.key, spec: m.key.spec)
        r.wrappingAlgorithm = m.wrappingAlgorithm
        r.wrappingPublicKeySha256 = m.wrappingPublicKeySha256
        r.kmsKeyId = m.kmsKeyId
        r.encryptedKeyMaterialSha256 = m.encryptedKeyMaterialSha256
        r.wrappingKeySource = m.wrappingKeySource?.rawValue
        r.provider = m.provider?.rawValue
        r.target = m.azureKid ?? m.gcpImportJob
    }

    /// The record of an approved request, before it runs: in the requester's name, naming the approver.
    static func approved(_ request: DaemonRequest, requester: PeerCredentials, approver: PeerCredentials, id: String,
                         requestId: String) -> AuditRecord {
        var r = start(request.operation.rawValue, requestId: requestId, peer: requester)
        describe(request, into: &r)
        r.requestedBy = peer(requester)
        r.approvedBy = peer(approver)
        r.approvalId = id
        return r
    }

    /// The record of one wrap: alone, approved, or one entry of a batch.
    static func record(for request: DaemonRequest, result: Result<Outcome, ByokError>, requestId: String,
                       peer: PeerCredentials?) -> AuditRecord {
        var r = start(request.operation.rawValue, requestId: requestId, peer: peer)
        describe(request, into: &r)
        complete(&r, with: result)
        return r
    }
}

extension Operation {
    /// Whether the operation changes the token or releases key material, and so is preceded by a
    /// write-ahead "intent" record (`AuditLog.intent`), and when that record must be durable: if
    /// it cannot be written, nothing happens, no key exists without a record, and no wrapped key
    /// leaves byokd before both records are on disk. A wrap's only effect is its answer, so its
    /// intent shares the outcome's fdatasync; the others change the token or reach AWS before
    /// their outcome, so their intent is durable first. Exhaustive on purpose: a new operation
    /// must decide.
    var writesAhead: AuditLog.IntentDurability? {
        switch self {
        case .wrap: .withOutcome
        case .keysGenerate, .wrapBatch, .kmsImport, .kmsRotate, .trust: .beforeToken
        case .status, .keysList, .selftest, .approve, .approvalsList, .audit, .auditVerify, .auditHead, .kmsCreateKey, .kmsMaterials,
             .requestPoll: nil
        }
    }
}
