import BYOK
import ByokAPI
import Foundation

/// The mechanism self-test's state, one value with one owner: not run yet, running (with the
/// previous verdicts, if any), or finished with a verdict per algorithm. Wraps that arrive while
/// it runs wait for it.
final class SelfTestVerdicts: @unchecked Sendable {  // `state` behind `condition`
    struct Verdicts: Sendable {
        let byAlgorithm: [WrappingAlgorithm: AlgorithmStatus]
        let at: Date
    }

    enum State: Sendable {
        case notRun
        case running(previous: Verdicts?)
        case finished(Verdicts)
    }

    private let condition = NSCondition()
    private var state: State = .notRun

    var current: State { condition.withLock { state } }

    /// The latest finished verdicts (the previous ones while a new run is in progress).
    var latest: Verdicts? { condition.withLock { latestLocked } }

    func begin() {
        condition.withLock {
            if case .running = state { return }
            state = .running(previous: latestLocked)
        }
    }

    /// Ends a run: with its results, or (nil) keeping what was there before.
    func end(_ results: [AlgorithmStatus]?, at date: Date = Date()) {
        condition.withLock {
            if let results {
                state = .finished(Verdicts(byAlgorithm: Dictionary(results.map { ($0.algorithm, $0) }, uniquingKeysWith: { $1 }), at: date))
            } else if case .running(let previous) = state {
                state = previous.map(State.finished) ?? .notRun
            }
            condition.broadcast()
        }
    }

    /// The verdicts once no run is in progress (waiting at most `timeout` seconds for one).
    func settled(timeout: TimeInterval = 120) -> Verdicts? {
        condition.lock()
        defer { condition.unlock() }
        let deadline = Date().addingTimeInterval(timeout)
        while case .running = state, Date() < deadline { _ = condition.wait(until: deadline) }
        return latestLocked
    }

    private var latestLocked: Verdicts? {
        switch state {
        case .notRun: nil
        case .running(let previous): previous
        case .finished(let v): v
        }
    }
}

extension AlgorithmStatus {
    /// How `status` and `selftest` show a verdict.
    var statusLine: StatusResponse.Algorithm {
        .init(name: algorithm.rawValue, state: state.rawValue, via: route?.description, reason: reason)
    }
}
