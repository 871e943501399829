import BYOK
import ByokAPI
import Foundation
import PKCS11

/// The mechanism self-test's state, one value with one owner: not run yet, running (with the
/// previous verdicts, if any), or finished with a verdict per algorithm. Wraps that arrive while
/// it runs wait for it.
final class SelfTestVerdicts: @unchecked Sendable {  // `state` behind an NSCondition (waiters need a condition variable, which Mutex lacks)
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

extension SelfTestVerdicts {
    /// How this token does `algorithm`, from the self-test (waiting for a run in progress); refused
    /// with the reason and the next step if it cannot. The parameters an operator holds were issued
    /// for one algorithm and work only with it, so the step is to download new parameters for an
    /// algorithm that passed — or, when none AWS takes for this kind of key passed, another token.
    func route(for algorithm: WrappingAlgorithm, token: TokenInfo) throws -> WrapRoute {
        let verdicts = settled()?.byAlgorithm ?? [:]
        guard let verdict = verdicts[algorithm] else {
            throw ByokError(.tokenLacksAlgorithm, "\(algorithm.rawValue) has not passed the mechanism self-test on token \"\(token.label)\"; run `byokctl selftest`")
        }
        if verdict.state == .passed, let r = verdict.route { return r }
        let finding = verdict.state == .failed ? "the mechanism self-test caught it producing a wrong result" : "the mechanism self-test found it unsupported"
        var message = "token \"\(token.label)\" (\(token.model)) cannot wrap with \(algorithm.rawValue): \(finding) (\(verdict.reason ?? "no reason given"))"
        // The key's material decides the family: ImportRules allowed this algorithm for it.
        let family: [WrappingAlgorithm] = algorithm.isHybrid ? [.RSA_AES_KEY_WRAP_SHA_256, .RSA_AES_KEY_WRAP_SHA_1] : [.RSAES_OAEP_SHA_256, .RSAES_OAEP_SHA_1]
        if let alternative = family.first(where: { verdicts[$0]?.state == .passed }) {
            message += "; import parameters work only with the algorithm they were requested for, so download new ones for \(alternative.rawValue) (`aws kms get-parameters-for-import --key-id KEY --wrapping-algorithm \(alternative.rawValue) --wrapping-key-spec RSA_4096`) and wrap with those, or use another token"
        } else if algorithm.isHybrid {
            message += "; no RSA_AES_KEY_WRAP algorithm passed on this token, and it is the only way AWS KMS takes an RSA private key and the only way a PKCS#11 token can export an EC one, so no RSA or ECC key can leave this token for AWS KMS: use another token"
        } else {
            message += "; no RSAES_OAEP algorithm passed on this token, so no symmetric or HMAC key can leave it for AWS KMS: use another token"
        }
        throw ByokError(.tokenLacksAlgorithm, message)
    }

    /// Why no key of `spec` made on this token could be exported to AWS KMS — no wrapping algorithm
    /// AWS takes for it (and a token can produce) passed the self-test — or nil when one did.
    func exportProblem(for spec: KeySpec) -> String? {
        let material = ImportRules.material(of: spec)
        let allowed = WrappingAlgorithm.usable.filter { ImportRules.table[material]!.onToken.contains($0) }
        guard let verdicts = settled()?.byAlgorithm else {
            return "the mechanism self-test has given no verdicts on this token, so no wrapping algorithm for \(spec.rawValue) is known to work (run `byokctl selftest`)"
        }
        if allowed.contains(where: { verdicts[$0]?.state == .passed }) { return nil }
        let why = allowed.map { a in "\(a.rawValue): \(verdicts[a].map { "\($0.state.rawValue) — \($0.reason ?? "no reason given")" } ?? "untested")" }
        return "no wrapping algorithm AWS KMS takes for \(spec.rawValue) (\(material.rawValue)) passed this token's self-test (\(why.joined(separator: "; "))), so a \(spec.rawValue) key made here could never be exported to AWS KMS"
    }
}

/// What a token's flags mean for the operator, as `status` shows them.
enum TokenNotes {
    static func notes(_ token: TokenInfo) -> [String] {
        var notes: [String] = []
        if token.userPINLocked { notes.append("the user PIN is locked (CKF_USER_PIN_LOCKED): the token's security officer must unlock or reset it") }
        if token.userPINFinalTry { notes.append("one more wrong PIN locks the token (CKF_USER_PIN_FINAL_TRY): byokd will not try a PIN again unless allowFinalPinTry is set") }
        if token.userPINCountLow { notes.append("a wrong PIN was entered since the last good login (CKF_USER_PIN_COUNT_LOW)") }
        if token.userPINToBeChanged { notes.append("the user PIN must be changed (CKF_USER_PIN_TO_BE_CHANGED)") }
        if token.writeProtected { notes.append("the token is write-protected (CKF_WRITE_PROTECTED): keys cannot be generated on it") }
        return notes
    }
}

extension AlgorithmStatus {
    /// How `status` and `selftest` show a verdict.
    var statusLine: StatusResponse.Algorithm {
        .init(name: algorithm.rawValue, state: state.rawValue, via: route?.description, reason: reason)
    }
}
