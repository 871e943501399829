import ByokAPI
import Foundation

/// Requests held for a second person (the two-person rule): the typed request, who asked, and,
/// once a second operator approved and it ran, its typed outcome for the requester to collect.
/// In memory: a restart drops them, and each drop is a request the operator simply makes again.
final class Approvals: @unchecked Sendable {  // every field behind `lock`
    struct Entry: Sendable {
        let id: String
        let request: DaemonRequest
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

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    let timeout: Double
    let limits: ApprovalLimits

    init(timeout: Double, limits: ApprovalLimits = ApprovalLimits()) {
        self.timeout = timeout
        self.limits = limits
    }

    /// Holds `request` and returns its entry (with a fresh random id); PENDING_LIMIT or
    /// REQUEST_TOO_LARGE past the bounds (`ApprovalLimits`).
    func add(_ request: DaemonRequest, requester: PeerCredentials, summary: String, now: Date = Date()) throws -> Entry {
        var rng = SystemRandomNumberGenerator()
        let id = (0..<6).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &rng)) }.joined()
        let e = Entry(id: id, request: request, requester: requester, created: now, expires: now.addingTimeInterval(timeout),
                      summary: summary, state: .waiting)
        try lock.withLock {
            ApprovalLimits.purge(&entries, timeout: timeout, now: now)
            try limits.admit(request, requester: requester, held: entries.values)
            entries[id] = e
        }
        return e
    }

    /// Marks waiting entries past their time as expired and returns them (each once).
    func expire(now: Date = Date()) -> [Entry] {
        lock.withLock {
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
        lock.withLock {
            entries.values.filter { if case .waiting = $0.state { return true }; return false }.sorted { $0.created < $1.created }
        }
    }

    func get(_ id: String) -> Entry? { lock.withLock { entries[id] } }

    /// Moves a waiting entry to running; nil if it is not waiting (approved already, expired, unknown).
    func claim(_ id: String, now: Date = Date()) -> Entry? {
        lock.withLock {
            guard let e = entries[id], case .waiting = e.state, e.expires > now else { return nil }
            entries[id]!.state = .running
            return e
        }
    }

    /// Records the outcome of an approved request, for its requester to collect.
    func finish(_ id: String, _ result: Result<Outcome, ByokError>) {
        lock.withLock { entries[id]?.state = .done(result) }
    }

    func remove(_ id: String) { lock.withLock { entries[id] = nil } }

    static func describe(_ e: Entry) -> PendingRequest {
        PendingRequest(id: e.id, operation: e.operation.rawValue, requestedBy: e.requester.userName, requestedByUid: e.requester.uid,
                       createdAt: Timestamp.string(e.created), expiresAt: Timestamp.string(e.expires), summary: e.summary)
    }

    /// A line for the approver: what exactly they are approving.
    static func summary(_ request: DaemonRequest) -> String {
        switch request {
        case .keysGenerate(let g):
            return "generate \(g.spec) key \"\(g.label)\""
        case .wrap(let w):
            var kms = w.parameters.kmsKeyId
            if kms == nil, let j = w.parameters.awsJSON, let d = Data(base64Encoded: j),
               let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any] { kms = o["KeyId"] as? String }
            return "wrap key \"\(w.key)\" with \(w.wrappingAlgorithm ?? "the parameters' algorithm") for KMS key \(kms ?? "(not named)")"
        default:
            return request.operation.rawValue
        }
    }
}
