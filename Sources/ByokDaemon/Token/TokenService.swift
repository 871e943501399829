import BYOK
import ByokAPI
import Foundation
import Logging
import PKCS11
import Synchronization

/// The operations on the token: status, keys, generate, wrap (one or a batch), the mechanism
/// self-test, and the audit log's HMAC. Each part of its state has one owner: the connection
/// (`TokenConnection`), the self-test verdicts (`SelfTestVerdicts`), cached key and wrapping-key
/// handles (`KeyCache`, `WrappingKeyCache`) and the KMS client (`KMSClientCache`).
public final class TokenService: Sendable {
    let logger: Logger
    let connection: TokenConnection
    let selfTest = SelfTestVerdicts()
    let keys = KeyCache()
    let wrappingKeys = WrappingKeyCache()
    let parameters = ParametersCache()
    let kmsClients: KMSClientCache
    /// What the start-up check found about CKA_WRAP_WITH_TRUSTED (nil: `trustedWrapping` is off).
    let trustCheck = Mutex<TrustedWrappingCheck?>(nil)
    /// byokd's own key for audit MACs (`auditMacKey`): never wrapped, never importable.
    let auditMacKey: AuditMacKey?

    public init(config: Configuration, logger: Logger) throws {
        self.logger = logger
        auditMacKey = config.auditMacKey.map(AuditMacKey.init(reference:))
        kmsClients = KMSClientCache(config: config, logger: logger)
        let keys = self.keys, wrappingKeys = self.wrappingKeys
        // Handles cached in sessions that are gone are void after a (re)connect.
        connection = try TokenConnection(config: config, logger: logger) {
            keys.removeAll()
            wrappingKeys.invalidateAll()
        }
    }

    func withSession<R>(retry: Bool = false, _ body: (Session, TokenInfo) throws -> R) throws -> R {
        try connection.withSession(retry: retry, body)
    }

    // MARK: Operations

    /// `GET /v1/status`: the module, the token or why it is unavailable, and the self-test's verdicts.
    public func status() -> StatusResponse {
        _ = try? connection.connectedToken()
        let verdicts = selfTest.latest
        let algorithms = WrappingAlgorithm.usable.map { a -> StatusResponse.Algorithm in
            verdicts?.byAlgorithm[a]?.statusLine ?? .init(name: a.rawValue, state: "untested")
        }
        var token: TokenInfo?, error: String?
        switch connection.current {
        case .connected(let t): token = t
        case .lost(let reason): error = reason
        }
        // Flags are read now: PIN counters change between requests.
        let live = token != nil ? connection.liveTokenInfo() ?? token : nil
        let selection = connection.selection
        var status = StatusResponse(version: ByokVersion.current, module: connection.module.path, moduleDescription: connection.moduleDescription,
                              token: token.map { .init(label: $0.label, serial: $0.serial, model: $0.model, manufacturer: $0.manufacturer) },
                              tokenAvailable: token != nil, tokenError: error, algorithms: algorithms,
                              selfTestAt: verdicts.map { Timestamp.string($0.at) },
                              moduleEntryPoint: connection.module.entryPoint.description,
                              tokenFlags: live?.flagNames, tokenNotes: live.map(TokenNotes.notes), tokenSelection: selection?.reason,
                              fips: token.flatMap { FIPSMode.status(module: connection.module, token: $0, slot: try? selection?.slot.slotInfo()) })
        status.trustedWrapping = trustCheck.withLock { $0 }.map { $0.enforced ? $0.finding : "not enforced: \($0.finding)" } ?? "off"
        return status
    }

    /// With `trustedWrapping` on: removes trusted objects a crash may have left, and proves the
    /// token enforces CKA_WRAP_WITH_TRUSTED; a token that does not is refused (byokd does not start).
    public func prepareTrustedWrapping() throws {
        guard connection.config.resolvedTrustedWrapping else { return }
        destroyTrustedObjects()
        let check = try TokenErrors.guarded("the trusted-wrapping check") {
            try withSession { session, _ in try TrustedWrappingCheck.run(session: session) }
        }
        trustCheck.withLock { $0 = check }
        guard check.enforced else {
            throw ByokError(.trustedWrappingUnavailable, "trustedWrapping is on but this token does not enforce it: \(check.finding); byokd will not start, because the token would not be the last line")
        }
        logger.notice("trusted wrapping: \(check.finding)")
    }

    /// Runs the start-up self-test on its own thread, so byokd answers (status) at once; wraps
    /// that arrive meanwhile wait for the verdicts.
    public func startSelfTest() {
        selfTest.begin()
        Thread { [self] in
            do { try runSelfTest() } catch {
                logger.error("the mechanism self-test could not run; no algorithm is enabled", metadata: ["error": "\(error)"])
            }
        }.start()
    }

    /// At shutdown, once no request is in flight: lets a self-test in progress finish, then closes
    /// the sessions and finalizes the module on the caller's thread.
    public func shutdown() {
        _ = selfTest.settled(timeout: 30)
        connection.close()
    }

    /// `POST /v1/selftest`: every wrapping algorithm tried on the token with throwaway keys.
    @discardableResult
    public func runSelfTest() throws -> [AlgorithmStatus] {
        selfTest.begin()
        var results: [AlgorithmStatus]?
        defer { selfTest.end(results) }
        results = try TokenErrors.guarded("self-test") {
            try withSession { session, token in try SelfTest(session: session, token: token).run() }
        }
        for r in results ?? [] {
            if r.state == .passed {
                logger.info("self-test passed", metadata: ["algorithm": "\(r.algorithm.rawValue)", "via": "\(r.route?.description ?? "")"])
            } else {
                logger.warning("self-test: algorithm disabled", metadata: ["algorithm": "\(r.algorithm.rawValue)", "state": "\(r.state.rawValue)", "reason": "\(r.reason ?? "")"])
            }
        }
        return results ?? []
    }

    /// `GET /v1/keys`
    public func listKeys() throws -> KeyListResponse {
        try TokenErrors.guarded("keys list") {
            try withSession(retry: true) { session, token in
                let store = KeyStore(session: session, token: token)
                return KeyListResponse(keys: try store.keys().map { key in auditMacKey.map { $0.mark(key, store.info(key)) } ?? store.info(key) })
            }
        }
    }

    /// `POST /v1/keys`: a key generated on the token, sensitive and extractable.
    /// A spec no algorithm that passed the self-test can export is refused before the token is
    /// touched, unless the request allows it (the answer then says so in `warnings`).
    public func generate(_ request: GenerateRequest) throws -> KeyInfo {
        let spec = try KeySpec(named: request.spec)
        var warnings: [String] = []
        if let problem = selfTest.exportProblem(for: spec) {
            guard request.allowUnexportable == true else {
                throw ByokError(.tokenLacksAlgorithm, "\(problem). byokd makes no key that can never leave the token for AWS KMS; to make it anyway (for another use), pass --allow-unexportable")
            }
            warnings.append("made with --allow-unexportable although \(problem)")
        }
        return try TokenErrors.guarded("keys generate") {
            try withSession { session, token in
                let store = KeyStore(session: session, token: token)
                let key: TokenKey
                do { key = try store.generate(label: request.label, spec: spec, wrapWithTrusted: connection.config.resolvedTrustedWrapping) } catch let e as PKCS11Error
                    where TokenErrors.code(for: e) == .tokenLacksAlgorithm {
                    // CKR_DOMAIN_PARAMS_INVALID is what NSS answers for secp256k1.
                    throw ByokError(.tokenLacksAlgorithm, "token \"\(token.label)\" (\(token.model)) cannot generate \(spec.rawValue) keys: \(TokenErrors.explain(e))")
                }
                var info = store.info(key)
                if !warnings.isEmpty { info.warnings = warnings }
                logger.info("generated key", metadata: ["label": "\(Display.escaped(key.label))", "id": "\(key.id.hex)", "spec": "\(spec.rawValue)",
                                                        "fingerprint": "\(info.fingerprint ?? info.noFingerprint ?? "-")"])
                if !warnings.isEmpty { logger.warning("generated a key no passed algorithm can export", metadata: ["label": "\(Display.escaped(key.label))", "spec": "\(spec.rawValue)"]) }
                return info
            }
        }
    }

    /// `POST /v1/wrap`: the parameters checked before the token is touched, then one wrap on it.
    public func wrap(_ request: WrapRequest) throws -> WrapResponse {
        try wrap(request, logged: true, found: nil)
    }

    /// `logged`: whether the wrap gets its own (debug) log line; a batch logs one per group instead.
    /// `found`: the key, when a batch group searched for it already.
    private func wrap(_ request: WrapRequest, logged: Bool, found: FoundKey?) throws -> WrapResponse {
        let resolved = try parameters.resolve(request.parameters, algorithm: request.wrappingAlgorithm)
        return try TokenErrors.guarded("wrap") {
            try withSession(retry: true) { session, token in
                var job = WrapJob(reference: request.key, resolved: resolved, source: .operator)
                job.logged = logged
                job.found = found
                return try wrapOne(job, session: session, token: token)
            }
        }
    }

    /// A key a batch group searched for once, the handle generation it was found under, and when.
    struct FoundKey: Sendable {
        let key: TokenKey
        let info: KeyInfo
        let generation: UInt64
        let at: Date

        /// Whether a wrap may use it instead of searching: same generation (no reconnect or Security
        /// Officer step since), and no older than `KeyCache.recheckInterval` (a slow token's group).
        func usable(generation now: UInt64) -> Bool {
            generation == now && Date().timeIntervalSince(at) < KeyCache.recheckInterval
        }
    }

    /// A wrap checked now and run later (after a second operator's approval or the Security
    /// Officer's step): the parameters resolved, the key found and checked on the token.
    func plan(_ request: WrapRequest) throws -> WrapPlan {
        try plan(key: request.key, parameters.resolve(request.parameters, algorithm: request.wrappingAlgorithm), source: .operator, kmsKeyIdAsGiven: request.parameters.kmsKeyId, kmsImport: nil)
    }

    func plan(key reference: String, _ resolved: ImportParameters.Resolved, source: WrappingKeySource,
              kmsKeyIdAsGiven: String?, kmsImport: KMSImportRequest?) throws -> WrapPlan {
        let info = try TokenErrors.guarded("wrap") {
            try withSession(retry: true) { session, token in
                let (key, info) = try keys.key(reference, store: KeyStore(session: session, token: token))
                try checkWrappable(key, resolved, token: token, trusted: connection.config.resolvedTrustedWrapping)
                return info
            }
        }
        return WrapPlan(keyReference: reference, key: info, resolved: resolved, source: source, kmsKeyIdAsGiven: kmsKeyIdAsGiven, kmsImport: kmsImport)
    }

    /// Runs a plan: the key must still be the one the plan names.
    func wrap(_ plan: WrapPlan) throws -> WrapResponse {
        try TokenErrors.guarded("wrap") {
            try withSession(retry: true) { session, token in
                try wrapOne(.init(plan), session: session, token: token)
            }
        }
    }

    /// The Security Officer step (`trustedWrapping`): the SO logs in (byokd's other token work
    /// waits), makes a trusted copy of the plan's wrapping key (and, for the stepwise RSA_AES
    /// route, a trusted ephemeral AES key) as public token objects and logs out; the user logs in
    /// again; the wrap runs under the trusted copies, which are then destroyed.
    func trustedWrap(_ plan: WrapPlan, soPIN: PIN, tag: String) throws -> WrapResponse {
        let label = OnTokenWrap.trustedLabelPrefix + tag
        let route = try self.route(for: plan.resolved.algorithm, token: connection.connectedToken())
        defer { destroyTrustedObjects(label: label) }
        try TokenErrors.guarded("the Security Officer step") {
            try connection.asSecurityOfficer(soPIN) { session, token in
                let w = OnTokenWrap(session: session, token: token)
                _ = try w.createTrustedWrappingKey(plan.resolved.wrappingKey, label: label)
                if route == .steps || route == .stepsKWP { _ = try w.createTrustedEphemeralKey(label: label) }
            }
        }
        return try TokenErrors.guarded("wrap") {
            try withSession { session, token in
                let rsa = try session.findObjects([.class(.publicKey), .token(true), .label(label)])
                let aes = try session.findObjects([.class(.secretKey), .token(true), .label(label)])
                guard rsa.count == 1, aes.count <= 1 else {
                    throw ByokError(.trustedWrappingUnavailable, "the trusted copy of the wrapping key is not on token \"\(token.label)\" as the Security Officer made it; nothing was wrapped")
                }
                var job = WrapJob(plan)
                job.trusted = (rsa[0], aes.first)
                return try wrapOne(job, session: session, token: token)
            }
        }
    }

    /// Destroys what a Security Officer step made (also what a crash left, at start).
    func destroyTrustedObjects(label: String? = nil) {
        _ = try? withSession { session, _ in
            let template: [PKCS11.Attribute] = [.token(true)] + (label.map { [.label($0)] } ?? [])
            for h in try session.findObjects(template) {
                guard let l = try? session.attributes(h, [.label]).string(.label), l.hasPrefix(OnTokenWrap.trustedLabelPrefix) else { continue }
                do { try session.destroyObject(h) } catch {
                    logger.error("could not destroy a trusted object; a Security Officer should remove it", metadata: ["label": "\(Display.escaped(l))", "error": "\(error)"])
                }
            }
        }
    }

    /// Wraps one group of a batch, in parallel on the pool's sessions; a failing entry does not
    /// stop the others. Results in the group's order. The wraps log one line for the group.
    ///
    /// Each key the group names is searched for once, at the group's start (`KeyCache.key`: exactly
    /// one object, KEY_AMBIGUOUS otherwise), instead of once per entry: the search costs a software
    /// token a third of a wrap. A handle found is used only under the generation it was found in
    /// (no reconnect or Security Officer step since); otherwise, and for a key the search did not
    /// find, the entry searches on its own (and gets its own error).
    public func wrapGroup(_ requests: ArraySlice<WrapRequest>) -> [Result<WrapResponse, ByokError>] {
        let generation = connection.generation
        let found: [String: FoundKey] = (try? withSession(retry: true) { session, token -> [String: FoundKey] in
            let store = KeyStore(session: session, token: token)
            var found: [String: FoundKey] = [:]
            for reference in Set(requests.map(\.key)) {
                if let (key, info) = try? keys.key(reference, store: store) {
                    found[reference] = FoundKey(key: key, info: info, generation: generation, at: Date())
                }
            }
            return found
        }) ?? [:]
        let results = Mutex([Result<WrapResponse, ByokError>?](repeating: nil, count: requests.count))
        DispatchQueue.concurrentPerform(iterations: requests.count) { j in
            let request = requests[requests.startIndex + j]
            let outcome = Result { try wrap(request, logged: false, found: found[request.key]) }.mapError(ByokError.wrapping)
            results.withLock { $0[j] = outcome }
        }
        let all = results.withLock { $0 }.map { $0! }
        if logger.logLevel <= .info {
            let wrapped = all.filter { if case .success = $0 { true } else { false } }.count
            logger.info("wrapped batch entries", metadata: ["entries": "\(requests.startIndex)-\(requests.endIndex - 1)", "wrapped": "\(wrapped)",
                                                             "failed": "\(all.count - wrapped)"])
        }
        return all
    }

    /// One wrap as `wrapOne` runs it.
    struct WrapJob {
        let reference: String
        let resolved: ImportParameters.Resolved
        let source: WrappingKeySource
        /// The key the plan named: the wrap is refused if the reference now names another.
        var expected: KeyInfo? = nil
        /// The trusted wrapping key (and ephemeral AES key) the Security Officer made.
        var trusted: (rsa: ObjectHandle, aes: ObjectHandle?)? = nil
        /// Whether the wrap gets its own log line (a batch logs one per group).
        var logged = true
        /// The key, when a batch group searched for it already (`wrapGroup`).
        var found: FoundKey? = nil

        init(reference: String, resolved: ImportParameters.Resolved, source: WrappingKeySource) {
            self.reference = reference; self.resolved = resolved; self.source = source
        }

        init(_ plan: WrapPlan) {
            self.init(reference: plan.keyReference, resolved: plan.resolved, source: plan.source)
            expected = plan.key
        }
    }

    /// What must hold for `key` to be wrapped under `resolved`, checked before C_WrapKey.
    private func checkWrappable(_ key: TokenKey, _ resolved: ImportParameters.Resolved, token: TokenInfo, trusted: Bool) throws {
        try auditMacKey?.refuseToRelease(key)
        guard let spec = key.spec else {
            throw ByokError(.keyNotImportable, "key \"\(Display.escaped(key.label))\" is \(key.typeDescription), which is no AWS KMS key spec (\(KeySpec.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        try CloudRules.check(provider: resolved.parameters.provider, spec: spec, algorithm: resolved.algorithm,
                             wrappingKeyBits: resolved.wrappingKey.bits, kmsKeySpec: resolved.parameters.kmsKeySpec)
        if key.extractable == false {
            throw ByokError(.keyNotExtractable, "key \"\(Display.escaped(key.label))\" has CKA_EXTRACTABLE=false, so the token will not wrap it; it cannot be imported into AWS KMS")
        }
        if trusted && key.wrapWithTrusted != true {
            throw ByokError(.keyNotExtractable, "key \"\(Display.escaped(key.label))\" lacks CKA_WRAP_WITH_TRUSTED, so the token would not hold its wrap to the Security Officer's control; with trustedWrapping on, byokd wraps only keys it generated that way")
        }
        _ = try route(for: resolved.algorithm, token: token)
    }

    private func wrapOne(_ job: WrapJob, session: Session, token: TokenInfo, retry: Bool = true) throws -> WrapResponse {
        let trustedWrapping = connection.config.resolvedTrustedWrapping
        if trustedWrapping && job.trusted == nil {
            throw ByokError(.trustedWrappingUnavailable, "with trustedWrapping on, every wrap waits for the Security Officer (`byokctl trust ID`); this one did not")
        }
        let params = job.resolved.parameters
        if let validTo = params.validTo, validTo <= Date() {
            // A held wrap approved late: the parameters' own check gives the sentence.
            _ = try params.resolve(requested: job.resolved.algorithm.rawValue)
        }
        let store = KeyStore(session: session, token: token)
        let (key, info) = if let found = job.found, found.usable(generation: connection.generation) {
            (found.key, found.info)
        } else {
            try keys.key(job.reference, store: store)
        }
        if let expected = job.expected, expected.id != info.id || expected.fingerprint != info.fingerprint {
            throw ByokError(.keyNotFound, "\"\(Display.escaped(job.reference))\" no longer names the key that was approved (id \(expected.id), now \(info.id)); nothing was wrapped — ask again")
        }
        try checkWrappable(key, job.resolved, token: token, trusted: trustedWrapping)
        let spec = key.spec!
        let route = try self.route(for: job.resolved.algorithm, token: token)
        let wrappingKey = try job.trusted?.rsa ?? wrappingKeys.handle(for: job.resolved.wrappingKey, validTo: params.validTo, session: session, token: token)
        let blob: [UInt8]
        do {
            blob = try OnTokenWrap(session: session, token: token).wrap(key: key.handle, with: job.resolved.algorithm, route: route,
                                                                        wrappingKey: wrappingKey, ephemeral: job.trusted?.aes,
                                                                        sizes: (job.resolved.wrappingKey.bits / 8, spec.maximumMaterialLength))
        } catch let e as PKCS11Error where retry && job.trusted == nil && [.keyHandleInvalid, .objectHandleInvalid, .wrappingKeyHandleInvalid].contains(e.returnValue) {
            // A cached handle is gone (the key deleted, or the wrapping key's session closed):
            // look both up again and retry once.
            wrappingKeys.forget(job.resolved.wrappingKey)
            keys.forget(job.reference)
            var again = job
            again.found = nil
            return try wrapOne(again, session: session, token: token, retry: false)
        }
        let hash = job.resolved.algorithm.hash!.rawValue
        let provider = params.provider
        var manifest = Manifest(
            kmsKeyId: params.kmsKeyId, wrappingAlgorithm: CloudRules.methodName(provider: provider, algorithm: job.resolved.algorithm, gcpMethod: params.gcpImportMethod),
            wrappingKeySpec: job.resolved.wrappingKeySpec.rawValue, wrappingPublicKeySha256: job.resolved.wrappingKey.sha256Hex,
            parametersValidTo: params.validTo.map(Timestamp.string),
            key: .init(info, spec: spec.rawValue),
            token: .init(label: token.label, serial: token.serial, model: token.model),
            wrapMechanism: "C_WrapKey \(route.description) (\(hash), MGF1-\(hash))",
            encryptedKeyMaterialSha256: Digest.sha256(blob).hex, importTokenSha256: provider == .aws ? job.resolved.importTokenSha256 : nil,
            createdAt: Timestamp.string(Date()), byokdVersion: ByokVersion.current,
            wrappingKeySource: job.source, trustedBySecurityOfficer: job.trusted == nil ? nil : true)
        if provider != .aws {
            manifest.provider = provider
            manifest.azureKid = params.azureKid
            manifest.gcpImportJob = params.gcpImportJob
            manifest.gcpImportMethod = params.gcpImportMethod?.rawValue
        }
        if job.logged && logger.logLevel <= .debug {
            logger.debug("wrapped key", metadata: ["label": "\(Display.escaped(key.label))", "id": "\(key.id.hex)", "spec": "\(spec.rawValue)",
                                                  "algorithm": "\(job.resolved.algorithm.rawValue)", "wrappingKeySha256": "\(manifest.wrappingPublicKeySha256)",
                                                  "source": "\(job.source.rawValue)", "kmsKeyId": "\(Display.escaped(params.kmsKeyId ?? "-"))"])
        }
        return WrapResponse(manifest: manifest, encryptedKeyMaterial: Data(blob).base64EncodedString(),
                            importToken: job.resolved.importTokenBase64)
    }

    /// How this token does `algorithm`, from the self-test; refused with the reason and the next
    /// step if it cannot (`SelfTestVerdicts.route`).
    func route(for algorithm: WrappingAlgorithm, token: TokenInfo) throws -> WrapRoute {
        try selfTest.route(for: algorithm, token: token)
    }

    /// The algorithms that passed the self-test.
    var passedAlgorithms: Set<WrappingAlgorithm> {
        Set((selfTest.latest?.byAlgorithm.values).map { $0.filter { $0.state == .passed }.map(\.algorithm) } ?? [])
    }
}

extension KeySpec {
    /// A key spec by AWS's name (any case), or KEY_SPEC_UNKNOWN listing the names.
    init(named name: String) throws {
        guard let spec = KeySpec(rawValue: name.uppercased()) else {
            throw ByokError(.keySpecUnknown, "unknown key spec \"\(name)\"; AWS's names are \(KeySpec.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        self = spec
    }
}
