import ByokAPI
import Foundation

/// Requests held for a second person (the two-person rule). In memory: a restart drops them, and
/// each drop is a request the operator simply makes again.
final class Approvals: @unchecked Sendable {
    struct Entry {
        let id: String
        let operation: Operation
        let body: [UInt8]
        let requester: PeerCredentials
        let requesterName: String
        let created: Date
        let expires: Date
        let summary: String
        enum State { case waiting, running, done(HTTPResponse), expired }
        var state: State
    }

    private let lock = NSLock()
    private var entries: [String: Entry] = [:]
    let timeout: Double

    init(timeout: Double) { self.timeout = timeout }

    func add(operation: Operation, body: [UInt8], requester: PeerCredentials, summary: String) -> Entry {
        var raw = [UInt8](repeating: 0, count: 6)
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        if fd >= 0 { _ = read(fd, &raw, raw.count); close(fd) }
        let id = raw.map { String(format: "%02x", $0) }.joined()
        let now = Date()
        let e = Entry(id: id, operation: operation, body: body, requester: requester, requesterName: requester.userName,
                      created: now, expires: now.addingTimeInterval(timeout), summary: summary, state: .waiting)
        lock.lock(); entries[id] = e; lock.unlock()
        return e
    }

    /// Marks waiting entries past their time as expired and returns them (each once).
    func expire(now: Date = Date()) -> [Entry] {
        lock.lock(); defer { lock.unlock() }
        var out: [Entry] = []
        for (id, e) in entries {
            if case .waiting = e.state, e.expires <= now {
                entries[id]!.state = .expired
                out.append(entries[id]!)
            }
        }
        return out
    }

    func waiting() -> [Entry] {
        lock.lock(); defer { lock.unlock() }
        return entries.values.filter { if case .waiting = $0.state { return true }; return false }.sorted { $0.created < $1.created }
    }

    func get(_ id: String) -> Entry? { lock.lock(); defer { lock.unlock() }; return entries[id] }

    /// Moves a waiting entry to running; nil if it is not waiting (approved already, expired, unknown).
    func claim(_ id: String) -> Entry? {
        lock.lock(); defer { lock.unlock() }
        guard let e = entries[id], case .waiting = e.state, e.expires > Date() else { return nil }
        entries[id]!.state = .running
        return e
    }

    func finish(_ id: String, _ response: HTTPResponse) {
        lock.lock(); entries[id]?.state = .done(response); lock.unlock()
    }

    func remove(_ id: String) { lock.lock(); entries[id] = nil; lock.unlock() }

    static func describe(_ e: Entry) -> PendingRequest {
        PendingRequest(id: e.id, operation: e.operation.rawValue, requestedBy: e.requesterName, requestedByUid: e.requester.uid,
                       createdAt: Timestamp.string(e.created), expiresAt: Timestamp.string(e.expires), summary: e.summary)
    }
}
