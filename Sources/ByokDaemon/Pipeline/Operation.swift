import ByokAPI

/// Every operation byokd performs, by the one name used in the configuration (`access`,
/// `twoPersonRule`), in authorization, in audit records and in docs/CONFIGURATION.md.
public enum Operation: String, CaseIterable, Sendable, Codable {
    case status
    case keysList = "keys.list"
    case keysGenerate = "keys.generate"
    case wrap
    /// Many wraps in one request; authorized as `wrap`.
    case wrapBatch = "wrap.batch"
    case selftest
    case approve
    /// The Security Officer makes a held wrap's wrapping key trusted on the token (`trustedWrapping`).
    case trust
    /// The list of requests waiting for approval; authorized as `approve`.
    case approvalsList = "approvals.list"
    case audit
    /// The audit log checked with the token's MAC key; authorized as `audit`.
    case auditVerify = "audit.verify"
    /// The last durable record's seq and hash, from byokd's memory; authorized as `audit`.
    case auditHead = "audit.head"
    case kmsImport = "kms.import"
    case kmsCreateKey = "kms.create-key"
    /// New key material from the token imported into a KMS key and rotated to; needs `wrap` too.
    case kmsRotate = "kms.rotate"
    /// The key materials of a KMS key.
    case kmsMaterials = "kms.materials"
    /// A requester collecting the outcome of their own approved request: no access entry, the
    /// kernel's uid must be the requester's.
    case requestPoll = "request.poll"

    /// The `access` entries that must all let the caller do this operation; none for a poll, which
    /// only the requester may make. Whatever releases key material needs `wrap`: `kms.import`
    /// wraps too, so a user denied `wrap` cannot import instead.
    public var permissions: [Operation] {
        switch self {
        case .wrapBatch: [.wrap]
        case .approvalsList: [.approve]
        case .auditVerify, .auditHead: [.audit]
        case .kmsImport: [.kmsImport, .wrap]
        case .kmsRotate: [.kmsRotate, .wrap]
        case .requestPoll: []
        default: [self]
        }
    }

    /// Whether `access` takes this name.
    public var isPermission: Bool { permissions.first == self }

    /// The names `access` takes.
    public static var accessNames: [Operation] { allCases.filter(\.isPermission) }

    /// Whether the two-person rule can hold this operation for a second operator.
    public var canNeedApproval: Bool {
        switch self {
        case .status, .keysList, .keysGenerate, .wrap, .selftest, .kmsImport, .kmsCreateKey, .kmsRotate, .kmsMaterials: true
        case .wrapBatch, .approve, .trust, .approvalsList, .audit, .auditVerify, .auditHead, .requestPoll: false
        }
    }

    /// Whether this operation releases key material (and so needs a wrapping key byokd accepts).
    public var wraps: Bool { self == .wrap || self == .wrapBatch || self == .kmsImport || self == .kmsRotate }

    /// The operations named by `twoPersonRule`, each checked; `kms.import` follows `wrap`.
    static func twoPersonSet(_ names: [String]?) throws -> Set<Operation> {
        var set = Set(try (names ?? []).map { name in
            guard let op = Operation(rawValue: name), op.canNeedApproval else {
                throw ByokError(.badRequest, "twoPersonRule names \"\(name)\", which is not an operation that can need approval; those are \(allCases.filter(\.canNeedApproval).map(\.rawValue).joined(separator: ", "))")
            }
            return op
        })
        if set.contains(.wrap) { set.formUnion([.kmsImport, .kmsRotate]) }
        return set
    }
}
