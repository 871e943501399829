import BYOK
import ByokAPI
import Foundation
import KMSClient
import PKCS11

/// Online mode: byokd fetches the import parameters, wraps on the token and imports, with the
/// AWS credentials held by the service (its environment or the shared files).
extension TokenService {
    /// The KMS client, configured from byokd's environment on first use.
    func kmsClient() throws -> KMSClient {
        kmsLock.lock()
        defer { kmsLock.unlock() }
        if let c = kmsCached { return c }
        do {
            var cfg = try KMSConfiguration.resolve()
            if let t = config.kmsConnectTimeoutSeconds { cfg.connectTimeout = t }
            if let t = config.kmsTimeoutSeconds { cfg.totalTimeout = t }
            let c = KMSClient(config: cfg)
            kmsCached = c
            logger.info("AWS KMS client ready", metadata: ["endpoint": "\(cfg.endpoint.absoluteString)", "region": "\(cfg.region)",
                                                           "accessKeyId": "\(cfg.credentials.accessKeyId)"])
            return c
        } catch {
            throw ByokError(.kmsNotConfigured, "byokd cannot call AWS KMS: \(error)")
        }
    }

    static func byokError(_ e: KMSError) -> ByokError {
        switch e.kind {
        case .unreachable: return ByokError(.kmsUnreachable, "AWS KMS cannot be reached (\(e.message)); check the endpoint, proxy and network")
        case .timeout: return ByokError(.kmsTimeout, "AWS KMS did not answer \(e.operation) in time (\(e.message))")
        case .malformed: return ByokError(.kmsError, "AWS KMS answered \(e.operation) in a way byokd does not understand: \(e.message)")
        case .aws(let type):
            let code: ErrorCode = [
                "InvalidCiphertextException": .kmsInvalidCiphertext, "ExpiredImportTokenException": .kmsExpiredImportToken,
                "InvalidImportTokenException": .kmsInvalidImportToken, "IncorrectKeyMaterialException": .kmsIncorrectKeyMaterial,
                "KMSInvalidStateException": .kmsInvalidState, "NotFoundException": .kmsNotFound,
                "AccessDeniedException": .kmsAccessDenied, "UnrecognizedClientException": .kmsAccessDenied,
                "InvalidSignatureException": .kmsAccessDenied,
            ][type] ?? .kmsError
            let explanation: [ErrorCode: String] = [
                .kmsInvalidCiphertext: "AWS KMS could not decrypt the wrapped key material with its wrapping key",
                .kmsExpiredImportToken: "the import token expired; byokd asks for new parameters on the next try",
                .kmsInvalidImportToken: "AWS KMS rejected the import token",
                .kmsIncorrectKeyMaterial: "this KMS key already holds different key material; re-import needs the same key",
                .kmsInvalidState: "the KMS key is not in a state that allows this (e.g. disabled, or pending deletion)",
                .kmsNotFound: "AWS KMS has no such key in this account and Region",
                .kmsAccessDenied: "AWS KMS denied byokd's credentials this operation",
            ]
            return ByokError(code, "\(e.operation): \(explanation[code] ?? "AWS KMS answered \(type)") (\(type): \(e.message))")
        }
    }

    func kms<R>(_ body: (KMSClient) throws -> R) throws -> R {
        let client = try kmsClient()
        do { return try body(client) } catch let e as KMSError { throw Self.byokError(e) }
    }

    static func info(_ m: KMSClient.KeyMetadata) -> KMSKeyInfo {
        KMSKeyInfo(keyId: m.keyId, arn: m.arn, keyState: m.keyState, keySpec: m.keySpec, keyUsage: m.keyUsage, origin: m.origin, multiRegion: m.multiRegion)
    }

    public func kmsCreateKey(_ r: KMSCreateKeyRequest) throws -> KMSKeyInfo {
        guard let spec = KeySpec(rawValue: r.spec.uppercased()) else {
            throw ByokError(.keySpecUnknown, "unknown key spec \"\(r.spec)\"; AWS's names are \(KeySpec.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let usage = r.usage ?? {
            switch spec.kind { case .aes256: "ENCRYPT_DECRYPT"; case .hmac: "GENERATE_VERIFY_MAC"; case .rsa, .ec: "SIGN_VERIFY" }
        }()
        return Self.info(try kms { try $0.createKey(spec: spec.rawValue, usage: usage, multiRegion: r.multiRegion ?? false,
                                                    description: r.description, tags: r.tags ?? [:]) })
    }

    public func kmsImport(_ r: KMSImportRequest) throws -> KMSImportResponse {
        // What the token key is decides the algorithm: the best AWS allows for it that passed the self-test.
        let spec = try guarded("kms import") {
            try withSession(retry: true) { session, token -> KeySpec in
                // Through the key cache, so the wrap below does not search the token again.
                let (key, _) = try self.key(r.key, store: KeyStore(session: session, token: token))
                guard let spec = key.spec else { throw ByokError(.keyNotImportable, "key \"\(key.label)\" is \(key.typeDescription), which is no AWS KMS key spec") }
                return spec
            }
        }
        let algorithm: WrappingAlgorithm
        if let name = r.wrappingAlgorithm {
            guard let a = WrappingAlgorithm(name: name) else { throw ByokError(.algorithmUnknown, "unknown wrapping algorithm \"\(name)\"") }
            algorithm = a
        } else {
            let passed = Set(status().algorithms.filter { $0.state == "passed" }.map(\.name))
            guard let best = ImportRules.preferred(for: spec).first(where: { passed.contains($0.rawValue) }) else {
                throw ByokError(.tokenLacksAlgorithm, "no wrapping algorithm AWS accepts for \(spec.rawValue) passed this token's self-test")
            }
            algorithm = best
        }
        let wrappingKeySpec = r.wrappingKeySpec ?? "RSA_4096"
        guard WrappingKeySpec(rawValue: wrappingKeySpec) != nil else {
            throw ByokError(.badRequest, "wrapping key spec \(wrappingKeySpec) is not RSA_2048, RSA_3072 or RSA_4096")
        }
        var validTo: Date?
        if let v = r.validTo {
            guard let d = Timestamp.parse(v) else { throw ByokError(.badRequest, "--valid-to \"\(v)\" is not an ISO 8601 time") }
            validTo = d
        }
        let answer = try kms { try $0.getParametersForImport(keyId: r.kmsKeyId, wrappingAlgorithm: algorithm.rawValue, wrappingKeySpec: wrappingKeySpec) }
        let params = ImportParameters(publicKeyDER: answer.publicKey, importToken: answer.importToken, kmsKeyId: answer.keyId,
                                      validTo: answer.validTo, wrappingAlgorithm: algorithm, wrappingKeySpec: WrappingKeySpec(rawValue: wrappingKeySpec),
                                      source: "GetParametersForImport")
        let resolved = try params.resolve(requested: algorithm.rawValue)
        let wrapped = try guarded("wrap") {
            try withSession(retry: true) { session, token in
                try wrapOne(key: r.key, params: params, resolved: resolved, session: session, token: token)
            }
        }
        try kms { try $0.importKeyMaterial(keyId: r.kmsKeyId, encryptedKeyMaterial: Array(Data(base64Encoded: wrapped.encryptedKeyMaterial)!),
                                           importToken: answer.importToken, validTo: validTo, importType: r.importType,
                                           keyMaterialDescription: r.keyMaterialDescription) }
        let described = try kms { try $0.describeKey(keyId: r.kmsKeyId) }
        logger.info("imported into AWS KMS", metadata: ["kmsKeyId": "\(described.arn)", "state": "\(described.keyState)", "label": "\(wrapped.manifest.key.label)"])
        return KMSImportResponse(wrap: wrapped, kms: Self.info(described))
    }
}
