import ByokAPI
import Foundation

/// byokd's settings. A JSON file (`--config FILE`, format in docs/CONFIGURATION.md) gives them;
/// command-line flags override the file; defaults fill the rest.
public struct Configuration: Codable, Sendable, Equatable {
    /// PKCS#11 module: a path to a shared object, or the name p11-kit registers it under.
    public var module: String?
    /// CK_C_INITIALIZE_ARGS.pReserved, for modules that take an init string (NSS softokn).
    public var initArgs: String?
    /// The token: its label, its serial number, or a `pkcs11:` URI. Default: the first token.
    public var token: String?
    /// A file holding the user PIN. Default: `$CREDENTIALS_DIRECTORY/pin` (systemd LoadCredential=).
    public var pinFile: String?
    /// The Unix socket to listen on (ignored when systemd passes one).
    public var socket: String?
    /// Mode of a socket byokd binds itself, octal string. Default "0660".
    public var socketMode: String?
    /// Where byokd keeps its own state (dev token, audit log).
    public var stateDir: String?
    /// Largest request body accepted, in bytes. Default 8 MiB.
    public var maxRequestBytes: Int?
    /// Seconds a request may take to arrive. Default 10.
    public var readTimeoutSeconds: Double?
    /// Seconds an idle kept-alive connection stays open. Default 60.
    public var idleTimeoutSeconds: Double?
    /// Sessions opened on the token, i.e. wraps in parallel. Default 4.
    public var sessions: Int?
    /// Connections served at once; more get a BUSY answer. Default 64.
    public var maxConnections: Int?
    /// "trace", "debug", "info", "notice", "warning", "error". Default "info".
    public var logLevel: String?
    /// Use a SoftHSM development token kept in the state directory, made on first start.
    public var devToken: Bool?
    /// Operation → principals allowed (`user:NAME`, `uid:N`, `group:NAME`, `gid:N`). Operations not
    /// listed are allowed to root and the socket's group.
    public var access: [String: [String]]?
    /// The audit log. Default `<stateDir>/audit.jsonl`.
    public var auditLog: String?
    /// Seconds to connect to AWS KMS, and for a whole KMS call. Defaults 5 and 30.
    public var kmsConnectTimeoutSeconds: Double?
    public var kmsTimeoutSeconds: Double?
    /// An HMAC key on the token (label or pkcs11: URI) that MACs every audit record.
    public var auditMacKey: String?
    /// Operations that need a second person's approval (e.g. ["keys.generate", "wrap"]).
    public var twoPersonRule: [String]?
    /// Seconds a request waits for approval before it expires. Default 900.
    public var approvalTimeoutSeconds: Double?
    /// Where wrapping keys may come from: `kms` (byokd fetched them from AWS KMS itself) and/or
    /// `operator` (bytes a client sent). Default both; an online ceremony host sets ["kms"].
    public var wrappingKeySources: [String]?
    /// Keys are generated with CKA_WRAP_WITH_TRUSTED, and every wrap waits for the Security
    /// Officer to make its wrapping key trusted on the token (`byokctl trust`). Default false.
    public var trustedWrapping: Bool?
    /// The module's entry point when not the standard one: a `C_GetFunctionList`-style symbol
    /// (NSS softokn's FIPS token: `FC_GetFunctionList`) or, ending in `GetInterface`, a PKCS#11 3.0
    /// interface getter. Default: `C_GetInterface` where the module exports it, else `C_GetFunctionList`.
    public var functionListSymbol: String?
    /// Log in even when the token says the next wrong PIN locks it (CKF_USER_PIN_FINAL_TRY).
    /// Default false: byokd refuses to make that attempt.
    public var allowFinalPinTry: Bool?
    /// Seconds an answer may take to be taken by the client; one that does not read is dropped. Default 10.
    public var writeTimeoutSeconds: Double?
    /// Connections one user (uid) may hold at once, so no user can take all of `maxConnections`;
    /// root is not counted against it. Default 16 (capped at `maxConnections` - 1).
    public var maxConnectionsPerUser: Int?
    /// Requests waiting for approval, in all and per requester. Defaults 32 and 4.
    public var maxPendingApprovals: Int?
    public var maxPendingApprovalsPerUser: Int?

    public init() {}

    public static let defaultStateDir = "/var/lib/byokd"

    public var resolvedSocket: String { socket ?? ByokSocket.defaultPath }
    public var resolvedStateDir: String { stateDir ?? Self.defaultStateDir }
    public var resolvedSocketMode: mode_t { socketMode.flatMap { mode_t($0, radix: 8) } ?? 0o660 }
    public var resolvedMaxRequestBytes: Int { maxRequestBytes ?? 8 << 20 }
    public var resolvedReadTimeout: Double { readTimeoutSeconds ?? 10 }
    public var resolvedIdleTimeout: Double { idleTimeoutSeconds ?? 60 }
    public var resolvedSessions: Int { max(1, sessions ?? 4) }
    public var resolvedMaxConnections: Int { max(1, maxConnections ?? 64) }
    public var resolvedAuditLog: String { auditLog ?? resolvedStateDir + "/audit.jsonl" }
    public var resolvedApprovalTimeout: Double { approvalTimeoutSeconds ?? 900 }
    public var resolvedTrustedWrapping: Bool { trustedWrapping ?? false }

    /// The accepted wrapping key sources, each checked.
    public func resolvedWrappingKeySources() throws -> Set<WrappingKeySource> {
        guard let names = wrappingKeySources else { return Set(WrappingKeySource.allCases) }
        let sources = try names.map { name in
            guard let s = WrappingKeySource(rawValue: name) else {
                throw ByokError(.badRequest, "wrappingKeySources names \"\(name)\"; the sources are \"kms\" and \"operator\"")
            }
            return s
        }
        guard !sources.isEmpty else { throw ByokError(.badRequest, "wrappingKeySources is empty, so nothing could ever be wrapped; name \"kms\", \"operator\" or both") }
        return Set(sources)
    }
    public var resolvedWriteTimeout: Double { writeTimeoutSeconds ?? 10 }
    public var resolvedMaxConnectionsPerUser: Int { max(1, min(maxConnectionsPerUser ?? 16, resolvedMaxConnections - 1)) }
    public var resolvedMaxPendingApprovals: Int { max(1, maxPendingApprovals ?? 32) }
    public var resolvedMaxPendingApprovalsPerUser: Int { max(1, min(maxPendingApprovalsPerUser ?? 4, resolvedMaxPendingApprovals)) }

    /// Loads a configuration file. Unknown keys are an error, so a typo does not pass silently.
    public static func load(path: String) throws -> Configuration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ByokError(.inputUnreadable, "cannot read the configuration file \(path)")
        }
        do { return try StrictJSON.decode(Configuration.self, from: [UInt8](data)) } catch let f as StrictJSON.Failure {
            if f.problem == "is not a field this takes" {
                throw ByokError(.badRequest, "the configuration file \(path) has an unknown setting \"\(f.path)\"; known: \(CodingKeys.allKeys.sorted().joined(separator: ", ")) (see docs/CONFIGURATION.md)")
            }
            throw ByokError(.badRequest, f.sentence("the configuration file \(path)") + " (see docs/CONFIGURATION.md)")
        }
    }

    /// Settings of `other` that are set win.
    public func overridden(by other: Configuration) -> Configuration {
        var c = self
        c.module = other.module ?? module
        c.initArgs = other.initArgs ?? initArgs
        c.token = other.token ?? token
        c.pinFile = other.pinFile ?? pinFile
        c.socket = other.socket ?? socket
        c.socketMode = other.socketMode ?? socketMode
        c.stateDir = other.stateDir ?? stateDir
        c.maxRequestBytes = other.maxRequestBytes ?? maxRequestBytes
        c.readTimeoutSeconds = other.readTimeoutSeconds ?? readTimeoutSeconds
        c.idleTimeoutSeconds = other.idleTimeoutSeconds ?? idleTimeoutSeconds
        c.sessions = other.sessions ?? sessions
        c.maxConnections = other.maxConnections ?? maxConnections
        c.logLevel = other.logLevel ?? logLevel
        c.devToken = other.devToken ?? devToken
        c.access = other.access ?? access
        c.auditLog = other.auditLog ?? auditLog
        c.auditMacKey = other.auditMacKey ?? auditMacKey
        c.kmsConnectTimeoutSeconds = other.kmsConnectTimeoutSeconds ?? kmsConnectTimeoutSeconds
        c.kmsTimeoutSeconds = other.kmsTimeoutSeconds ?? kmsTimeoutSeconds
        c.twoPersonRule = other.twoPersonRule ?? twoPersonRule
        c.approvalTimeoutSeconds = other.approvalTimeoutSeconds ?? approvalTimeoutSeconds
        c.wrappingKeySources = other.wrappingKeySources ?? wrappingKeySources
        c.trustedWrapping = other.trustedWrapping ?? trustedWrapping
        c.functionListSymbol = other.functionListSymbol ?? functionListSymbol
        c.allowFinalPinTry = other.allowFinalPinTry ?? allowFinalPinTry
        c.writeTimeoutSeconds = other.writeTimeoutSeconds ?? writeTimeoutSeconds
        c.maxConnectionsPerUser = other.maxConnectionsPerUser ?? maxConnectionsPerUser
        c.maxPendingApprovals = other.maxPendingApprovals ?? maxPendingApprovals
        c.maxPendingApprovalsPerUser = other.maxPendingApprovalsPerUser ?? maxPendingApprovalsPerUser
        return c
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case module, initArgs, token, pinFile, socket, socketMode, stateDir, maxRequestBytes, readTimeoutSeconds,
             idleTimeoutSeconds, sessions, maxConnections, logLevel, devToken, access, auditLog, auditMacKey, kmsConnectTimeoutSeconds, kmsTimeoutSeconds, twoPersonRule, approvalTimeoutSeconds,
             wrappingKeySources, trustedWrapping,
             functionListSymbol, allowFinalPinTry,
             writeTimeoutSeconds, maxConnectionsPerUser, maxPendingApprovals, maxPendingApprovalsPerUser
        static var allKeys: [String] { allCases.map(\.rawValue) }
    }
}
