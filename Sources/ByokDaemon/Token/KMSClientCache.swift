import ByokAPI
import Foundation
import KMSClient
import Logging
import Synchronization

/// The AWS KMS client, configured from byokd's environment (credentials, Region, endpoint) on
/// first use and kept; KMS errors become ByokErrors with stable codes.
final class KMSClientCache: Sendable {
    private let config: Configuration
    private let logger: Logger
    private let client = Mutex<KMSClient?>(nil)

    init(config: Configuration, logger: Logger) {
        self.config = config
        self.logger = logger
    }

    /// Runs `body` with the client, translating its errors.
    func call<R>(_ body: (KMSClient) throws -> R) throws -> R {
        let client = try self.configured()
        do { return try body(client) } catch let e as KMSError { throw Self.byokError(e) }
    }

    private func configured() throws -> KMSClient {
        try client.withLock { client in
            if let client { return client }
            do {
                var cfg = try KMSConfiguration.resolve()
                if let t = config.kmsConnectTimeoutSeconds { cfg.connectTimeout = t }
                if let t = config.kmsTimeoutSeconds { cfg.totalTimeout = t }
                let c = KMSClient(config: cfg)
                client = c
                logger.info("AWS KMS client ready", metadata: ["endpoint": "\(cfg.endpoint.absoluteString)", "region": "\(cfg.region)",
                                                               "accessKeyId": "\(cfg.credentials.accessKeyId)"])
                return c
            } catch {
                throw ByokError(.kmsNotConfigured, "byokd cannot call AWS KMS: \(error)")
            }
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
}
