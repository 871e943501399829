import Foundation

/// One audit record: who asked for what, who approved it, what came of it. No PIN and no key
/// bytes: keys appear by label, id, spec and fingerprint only.
public struct AuditRecord: Codable, Sendable {
    public struct Peer: Codable, Sendable {
        public var uid: UInt32
        public var gid: UInt32
        public var pid: Int32
        public var user: String
        public init(uid: UInt32, gid: UInt32, pid: Int32, user: String) { self.uid = uid; self.gid = gid; self.pid = pid; self.user = user }
    }
    public struct Key: Codable, Sendable {
        public var label: String?
        public var id: String?
        public var spec: String?
        public var fingerprint: String?
        /// "no fingerprint: the token lacks CKM_…", when the key has none.
        public var noFingerprint: String?
        public init(label: String? = nil, id: String? = nil, spec: String? = nil, fingerprint: String? = nil, noFingerprint: String? = nil) {
            self.label = label; self.id = id; self.spec = spec; self.fingerprint = fingerprint; self.noFingerprint = noFingerprint
        }
        public init(_ key: some KeyIdentity, spec: String?) {
            self.init(label: key.label, id: key.id, spec: spec, fingerprint: key.fingerprint, noFingerprint: key.fingerprint == nil ? key.noFingerprint : nil)
        }
    }
    public var seq: UInt64 = 0
    public init(time: String, requestId: String, operation: String, result: String) {
        self.time = time; self.requestId = requestId; self.operation = operation; self.result = result
    }
    public var time: String
    public var requestId: String
    public var peer: Peer?
    public var operation: String
    public var key: Key?
    public var wrappingAlgorithm: String?
    public var wrappingPublicKeySha256: String?
    public var kmsKeyId: String?
    public var encryptedKeyMaterialSha256: String?
    public var approvalId: String?
    /// For the wraps of a batch: the entry's index and the batch size.
    public var batchIndex: Int?
    public var batchSize: Int?
    public var requestedBy: Peer?
    public var approvedBy: Peer?
    /// "ok", "denied", "error", "pending", "expired".
    public var result: String
    public var errorCode: String?
    /// SHA-256 (hex) of the previous record's line, or 64 zeros for the first.
    public var prev: String = ""
    /// With `auditMacKey`: HMAC (hex), computed on the token, of the SHA-256 of this record's line
    /// without this field — so rewriting history needs the HSM. Nil when the token could not sign.
    public var mac: String?
    /// `kms` or `operator`: where the wrapping key came from.
    public var wrappingKeySource: String?
    /// The Security Officer who made the wrapping key trusted for this wrap (`trustedWrapping`).
    public var trustedBy: Peer?
    /// The cloud, when not AWS, and its target (the Azure KEK's kid, the Google import job).
    public var provider: String?
    public var target: String?
    /// Once a log carries MACs, a record without one says why here ("the token could not sign:
    /// …", or that byokd runs without `auditMacKey`): an explicit, chained gap that verify reports.
    public var macError: String?
    /// An outcome's write-ahead record: the `seq` of the "intent" record written, and made
    /// durable, before the token was touched.
    public var intent: UInt64?
    /// byokd's own records (`audit.recovered`, `audit.mac-key`): what happened, in a sentence.
    public var note: String?
    /// `audit.recovered`: the bytes of a torn last record cut off at start, and their SHA-256 (hex).
    public var droppedBytes: Int?
    public var droppedSha256: String?
}

/// The operations and results of records byokd writes about its own log and key, which verify
/// and readers treat specially.
public enum AuditEvent {
    /// A torn last record (a crash mid-write) was cut off at start; `droppedBytes`/`droppedSha256` say what.
    public static let recovered = "audit.recovered"
    /// byokd created (after an "intent" record) or adopted its audit MAC key; MACs cover the log from here.
    public static let macKey = "audit.mac-key"
    /// `result` of a write-ahead record: the operation is about to touch the token.
    public static let intentResult = "intent"
}

/// A record the operator wrote down (from `byokctl audit head` or byokd's journal): `SEQ:HASH`.
public struct AuditAnchor: Sendable, Equatable, CustomStringConvertible {
    public var seq: UInt64
    /// SHA-256 (hex) of the record's line.
    public var hash: String
    public init(seq: UInt64, hash: String) { self.seq = seq; self.hash = hash }

    /// Parses `SEQ:HASH` (64 hex digits); nil if it is not one.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let s = UInt64(parts[0]), s > 0, parts[1].count == 64,
              parts[1].utf8.allSatisfy({ (48...57).contains($0) || (97...102).contains($0) || (65...70).contains($0) }) else { return nil }
        seq = s
        hash = parts[1].lowercased()
    }

    public var description: String { "\(seq):\(hash)" }
}

/// `GET /v1/audit/head`: the last record byokd has made durable, from its memory (not the file),
/// so a log cut short behind its back does not move it.
public struct AuditHeadResponse: Codable, Sendable {
    public var seq: UInt64
    public var hash: String
    /// `SEQ:HASH`, as `byokctl audit verify --head` takes it.
    public var anchor: String
    public init(seq: UInt64, hash: String) { self.seq = seq; self.hash = hash; anchor = "\(seq):\(hash)" }
}

