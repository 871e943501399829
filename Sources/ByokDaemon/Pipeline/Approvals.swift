import ByokAPI
import Foundation
import Synchronization

/// Requests held for a second person (the two-person rule): the typed request, who asked, and,
/// once a second operator approved and it ran, its typed outcome for the requester to collect.
/// In memory: a restart drops them, and each drop is a request the operator simply makes again.
final class Approvals: Sendable {
    /// What the second person must do.
    enum Needs: String, Sendable {
        /// An operator's `byokctl approve` (the two-person rule).
        case approve
        /// The Security Officer's `byokctl trust` (trusted wrapping).
        case trust
    }

    struct Entry: Sendable {
        let id: String
        let request: DaemonRequest
        /// For wraps: what was checked when the request was held, and exactly what will run.
        let plan: WrapPlan?
        let needs: Needs
        let requester: PeerCredentials
        let created: Date
        let expires: Date
        let summary: String
        enum State: Sendable {
            case waiting
            case running
            case done(Result<Outcome, ByokError>)
            case expired
        }
        var state: State
        var operation: Operation { request.operation }
    }

    private let entries = Mutex<[String: Entry]>([:])
    let timeout: Double
    let limits: ApprovalLimits

    init(timeout: Double, limits: ApprovalLimits = ApprovalLimits()) {
        self.timeout = timeout
        self.limits = limits
    }

    /// Whether `request` could be held now (PENDING_LIMIT or REQUEST_TOO_LARGE if not): asked
    /// before a held wrap is planned, so a request past the bounds costs no token or KMS work.
    func admissible(_ request: DaemonRequest, requester: PeerCredentials, now: Date = Date()) throws {
        try entries.withLock { entries in
            ApprovalLimits.purge(&entries, timeout: timeout, now: now)
            try limits.admit(request, requester: requester, held: entries.values)
        }
    }

    /// Holds `request` and returns its entry (with a fresh random id); PENDING_LIMIT or
    /// REQUEST_TOO_LARGE past the bounds (`ApprovalLimits`).
    func add(_ request: DaemonRequest, plan: WrapPlan? = nil, needs: Needs = .approve, requester: PeerCredentials, now: Date = Date()) throws -> Entry {
        var rng = SystemRandomNumberGenerator()
        let id = (0..<6).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
        let e = Entry(id: id, request: request, plan: plan, needs: needs, requester: requester, created: now,
                      expires: now.addingTimeInterval(timeout), summary: Self.summary(request, plan: plan), state: .waiting)
        try entries.withLock { entries in
            ApprovalLimits.purge(&entries, timeout: timeout, now: now)
            try limits.admit(request, requester: requester, held: entries.values)
            entries[id] = e
        }
        return e
    }

    /// Marks waiting entries past their time as expired and returns them (each once).
    func expire(now: Date = Date()) -> [Entry] {
        entries.withLock { entries in
            var out: [Entry] = []
            for (id, e) in entries {
                if case .waiting = e.state, e.expires <= now {
                    entries[id]!.state = .expired
                    out.append(entries[id]!)
                }
            }
            return out
        }
    }

    func waiting() -> [Entry] {
        entries.withLock { entries in
            entries.values.filter { if case .waiting = $0.state { return true }; return false }.sorted { $0.created < $1.created }
        }
    }

    func get(_ id: String) -> Entry? { entries.withLock { $0[id] } }

    /// Moves a waiting entry to running; nil if it is not waiting (approved already, expired, unknown).
    func claim(_ id: String, now: Date = Date()) -> Entry? {
        entries.withLock { entries in
            guard let e = entries[id], case .waiting = e.state, e.expires > now else { return nil }
            entries[id]!.state = .running
            return e
        }
    }

    /// Records the outcome of an approved request, for its requester to collect.
    func finish(_ id: String, _ result: Result<Outcome, ByokError>) {
        entries.withLock { $0[id]?.state = .done(result) }
    }

    func remove(_ id: String) { entries.withLock { $0[id] = nil } }

    /// The entry as the second person sees it: what exactly they are approving, escaped.
    static func describe(_ e: Entry) -> PendingRequest {
        var p = PendingRequest(id: e.id, operation: e.operation.rawValue, requestedBy: Display.escaped(e.requester.userName),
                               requestedByUid: e.requester.uid, createdAt: Timestamp.string(e.created),
                               expiresAt: Timestamp.string(e.expires), summary: e.summary)
        p.needs = e.needs.rawValue
        if let plan = e.plan {
            plan.describe(into: &p)
        } else if case .keysGenerate(let g) = e.request {
            p.key = .init(label: Display.escaped(g.label), id: nil, spec: Display.escaped(g.spec), fingerprint: nil)
        }
        return p
    }

    /// A line for the second person.
    static func summary(_ request: DaemonRequest, plan: WrapPlan?) -> String {
        if let plan { return plan.summary }
        switch request {
        case .keysGenerate(let g):
            return "generate \(Display.escaped(g.spec)) key \"\(Display.escaped(g.label))\""
        case .kmsCreateKey(let k):
            return "create a KMS key \(Display.escaped(k.spec)) with origin EXTERNAL"
        default:
            return request.operation.rawValue
        }
    }
}
