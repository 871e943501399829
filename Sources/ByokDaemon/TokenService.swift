import BYOK
import ByokAPI
import Foundation
import KMSClient
import Logging
import PKCS11

/// The daemon's one connection to the HSM: the module, the selected token, a pool of logged-in
/// sessions, and the mechanism self-test's verdicts. All token work of all requests goes through here.
public final class TokenService: @unchecked Sendable {
    let config: Configuration
    let logger: Logger
    let module: Module
    let moduleDescription: String
    private let lock = NSLock()
    private var token: TokenInfo?
    private var tokenError: String?
    private let pool: SessionPool
    private var verdicts: [WrappingAlgorithm: AlgorithmStatus] = [:]
    private var selfTestAt: Date?

    public init(config: Configuration, logger: Logger) throws {
        self.config = config
        self.logger = logger
        guard let source = config.module else {
            throw ByokError(.tokenUnavailable, "no PKCS#11 module configured; give --module PATH|NAME (or use --dev for a SoftHSM dev token)")
        }
        do {
            module = try Module(source, initArgs: config.initArgs)
        } catch {
            throw ByokError(.tokenUnavailable, "cannot load the PKCS#11 module \(source): \(error)")
        }
        moduleDescription = (try? module.info()).map { "\($0.description) (\($0.manufacturer)) \($0.version)" } ?? source
        pool = SessionPool()
        try connect()
    }

    /// Selects the token, opens the session pool and logs in.
    private func connect() throws {
        let selector: TokenSelector
        do { selector = try TokenSelector(config.token) } catch { throw ByokError(.badRequest, "\(error)") }
        let (slot, info): (Slot, TokenInfo)
        do { (slot, info) = try selector.select(in: module) } catch {
            throw ByokError(.tokenUnavailable, "\(error)")
        }
        var sessions: [Session] = []
        do {
            for _ in 0..<config.resolvedSessions { sessions.append(try slot.openSession()) }
        } catch {
            throw ByokError(.tokenUnavailable, "cannot open sessions on token \"\(info.label)\": \(error)")
        }
        if info.loginRequired {
            let pin = try loadPIN()
            do { try sessions[0].login(pin) } catch let e as PKCS11Error {
                throw ByokError(.tokenLoginFailed, "cannot log in to token \"\(info.label)\": \(TokenService.explain(e))")
            }
        }
        lock.lock()
        self.token = info
        self.tokenError = nil
        keyCache.removeAll()
        lock.unlock()
        wrappingKeys.invalidateAll()
        pool.fill(sessions)
        logger.info("token ready", metadata: ["token": "\(info.label)", "serial": "\(info.serial)", "model": "\(info.model)", "sessions": "\(sessions.count)"])
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

    private let reconnectLock = NSLock()

    /// Reconnects when the token was lost: one thread at a time, and only if still needed.
    private func reconnectIfLost() throws {
        guard tokenErrorText() != nil || currentToken() == nil else { return }
        reconnectLock.lock()
        defer { reconnectLock.unlock() }
        guard tokenErrorText() != nil || currentToken() == nil else { return }
        pool.drain()
        do {
            try connect()
            logger.notice("token reconnected")
        } catch {
            setLost("\(error)")
            throw ByokError(.tokenUnavailable, "the token is unavailable: \(error)")
        }
    }

    /// Runs `body` with a session, reconnecting first if the token was lost, and marking it lost
    /// when the token says so (device removed, token absent, session gone, logged out). With
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
        try reconnectIfLost()
        guard let token = currentToken() else { throw ByokError(.tokenUnavailable, "the token is unavailable") }
        return try pool.borrow { session in
            do { return try body(session, token) } catch let e as PKCS11Error {
                if let rv = e.returnValue, rv.meansSessionLost {
                    setLost("\(e)")
                    pool.drain()
                    logger.warning("token lost; reconnecting on the next request", metadata: ["error": "\(e)"])
                }
                throw e
            }
        }
    }

    private func currentToken() -> TokenInfo? { lock.lock(); defer { lock.unlock() }; return token }
    private func tokenErrorText() -> String? { lock.lock(); defer { lock.unlock() }; return tokenError }
    private func setLost(_ why: String) { lock.lock(); tokenError = why; lock.unlock() }

    // MARK: Operations

    public func status() -> StatusResponse {
        try? reconnectIfLost()
        lock.lock()
        let t = token, err = tokenError, v = verdicts, at = selfTestAt
        lock.unlock()
        let algorithms = WrappingAlgorithm.usable.map { a -> StatusResponse.Algorithm in
            guard let s = v[a] else { return .init(name: a.rawValue, state: "untested") }
            return .init(name: a.rawValue, state: s.state.rawValue, via: s.route?.description, reason: s.reason)
        }
        return StatusResponse(version: ByokVersion.current, module: module.path, moduleDescription: moduleDescription,
                              token: t.map { .init(label: $0.label, serial: $0.serial, model: $0.model, manufacturer: $0.manufacturer) },
                              tokenAvailable: err == nil && t != nil, tokenError: err, algorithms: algorithms,
                              selfTestAt: at.map(Timestamp.string))
    }

    private let selfTestDone = NSCondition()
    private var selfTestRunning = false

    /// Runs the start-up self-test on its own thread, so byokd answers (status) at once; wraps
    /// that arrive meanwhile wait for the verdicts.
    public func startSelfTest() {
        selfTestDone.lock(); selfTestRunning = true; selfTestDone.unlock()
        let t = Thread { [self] in
            do { try runSelfTest() } catch {
                logger.error("the mechanism self-test could not run; no algorithm is enabled", metadata: ["error": "\(error)"])
            }
        }
        t.start()
    }

    @discardableResult
    public func runSelfTest() throws -> [AlgorithmStatus] {
        selfTestDone.lock(); selfTestRunning = true; selfTestDone.unlock()
        defer { selfTestDone.lock(); selfTestRunning = false; selfTestDone.broadcast(); selfTestDone.unlock() }
        let results = try guarded("self-test") {
            try withSession { session, token in try SelfTest(session: session, token: token).run() }
        }
        lock.lock()
        for r in results { verdicts[r.algorithm] = r }
        selfTestAt = Date()
        lock.unlock()
        for r in results {
            if r.state == .passed {
                logger.info("self-test passed", metadata: ["algorithm": "\(r.algorithm.rawValue)", "via": "\(r.route?.description ?? "")"])
            } else {
                logger.warning("self-test: algorithm disabled", metadata: ["algorithm": "\(r.algorithm.rawValue)", "state": "\(r.state.rawValue)", "reason": "\(r.reason ?? "")"])
            }
        }
        return results
    }

    public func listKeys() throws -> KeyListResponse {
        try guarded("keys list") {
            try withSession(retry: true) { session, token in
                let store = KeyStore(session: session, token: token)
                return KeyListResponse(keys: try store.keys().map(store.info))
            }
        }
    }

    public func generate(_ request: GenerateRequest) throws -> KeyInfo {
        guard let spec = KeySpec(rawValue: request.spec.uppercased()) else {
            throw ByokError(.keySpecUnknown, "unknown key spec \"\(request.spec)\"; AWS's names are \(KeySpec.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return try guarded("keys generate") {
            try withSession { session, token in
                let store = KeyStore(session: session, token: token)
                let key: TokenKey
                do { key = try store.generate(label: request.label, spec: spec) } catch let e as PKCS11Error
                    where [.curveNotSupported, .keySizeRange, .mechanismInvalid, .init(rawValue: 0x130)].contains(e.returnValue) {
                    // 0x130 is CKR_DOMAIN_PARAMS_INVALID, which NSS answers for secp256k1.
                    throw ByokError(.tokenLacksAlgorithm, "token \"\(token.label)\" (\(token.model)) cannot generate \(spec.rawValue) keys: \(TokenService.explain(e))")
                }
                logger.info("generated key", metadata: ["label": "\(key.label)", "id": "\(key.id.hex)", "spec": "\(spec.rawValue)"])
                return store.info(key)
            }
        }
    }

    public func wrap(_ request: WrapRequest) throws -> WrapResponse {
        // Everything about the parameters is checked before the token is touched.
        let params = try Self.parameters(request.parameters)
        let resolved = try params.resolve(requested: request.wrappingAlgorithm)
        return try guarded("wrap") {
            try withSession(retry: true) { session, token in
                try wrapOne(key: request.key, params: params, resolved: resolved, session: session, token: token)
            }
        }
    }

    /// Wraps a batch on one session, calling `deliver` with each group of results once the group's
    /// wraps are done (the caller audits and streams them). A failing entry does not stop the others.
    public func wrapBatch(_ entries: [BatchWrapRequest.Entry], groupSize: Int = 100,
                          deliver: ([(Int, Result<WrapResponse, ByokError>)]) throws -> Void) throws {
        var start = 0
        while start < entries.count {
            let slice = Array(entries[start..<min(start + groupSize, entries.count)].enumerated()).map { ($0.offset + start, $0.element) }
            // The group's wraps run on as many sessions as the pool has, in parallel.
            var results = [(Int, Result<WrapResponse, ByokError>)?](repeating: nil, count: slice.count)
            let resultsLock = NSLock()
            DispatchQueue.concurrentPerform(iterations: slice.count) { j in
                let (i, entry) = slice[j]
                let outcome: Result<WrapResponse, ByokError>
                do {
                    let params = try Self.parameters(entry.parameters)
                    let resolved = try params.resolve(requested: entry.wrappingAlgorithm)
                    outcome = .success(try guarded("wrap") {
                        try withSession(retry: true) { session, token in
                            try wrapOne(key: entry.key, params: params, resolved: resolved, session: session, token: token)
                        }
                    })
                } catch let e as ByokError {
                    outcome = .failure(e)
                } catch {
                    outcome = .failure(ByokError(.internal, "\(error)"))
                }
                resultsLock.lock(); results[j] = (i, outcome); resultsLock.unlock()
            }
            try deliver(results.compactMap { $0 })
            start += groupSize
        }
    }

    let kmsLock = NSLock()
    var kmsCached: KMSClient?
    private let wrappingKeys = WrappingKeyCache()
    private var keyCache: [String: (key: TokenKey, info: KeyInfo, checked: Date)] = [:]
    /// How long a cached key's handle is trusted without asking the token again. Handles of deleted
    /// objects make C_WrapKey fail (and the cache is dropped); this bounds the window in which a
    /// key deleted and replaced by another tool could be mistaken for the old one.
    static let keyRecheckInterval: TimeInterval = 1

    /// A key by reference, from the cache when its handle still names the same object (one
    /// C_GetAttributeValue at most each second, instead of a search, attribute reads and a
    /// check-value computation every time).
    func key(_ reference: String, store: KeyStore) throws -> (TokenKey, KeyInfo) {
        let now = Date()
        lock.lock()
        let hit = keyCache[reference]
        lock.unlock()
        if let hit {
            if now.timeIntervalSince(hit.checked) < Self.keyRecheckInterval { return (hit.key, hit.info) }
            if let v = try? store.session.attributes(hit.key.handle, [.label, .id, .class]),
               v.string(.label) == hit.key.label, (v[.id] ?? []) == hit.key.id, v.objectClass == hit.key.objectClass {
                lock.lock(); keyCache[reference]?.checked = now; lock.unlock()
                return (hit.key, hit.info)
            }
        }
        let key = try store.find(reference)
        let info = store.info(key)
        lock.lock()
        if keyCache.count > 256 { keyCache.removeAll() }
        keyCache[reference] = (key, info, now)
        lock.unlock()
        return (key, info)
    }

    /// HMAC of `data` with an HMAC key on the token (for the audit log's MACs); nil if the key is
    /// missing or the token cannot sign now.
    public func hmac(key reference: String, _ data: [UInt8]) -> [UInt8]? {
        try? withSession(retry: true) { session, token in
            let (key, _) = try self.key(reference, store: KeyStore(session: session, token: token))
            guard let spec = key.spec, case .hmac(let hash, _) = spec.kind else { return nil }
            return try session.sign(.hmac(hash), key: key.handle, data: data)
        }
    }

    private func forgetKey(_ reference: String) {
        lock.lock(); keyCache[reference] = nil; lock.unlock()
    }

    func wrapOne(key reference: String, params: ImportParameters, resolved: ImportParameters.Resolved,
                         session: Session, token: TokenInfo, retry: Bool = true) throws -> WrapResponse {
        let store = KeyStore(session: session, token: token)
        let (key, info) = try self.key(reference, store: store)
        guard let spec = key.spec else {
            throw ByokError(.keyNotImportable, "key \"\(key.label)\" is \(key.typeDescription), which is no AWS KMS key spec (\(KeySpec.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        try ImportRules.check(spec: spec, algorithm: resolved.algorithm, wrappingKeyBits: resolved.wrappingKey.bits, kmsKeySpec: params.kmsKeySpec)
        if key.extractable == false {
            throw ByokError(.keyNotExtractable, "key \"\(key.label)\" has CKA_EXTRACTABLE=false, so the token will not wrap it; it cannot be imported into AWS KMS")
        }
        let route = try self.route(for: resolved.algorithm, token: token)
        let wrapper = OnTokenWrap(session: session, token: token)
        var blob: [UInt8]
        let wrappingKey = try wrappingKeys.handle(for: resolved.wrappingKey, validTo: params.validTo, session: session, token: token)
        do {
            blob = try wrapper.wrap(key: key.handle, with: resolved.algorithm, route: route, wrappingKey: wrappingKey)
        } catch let e as PKCS11Error where retry && [0x60, 0x82, 0x113].contains(e.returnValue?.rawValue ?? 0) {
            // CKR_KEY_HANDLE_INVALID, CKR_OBJECT_HANDLE_INVALID, CKR_WRAPPING_KEY_HANDLE_INVALID: a
            // cached handle is gone (the key deleted, or the wrapping key's session closed). Look
            // both up again and retry once.
            wrappingKeys.forget(resolved.wrappingKey)
            forgetKey(reference)
            _ = e
            return try wrapOne(key: reference, params: params, resolved: resolved, session: session, token: token, retry: false)
        }
        let hash = resolved.algorithm.hash!.rawValue
        let manifest = Manifest(
            kmsKeyId: params.kmsKeyId, wrappingAlgorithm: resolved.algorithm.rawValue,
            wrappingKeySpec: resolved.wrappingKeySpec.rawValue, wrappingPublicKeySha256: resolved.wrappingKey.sha256.hex,
            parametersValidTo: params.validTo.map(Timestamp.string),
            key: .init(label: key.label, id: key.id.hex, spec: spec.rawValue, kcv: info.kcv, publicKeySha256: info.publicKeySha256),
            token: .init(label: token.label, serial: token.serial, model: token.model),
            wrapMechanism: "C_WrapKey \(route.description) (\(hash), MGF1-\(hash))",
            encryptedKeyMaterialSha256: SoftwareCrypto.sha256(blob).hex, importTokenSha256: SoftwareCrypto.sha256(params.importToken).hex,
            createdAt: Timestamp.string(Date()), byokdVersion: ByokVersion.current)
        logger.info("wrapped key", metadata: ["label": "\(key.label)", "id": "\(key.id.hex)", "spec": "\(spec.rawValue)",
                                              "algorithm": "\(resolved.algorithm.rawValue)", "wrappingKeySha256": "\(manifest.wrappingPublicKeySha256)",
                                              "kmsKeyId": "\(params.kmsKeyId ?? "-")"])
        return WrapResponse(manifest: manifest, encryptedKeyMaterial: Data(blob).base64EncodedString(),
                            importToken: Data(params.importToken).base64EncodedString())
    }

    /// How this token does `algorithm`, from the self-test; refused with the reason if it cannot.
    func route(for algorithm: WrappingAlgorithm, token: TokenInfo) throws -> WrapRoute {
        // Requests that arrive while the start-up self-test runs wait for its verdicts.
        selfTestDone.lock()
        let deadline = Date().addingTimeInterval(120)
        while selfTestRunning && Date() < deadline { _ = selfTestDone.wait(until: deadline) }
        selfTestDone.unlock()
        lock.lock()
        let v = verdicts
        lock.unlock()
        guard let verdict = v[algorithm] else {
            throw ByokError(.tokenLacksAlgorithm, "\(algorithm.rawValue) has not passed the mechanism self-test on token \"\(token.label)\"; run `byokctl selftest`")
        }
        if verdict.state == .passed, let r = verdict.route { return r }
        let finding = verdict.state == .failed ? "the mechanism self-test caught it producing a wrong result" : "the mechanism self-test found it unsupported"
        var message = "token \"\(token.label)\" (\(token.model)) cannot wrap with \(algorithm.rawValue): \(finding) (\(verdict.reason ?? "no reason given"))"
        let sibling: WrappingAlgorithm? = [.RSAES_OAEP_SHA_256: .RSAES_OAEP_SHA_1, .RSA_AES_KEY_WRAP_SHA_256: .RSA_AES_KEY_WRAP_SHA_1][algorithm]
        if let sibling, v[sibling]?.state == .passed {
            message += "; this token supports \(algorithm.isHybrid ? "RSA_AES_KEY_WRAP" : "OAEP") only with SHA-1; use \(sibling.rawValue) or another token"
        } else {
            message += "; use another algorithm (`byokctl status` lists those that passed) or another token"
        }
        throw ByokError(.tokenLacksAlgorithm, message)
    }

    static func parameters(_ input: ParametersInput) throws -> ImportParameters {
        func bytes(_ b64: String, _ what: String) throws -> [UInt8] {
            guard let d = Data(base64Encoded: b64) else { throw ByokError(.badRequest, "\(what) in the request is not base64") }
            return [UInt8](d)
        }
        let given = [input.awsJSON != nil, input.zip != nil, input.publicKey != nil || input.importToken != nil].filter { $0 }.count
        guard given == 1 else {
            throw ByokError(.badRequest, given == 0 ? "no import parameters given: pass --params FILE.json|FILE.zip, or --public-key and --import-token"
                                                    : "give the import parameters one way only: --params, or --public-key with --import-token")
        }
        var p: ImportParameters
        if let j = input.awsJSON {
            p = try ImportParameters.parse(awsJSON: try bytes(j, "awsJSON"))
        } else if let z = input.zip {
            p = try ImportParameters.parse(zip: try bytes(z, "zip"))
        } else {
            guard let pk = input.publicKey, let it = input.importToken else {
                throw ByokError(.badRequest, "--public-key and --import-token go together; one of them is missing")
            }
            p = try ImportParameters.parse(publicKey: try bytes(pk, "publicKey"), importToken: try bytes(it, "importToken"))
        }
        if let id = input.kmsKeyId, !id.isEmpty {
            if let known = p.kmsKeyId, known != id, !id.hasSuffix(known), !known.hasSuffix(id) {
                throw ByokError(.paramsInvalid, "--kms-key-id \(id) differs from the key id in the parameters (\(known))")
            }
            p.kmsKeyId = p.kmsKeyId ?? id
        }
        if let v = input.validTo {
            guard let d = Timestamp.parse(v) else { throw ByokError(.badRequest, "validTo \"\(v)\" is not an ISO 8601 time") }
            if p.validTo == nil { p.validTo = d }
        }
        return p
    }

    /// Turns token errors into operator sentences with stable codes; ByokErrors pass through.
    func guarded<R>(_ what: String, _ body: () throws -> R) throws -> R {
        do { return try body() } catch let e as ByokError { throw e } catch let e as PKCS11Error {
            let rv = e.returnValue
            if rv == .keyUnextractable || rv == .keyNotWrappable {
                throw ByokError(.keyNotExtractable, "the token will not wrap this key (\(TokenService.explain(e)))")
            }
            if let rv, rv.meansSessionLost {
                throw ByokError(.tokenUnavailable, "the token went away during \(what) (\(TokenService.explain(e))); byokd reconnects on the next request")
            }
            throw ByokError(.tokenError, "the token failed during \(what): \(TokenService.explain(e))")
        } catch {
            throw ByokError(.internal, "\(what) failed: \(error)")
        }
    }

    static func explain(_ e: PKCS11Error) -> String {
        guard case .call(let f, let rv) = e else { return "\(e)" }
        let meaning: [ReturnValue: String] = [
            .pinIncorrect: "the PIN is wrong", .pinLocked: "the PIN is locked", .deviceRemoved: "the token was removed",
            .tokenNotPresent: "no token is present", .deviceError: "the device reported an error",
            .sessionHandleInvalid: "the session is gone", .sessionClosed: "the session was closed",
            .userNotLoggedIn: "the session is no longer logged in", .argumentsBad: "the token rejected the parameters",
            .mechanismInvalid: "the token lacks this mechanism", .mechanismParamInvalid: "the token rejected the mechanism parameters",
            .keyUnextractable: "the key is not extractable", .keySizeRange: "the token does not support this key size",
            .curveNotSupported: "the token does not support this curve", .templateInconsistent: "the token rejected the key attributes",
            .functionNotSupported: "the module does not implement this function",
        ]
        return "\(f) returned \(rv)" + (meaning[rv].map { " (\($0))" } ?? "")
    }
}
