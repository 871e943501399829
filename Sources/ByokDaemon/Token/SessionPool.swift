import ByokAPI
import Foundation
import PKCS11

/// A fixed set of sessions on one token, one per worker. A caller borrows a session for a whole
/// request and gives it back; a session is never used by two requests at once.
final class SessionPool: @unchecked Sendable {
    private let lock = NSCondition()
    private var idle: [Session] = []
    private var generation = 0
    private let waitLimit: Double

    init(waitLimit: Double = 30) {
        self.waitLimit = waitLimit
    }

    func fill(_ sessions: [Session]) {
        lock.lock()
        idle = sessions
        generation += 1
        lock.broadcast()
        lock.unlock()
    }

    /// Drops every session (after the token reported them lost); borrowed ones are dropped on return.
    func drain() {
        lock.lock()
        idle.forEach { $0.close() }
        idle = []
        generation += 1
        lock.unlock()
    }

    func borrow<R>(_ body: (Session) throws -> R) throws -> R {
        lock.lock()
        let deadline = Date().addingTimeInterval(waitLimit)
        while idle.isEmpty {
            if !lock.wait(until: deadline) {
                lock.unlock()
                throw ByokError(.busy, "all token sessions stayed busy for \(Int(waitLimit)) seconds; try again shortly")
            }
        }
        let session = idle.removeLast()
        let gen = generation
        lock.unlock()
        defer {
            lock.lock()
            if gen == generation { idle.append(session); lock.signal() } else { session.close() }
            lock.unlock()
        }
        return try body(session)
    }
}
