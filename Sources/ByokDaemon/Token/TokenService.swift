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
    let kmsClients: KMSClientCache
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
        return StatusResponse(version: ByokVersion.current, module: connection.module.path, moduleDescription: connection.moduleDescription,
                              token: token.map { .init(label: $0.label, serial: $0.serial, model: $0.model, manufacturer: $0.manufacturer) },
                              tokenAvailable: token != nil, tokenError: error, algorithms: algorithms,
                              selfTestAt: verdicts.map { Timestamp.string($0.at) })
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
    public func generate(_ request: GenerateRequest) throws -> KeyInfo {
        let spec = try KeySpec(named: request.spec)
        return try TokenErrors.guarded("keys generate") {
            try withSession { session, token in
                let store = KeyStore(session: session, token: token)
                let key: TokenKey
                do { key = try store.generate(label: request.label, spec: spec) } catch let e as PKCS11Error
                    where [.curveNotSupported, .keySizeRange, .mechanismInvalid, .domainParamsInvalid].contains(e.returnValue) {
                    // CKR_DOMAIN_PARAMS_INVALID is what NSS answers for secp256k1.
                    throw ByokError(.tokenLacksAlgorithm, "token \"\(token.label)\" (\(token.model)) cannot generate \(spec.rawValue) keys: \(TokenErrors.explain(e))")
                }
                logger.info("generated key", metadata: ["label": "\(key.label)", "id": "\(key.id.hex)", "spec": "\(spec.rawValue)"])
                return store.info(key)
            }
        }
    }

    /// `POST /v1/wrap`: the parameters checked before the token is touched, then one wrap on it.
    public func wrap(_ request: WrapRequest) throws -> WrapResponse {
        let params = try ImportParameters(request.parameters)
        let resolved = try params.resolve(requested: request.wrappingAlgorithm)
        return try wrap(key: request.key, resolved)
    }

    /// Wraps `reference` under checked parameters (a side-effect-free token operation, retried once
    /// after a reconnect).
    func wrap(key reference: String, _ resolved: ImportParameters.Resolved) throws -> WrapResponse {
        try TokenErrors.guarded("wrap") {
            try withSession(retry: true) { session, token in
                try wrapOne(key: reference, resolved, session: session, token: token)
            }
        }
    }

    /// Wraps a batch, calling `deliver` with each group of results once the group's wraps are done
    /// (the caller audits and streams them). A group's wraps run in parallel on the pool's
    /// sessions; a failing entry does not stop the others.
    public func wrapBatch(_ requests: [WrapRequest], groupSize: Int = 100,
                          deliver: ([(Int, Result<WrapResponse, ByokError>)]) throws -> Void) throws {
        var start = 0
        while start < requests.count {
            let range = start..<min(start + groupSize, requests.count)
            let results = Mutex([Result<WrapResponse, ByokError>?](repeating: nil, count: range.count))
            DispatchQueue.concurrentPerform(iterations: range.count) { j in
                let outcome = Result { try wrap(requests[range.lowerBound + j]) }.mapError(ByokError.wrapping)
                results.withLock { $0[j] = outcome }
            }
            try deliver(results.withLock { $0 }.enumerated().map { (range.lowerBound + $0.offset, $0.element!) })
            start = range.upperBound
        }
    }

    private func wrapOne(key reference: String, _ resolved: ImportParameters.Resolved,
                         session: Session, token: TokenInfo, retry: Bool = true) throws -> WrapResponse {
        let params = resolved.parameters
        let store = KeyStore(session: session, token: token)
        let (key, info) = try keys.key(reference, store: store)
        try auditMacKey?.refuseToRelease(key)
        guard let spec = key.spec else {
            throw ByokError(.keyNotImportable, "key \"\(key.label)\" is \(key.typeDescription), which is no AWS KMS key spec (\(KeySpec.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        try ImportRules.check(spec: spec, algorithm: resolved.algorithm, wrappingKeyBits: resolved.wrappingKey.bits, kmsKeySpec: params.kmsKeySpec)
        if key.extractable == false {
            throw ByokError(.keyNotExtractable, "key \"\(key.label)\" has CKA_EXTRACTABLE=false, so the token will not wrap it; it cannot be imported into AWS KMS")
        }
        let route = try self.route(for: resolved.algorithm, token: token)
        let wrappingKey = try wrappingKeys.handle(for: resolved.wrappingKey, validTo: params.validTo, session: session, token: token)
        let blob: [UInt8]
        do {
            blob = try OnTokenWrap(session: session, token: token).wrap(key: key.handle, with: resolved.algorithm, route: route, wrappingKey: wrappingKey)
        } catch let e as PKCS11Error where retry && [.keyHandleInvalid, .objectHandleInvalid, .wrappingKeyHandleInvalid].contains(e.returnValue) {
            // A cached handle is gone (the key deleted, or the wrapping key's session closed):
            // look both up again and retry once.
            wrappingKeys.forget(resolved.wrappingKey)
            keys.forget(reference)
            return try wrapOne(key: reference, resolved, session: session, token: token, retry: false)
        }
        let hash = resolved.algorithm.hash!.rawValue
        let manifest = Manifest(
            kmsKeyId: params.kmsKeyId, wrappingAlgorithm: resolved.algorithm.rawValue,
            wrappingKeySpec: resolved.wrappingKeySpec.rawValue, wrappingPublicKeySha256: resolved.wrappingKey.sha256.hex,
            parametersValidTo: params.validTo.map(Timestamp.string),
            key: .init(info, spec: spec.rawValue),
            token: .init(label: token.label, serial: token.serial, model: token.model),
            wrapMechanism: "C_WrapKey \(route.description) (\(hash), MGF1-\(hash))",
            encryptedKeyMaterialSha256: Digest.sha256(blob).hex, importTokenSha256: Digest.sha256(params.importToken).hex,
            createdAt: Timestamp.string(Date()), byokdVersion: ByokVersion.current)
        logger.info("wrapped key", metadata: ["label": "\(key.label)", "id": "\(key.id.hex)", "spec": "\(spec.rawValue)",
                                              "algorithm": "\(resolved.algorithm.rawValue)", "wrappingKeySha256": "\(manifest.wrappingPublicKeySha256)",
                                              "kmsKeyId": "\(params.kmsKeyId ?? "-")"])
        return WrapResponse(manifest: manifest, encryptedKeyMaterial: Data(blob).base64EncodedString(),
                            importToken: Data(params.importToken).base64EncodedString())
    }

    /// How this token does `algorithm`, from the self-test; refused with the reason if it cannot.
    func route(for algorithm: WrappingAlgorithm, token: TokenInfo) throws -> WrapRoute {
        // Requests that arrive while the self-test runs wait for its verdicts.
        let verdicts = selfTest.settled()?.byAlgorithm ?? [:]
        guard let verdict = verdicts[algorithm] else {
            throw ByokError(.tokenLacksAlgorithm, "\(algorithm.rawValue) has not passed the mechanism self-test on token \"\(token.label)\"; run `byokctl selftest`")
        }
        if verdict.state == .passed, let r = verdict.route { return r }
        let finding = verdict.state == .failed ? "the mechanism self-test caught it producing a wrong result" : "the mechanism self-test found it unsupported"
        var message = "token \"\(token.label)\" (\(token.model)) cannot wrap with \(algorithm.rawValue): \(finding) (\(verdict.reason ?? "no reason given"))"
        let sibling: WrappingAlgorithm? = [.RSAES_OAEP_SHA_256: .RSAES_OAEP_SHA_1, .RSA_AES_KEY_WRAP_SHA_256: .RSA_AES_KEY_WRAP_SHA_1][algorithm]
        if let sibling, verdicts[sibling]?.state == .passed {
            message += "; this token supports \(algorithm.isHybrid ? "RSA_AES_KEY_WRAP" : "OAEP") only with SHA-1; use \(sibling.rawValue) or another token"
        } else {
            message += "; use another algorithm (`byokctl status` lists those that passed) or another token"
        }
        throw ByokError(.tokenLacksAlgorithm, message)
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
