import BYOK
import ByokAPI
import Foundation
import Logging
import PKCS11
import Synchronization

/// The daemon's one connection to the HSM: the module, the selected token, and the pool of
/// logged-in sessions. Its state is one value: connected to a token, or lost with the reason.
final class TokenConnection: Sendable {
    enum State: Sendable {
        case connected(TokenInfo)
        /// The token stopped answering (removed, logged out, sessions gone); the next request
        /// reconnects.
        case lost(reason: String)
    }

    let config: Configuration
    let logger: Logger
    let module: Module
    let moduleDescription: String
    private let pool: SessionPool
    /// The connection's state, and the slot chosen with the reason, changed together.
    private let guarded = Mutex<(state: State, chosen: (slot: Slot, reason: String)?)>((.lost(reason: "not connected yet"), nil))
    /// One reconnect at a time.
    private let reconnecting = Mutex<Void>(())
    /// Called after every (re)connect: caches of handles made in the old sessions are void.
    private let onConnect: @Sendable () -> Void
    /// Counts (re)connects and Security Officer steps: a handle found under one generation is not
    /// used under another (`TokenService.wrapGroup`).
    private let generations = Atomic<UInt64>(0)

    /// The current generation of object handles.
    var generation: UInt64 { generations.load(ordering: .acquiring) }

    init(config: Configuration, logger: Logger, onConnect: @escaping @Sendable () -> Void) throws {
        self.config = config
        self.logger = logger
        self.onConnect = onConnect
        guard let source = config.module else {
            throw ByokError(.tokenUnavailable, "no PKCS#11 module configured; give --module PATH|NAME (or use --dev for a SoftHSM dev token)")
        }
        do {
            module = try Module(source, initArgs: config.initArgs, functionListSymbol: config.functionListSymbol)
        } catch let e as PKCS11Error {
            throw ByokError(TokenErrors.code(for: e), "cannot load the PKCS#11 module \(source): \(TokenErrors.explain(e))")
        } catch {
            throw ByokError(.tokenUnavailable, "cannot load the PKCS#11 module \(source): \(error)")
        }
        try FIPSMode.checkNSSDatabase(config: config, module: module)
        moduleDescription = (try? module.info()).map { "\($0.description) (\($0.manufacturer)) \($0.version)" } ?? source
        pool = SessionPool()
        try connect()
    }

    var current: State { guarded.withLock { $0.state } }

    /// The slot in use and why it was chosen (for `status`), once connected.
    var selection: (slot: Slot, reason: String)? { guarded.withLock { $0.chosen } }

    /// Selects the token, opens the session pool and logs in.
    private func connect() throws {
        let selector: TokenSelector
        do { selector = try TokenSelector(config.token) } catch { throw ByokError(.badRequest, "\(error)") }
        let choice: TokenSelector.Selection
        do { choice = try selector.choose(in: module) } catch let e as PKCS11Error {
            throw ByokError(TokenErrors.code(for: e), "\(e.returnValue == nil ? "\(e)" : TokenErrors.explain(e))")
        } catch {
            throw ByokError(.tokenUnavailable, "\(error)")
        }
        let (slot, info) = (choice.slot, choice.token)
        var sessions: [Session] = []
        do {
            for _ in 0..<config.resolvedSessions { sessions.append(try slot.openSession()) }
        } catch {
            throw ByokError(.tokenUnavailable, "cannot open sessions on token \"\(info.label)\": \(error)")
        }
        if info.loginRequired { try logIn(sessions[0], token: info, fresh: try? slot.tokenInfo()) }
        generations.add(1, ordering: .releasing)
        onConnect()
        guarded.withLock { $0 = (.connected(info), (slot, choice.reason)) }
        pool.fill(sessions)
        logger.info("token ready", metadata: ["token": "\(info.label)", "serial": "\(info.serial)", "model": "\(info.model)", "sessions": "\(sessions.count)",
                                              "entryPoint": "\(module.entryPoint)", "chosen": "\(choice.reason)"])
    }

    /// Refuses to log in when the token says the PIN is locked, or — unless `allowFinalPinTry` is
    /// set — that one more wrong PIN locks it: byokd never spends the last attempt by itself.
    private func checkPINFlags(_ token: TokenInfo) throws {
        if token.userPINLocked {
            throw ByokError(.tokenLoginFailed, "token \"\(token.label)\" says its user PIN is locked (CKF_USER_PIN_LOCKED), so byokd did not try to log in; the token's security officer must unlock or reset it")
        }
        if token.userPINFinalTry && config.allowFinalPinTry != true {
            throw ByokError(.tokenLoginFailed, "token \"\(token.label)\" says one more wrong PIN locks it (CKF_USER_PIN_FINAL_TRY), so byokd did not try to log in: make sure the PIN file is right, then start byokd once with --allow-final-pin-try (setting \"allowFinalPinTry\": true) to make that attempt")
        }
    }

    /// Closes the sessions and finalizes the module (at shutdown, on the caller's thread).
    func close() {
        pool.drain()
        guarded.withLock { $0.state = .lost(reason: "byokd is stopping") }
        module.finalize()
    }

    /// C_GetTokenInfo now, for flags that change (PIN counters); nil when the token does not answer.
    func liveTokenInfo() -> TokenInfo? {
        guard let slot = selection?.slot else { return nil }
        return try? slot.tokenInfo()
    }

    /// C_Login as the user, with the PIN read afresh (and wiped after).
    /// C_Login as the user: the PIN file read and checked first (a malformed one is refused before
    /// any C_Login), the token's PIN flags respected, the PIN wiped after.
    private func logIn(_ session: Session, token info: TokenInfo, fresh: TokenInfo? = nil) throws {
        let pin = try loadPIN()
        try checkPINFlags(fresh ?? info)
        do { try session.login(pin) } catch let e as PKCS11Error {
            throw ByokError(TokenErrors.code(for: e), "cannot log in to token \"\(info.label)\": \(TokenErrors.explain(e))")
        }
    }

    /// Runs `body` as the Security Officer on a session of its own, while no other request uses
    /// the token: the user is logged out, the SO logged in with `soPIN` (wiped after), and after
    /// `body` the SO is logged out and the user logged in again, whatever happened. Handles of
    /// private objects are void afterwards (`onConnect` clears the caches that hold them).
    func asSecurityOfficer<R>(_ soPIN: PIN, _ body: (Session, TokenInfo) throws -> R) throws -> R {
        defer { soPIN.wipe() }
        let token = try connectedToken()
        return try pool.exclusive { session in
            if token.loginRequired { try? session.logout() }
            defer {
                do {
                    if token.loginRequired { try logIn(session, token: token) }
                    generations.add(1, ordering: .releasing)
                    onConnect()
                } catch {
                    guarded.withLock { $0.state = .lost(reason: "\(error)") }
                    logger.error("could not log the user in again after the Security Officer step", metadata: ["error": "\(error)"])
                }
            }
            do { try session.loginSecurityOfficer(soPIN) } catch let e as PKCS11Error {
                throw ByokError(e.returnValue == .pinIncorrect ? .denied : .tokenLoginFailed,
                                "the Security Officer login to token \"\(token.label)\" failed: \(TokenErrors.explain(e))")
            }
            defer { try? session.logout() }
            return try body(session, token)
        }
    }

    private func loadPIN() throws -> PIN {
        do {
            if let file = config.pinFile { return try PIN(file: file) }
            if let pin = try PIN.fromCredentials() { return pin }
        } catch {
            throw ByokError(.tokenLoginFailed, "\(error)")
        }
        throw ByokError(.tokenLoginFailed, "the token needs a PIN and none is configured: give --pin-file FILE or a systemd credential named \"pin\" (LoadCredential=pin:/etc/byokd/pin)")
    }

    /// The token, reconnecting first when it was lost (one thread at a time, and only if still needed).
    @discardableResult
    func connectedToken() throws -> TokenInfo {
        if case .connected(let info) = current { return info }
        return try reconnecting.withLock { _ in
            if case .connected(let info) = current { return info }
            pool.drain()
            do {
                try connect()
                logger.notice("token reconnected")
            } catch {
                guarded.withLock { $0.state = .lost(reason: "\(error)") }
                throw ByokError(.tokenUnavailable, "the token is unavailable: \(error)")
            }
            guard case .connected(let info) = current else { throw ByokError(.tokenUnavailable, "the token is unavailable") }
            return info
        }
    }

    /// Lends `body` a session of the pool (reconnecting first if the token was lost) and marks the
    /// token lost when it says so (device removed, token absent, session gone, logged out). With
    /// `retry`, an operation without side effects on the token is tried once more after reconnecting.
    func withSession<R>(retry: Bool = false, _ body: (Session, TokenInfo) throws -> R) throws -> R {
        do {
            return try attempt(body)
        } catch let e as PKCS11Error where retry && e.returnValue?.meansSessionLost == true {
            logger.notice("retrying once after reconnecting", metadata: ["error": "\(e)"])
            return try attempt(body)
        }
    }

    private func attempt<R>(_ body: (Session, TokenInfo) throws -> R) throws -> R {
        let token = try connectedToken()
        return try pool.borrow { session in
            do { return try body(session, token) } catch let e as PKCS11Error {
                if let rv = e.returnValue, rv.meansSessionLost {
                    guarded.withLock { $0.state = .lost(reason: "\(e)") }
                    pool.drain()
                    logger.warning("token lost; reconnecting on the next request", metadata: ["error": "\(e)"])
                }
                throw e
            }
        }
    }
}
