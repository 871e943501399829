import ByokAPI
import Foundation

/// Bounds on requests held for a second operator: in all, per requester, and in size — so no
/// user can make byokd hold memory without limit by asking and never being approved. A held
/// request is its typed value (never the HTTP body) and at most `maxHeldBytes` of it.
struct ApprovalLimits: Sendable {
    var total: Int
    var perRequester: Int
    /// Far above what import parameters take (a console ZIP or CLI JSON is a few KiB).
    static let maxHeldBytes = 64 << 10

    init(total: Int = 32, perRequester: Int = 4) {
        self.total = total
        self.perRequester = perRequester
    }

    init(config: Configuration) {
        self.init(total: config.resolvedMaxPendingApprovals, perRequester: config.resolvedMaxPendingApprovalsPerUser)
    }

    /// Refuses `request` if holding it would break a bound. `held` are the entries in store.
    func admit(_ request: DaemonRequest, requester: PeerCredentials, held: some Collection<Approvals.Entry>) throws {
        let size = Self.size(of: request)
        guard size <= Self.maxHeldBytes else {
            throw ByokError(.requestTooLarge, "a request waiting for approval may carry at most \(Self.maxHeldBytes / 1024) KiB; this one carries \(size) bytes — are these the import parameters AWS issued?")
        }
        let open = held.filter(\.isOpen)
        let mine = open.filter { $0.requester.uid == requester.uid }.count
        guard mine < perRequester else {
            throw ByokError(.pendingLimit, "you have \(mine) requests waiting for approval already (setting maxPendingApprovalsPerUser); have them approved, or wait until they expire, then ask again")
        }
        guard open.count < total else {
            throw ByokError(.pendingLimit, "\(open.count) requests are waiting for approval already (setting maxPendingApprovals); try again once some are approved or expired")
        }
    }

    /// Entries that finished (collected never, or expired unseen) are dropped a timeout after
    /// their expiry, so a requester who went away does not hold memory forever.
    static func purge(_ entries: inout [String: Approvals.Entry], timeout: Double, now: Date) {
        entries = entries.filter { $0.value.isOpen || $0.value.expires.addingTimeInterval(timeout) > now }
    }

    /// The bytes a held request keeps: the strings it carries.
    static func size(of request: DaemonRequest) -> Int {
        switch request {
        case .keysGenerate(let g): return g.label.utf8.count + g.spec.utf8.count
        case .wrap(let w):
            let p = w.parameters
            return w.key.utf8.count + (w.wrappingAlgorithm?.utf8.count ?? 0)
                + [p.awsJSON, p.zip, p.publicKey, p.importToken, p.kmsKeyId, p.validTo].reduce(0) { $0 + ($1?.utf8.count ?? 0) }
        case .kmsImport(let k):
            return [k.kmsKeyId, k.key, k.wrappingAlgorithm, k.wrappingKeySpec, k.validTo, k.importType, k.keyMaterialDescription]
                .reduce(0) { $0 + ($1?.utf8.count ?? 0) }
        case .kmsCreateKey(let k):
            return k.spec.utf8.count + (k.usage?.utf8.count ?? 0) + (k.description?.utf8.count ?? 0)
                + (k.tags ?? [:]).reduce(0) { $0 + $1.key.utf8.count + $1.value.utf8.count }
        case .auditVerify(let log): return log.count
        default: return 0
        }
    }
}

extension Approvals.Entry {
    /// Waiting for a second operator, or running: what the bounds count.
    var isOpen: Bool {
        switch state {
        case .waiting, .running: true
        case .done, .expired: false
        }
    }
}
