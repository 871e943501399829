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
}

