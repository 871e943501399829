@testable import ByokAPI
@testable import ByokDaemon
import Foundation
import PKCS11
import Synchronization
import TestSupport
import XCTest

/// The daemon's session pool on real SoftHSM sessions, in process: a session is never lent to two
/// borrowers at once, a borrower waits at most the wait limit (then BUSY), a returned session goes
/// to the next waiter, and after a drain idle sessions are closed at once and lent ones on return.
final class SessionPoolTests: XCTestCase {
    var token: LoadedToken!

    override func setUpWithError() throws { token = try LoadedToken.softHSM(label: "pool-test") }
    override func tearDown() { token = nil }

    func sessions(_ n: Int) throws -> [Session] { try (0..<n).map { _ in try token.openSession() } }

    /// Whether the token still knows the session (`C_GetSessionInfo`).
    func isOpen(_ s: Session) -> Bool {
        do { _ = try s.state(); return true } catch { return false }
    }

    /// What the borrowers saw, under one lock.
    final class Tally: Sendable {
        struct Seen {
            var inUse = Set<ObjectIdentifier>(), used = Set<ObjectIdentifier>()
            var overlaps: [String] = [], errors: [String] = []
            var borrows = 0, concurrent = 0, maxConcurrent = 0
        }
        private let seen = Mutex(Seen())
        func with<R: Sendable>(_ body: (inout Seen) -> R) -> R { seen.withLock { body(&$0) } }
    }

    func testNoSessionIsLentToTwoBorrowersAtOnce() throws {
        let pool = SessionPool(waitLimit: 60)
        let all = try sessions(3)
        pool.fill(all)
        let t = Tally()
        // Threads of their own (concurrentPerform would run one per core: two here).
        let finished = DispatchGroup()
        for worker in 0..<12 {
            finished.enter()
            Thread {
                defer { finished.leave() }
                for round in 0..<20 {
                    do {
                        try pool.borrow { session in
                            let id = ObjectIdentifier(session)
                            t.with {
                                if !$0.inUse.insert(id).inserted { $0.overlaps.append("worker \(worker) round \(round)") }
                                $0.used.insert(id)
                                $0.concurrent += 1
                                $0.maxConcurrent = max($0.maxConcurrent, $0.concurrent)
                            }
                            // Real token work on the session while it is held.
                            _ = try session.generateRandom(16)
                            usleep(5000)
                            t.with { $0.inUse.remove(id); $0.concurrent -= 1; $0.borrows += 1 }
                        }
                    } catch {
                        t.with { $0.errors.append("\(error)") }
                    }
                }
            }.start()
        }
        XCTAssertEqual(finished.wait(timeout: .now() + 120), .success)
        t.with { t in
            XCTAssertEqual(t.overlaps, [], "a session was lent to two borrowers at once")
            XCTAssertEqual(t.errors, [])
            XCTAssertEqual(t.borrows, 240)
            XCTAssertEqual(t.maxConcurrent, 3, "12 threads kept all 3 sessions busy, and never more")
            XCTAssertEqual(t.used, Set(all.map { ObjectIdentifier($0) }), "every session of the pool was used, and only those")
        }
        XCTAssertTrue(all.allSatisfy(isOpen))
    }

    func testABorrowerWaitsForAReturnedSessionAndGetsBUSYAfterTheWaitLimit() throws {
        let pool = SessionPool(waitLimit: 1)
        pool.fill(try sessions(1))
        let holding = DispatchSemaphore(value: 0), release = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
        Thread {
            try? pool.borrow { _ in holding.signal(); release.wait() }
            done.signal()
        }.start()
        holding.wait()
        // Whatever happens below, the holder lets go (a thread left holding a session would keep
        // the module initialised for the tests after this one).
        var released = false
        defer { if !released { release.signal(); done.wait() } }
        // The only session is out: after the wait limit, BUSY.
        let started = Date()
        XCTAssertThrowsError(try pool.borrow { _ in XCTFail("lent a session that is in use") }) { error in
            XCTAssertEqual((error as? ByokError)?.code, .busy)
            XCTAssertEqual((error as? ByokError)?.message, "all token sessions stayed busy for 1 seconds; try again shortly")
        }
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 0.9, "it waited the limit before giving up")
        // A waiter is handed the session as soon as it comes back, long before its limit.
        let patient = SessionPool(waitLimit: 60)
        patient.fill(try sessions(1))
        let out = DispatchSemaphore(value: 0), back = DispatchSemaphore(value: 0)
        Thread {
            try? patient.borrow { _ in out.signal(); usleep(300_000) }
            back.signal()
        }.start()
        out.wait()
        defer { back.wait() }
        let waitStart = Date()
        let value = try patient.borrow { s in try s.generateRandom(4).count }
        XCTAssertEqual(value, 4)
        XCTAssertLessThan(Date().timeIntervalSince(waitStart), 30, "woken by the return, not by the 60 s limit")
        release.signal()
        done.wait()
        released = true
        XCTAssertEqual(try pool.borrow { _ in 1 }, 1, "the first pool's session came back")
    }

    func testDrainClosesIdleSessionsNowAndLentOnesOnReturn() throws {
        let pool = SessionPool(waitLimit: 0.2)
        let (lent, idle) = try (token.openSession(), token.openSession())
        pool.fill([idle, lent])  // borrow takes the last one first
        let borrowed = DispatchSemaphore(value: 0), drained = DispatchSemaphore(value: 0), returned = DispatchSemaphore(value: 0)
        let usableWhileLent = Tally()
        let lentID = ObjectIdentifier(lent)  // the session itself is not Sendable: its identity crosses to the thread
        Thread {
            try? pool.borrow { s in
                XCTAssertTrue(ObjectIdentifier(s) == lentID)
                borrowed.signal()
                drained.wait()
                // Drained while lent: the borrower finishes its work on it.
                let ok = (try? s.generateRandom(8))?.count == 8
                usableWhileLent.with { $0.borrows = ok ? 1 : 0 }
            }
            returned.signal()
        }.start()
        borrowed.wait()
        var finished = false
        defer { if !finished { drained.signal(); returned.wait() } }
        pool.drain()
        XCTAssertFalse(isOpen(idle), "an idle session is closed by the drain")
        XCTAssertTrue(isOpen(lent), "a lent one is left to its borrower")
        drained.signal()
        returned.wait()
        finished = true
        XCTAssertEqual(usableWhileLent.with { $0.borrows }, 1, "the borrower could still use it")
        XCTAssertFalse(isOpen(lent), "and closed when it comes back, not put back")
        XCTAssertThrowsError(try pool.borrow { _ in }) { XCTAssertEqual(($0 as? ByokError)?.code, .busy, "the pool is empty") }
        // Refilled (the daemon reconnected): new sessions are lent.
        let fresh = try token.openSession()
        pool.fill([fresh])
        XCTAssertTrue(try pool.borrow { $0 === fresh })
    }
}
