import ByokAPI
import Foundation
import PKCS11

/// A fixed set of sessions on one token, one per worker. A caller borrows a session for a whole
/// request and gives it back; a session is never used by two requests at once.
final class SessionPool: @unchecked Sendable {  // sessions (not Sendable) behind an NSCondition: lent to one borrower at a time
    private let lock = NSCondition()
    private var idle: [Session] = []
    /// How many sessions the current generation has (idle or borrowed).
    private var size = 0
    private var generation = 0
    private let waitLimit: Double

    init(waitLimit: Double = 30) {
        self.waitLimit = waitLimit
    }

    func fill(_ sessions: [Session]) {
        lock.lock()
        idle = sessions
        size = sessions.count
        generation += 1
        lock.broadcast()
        lock.unlock()
    }

    /// Drops every session (after the token reported them lost); borrowed ones are dropped on return.
    func drain() {
        lock.lock()
        idle.forEach { $0.close() }
        idle = []
        size = 0
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

    /// Runs `body` with one session while no other session of the pool is in use: it waits until
    /// every borrowed session is back (BUSY after the wait limit), and nothing is lent meanwhile.
    /// For what changes the login state of every session at once (a Security Officer login).
    func exclusive<R>(_ body: (Session) throws -> R) throws -> R {
        lock.lock()
        let deadline = Date().addingTimeInterval(waitLimit)
        while idle.count < size || idle.isEmpty {
            if !lock.wait(until: deadline) {
                lock.unlock()
                throw ByokError(.busy, "token sessions stayed busy for \(Int(waitLimit)) seconds; try again shortly")
            }
        }
        let all = idle
        let gen = generation
        idle = []
        lock.unlock()
        defer {
            lock.lock()
            if gen == generation { idle = all; lock.broadcast() } else { all.forEach { $0.close() } }
            lock.unlock()
        }
        return try body(all[0])
    }
}
