import Foundation

// The HTTP/1.1 + JSON API between byokctl and byokd. docs/API.md describes it for curl users.
// Byte strings travel as base64 strings; times as ISO 8601 strings.

/// `{"error":{"code":"...","message":"..."}}`
public struct ErrorBody: Codable, Sendable {
    public struct Inner: Codable, Sendable {
        public var code: ErrorCode
        public var message: String
    }
    public var error: Inner
    public init(_ e: ByokError) { error = Inner(code: e.code, message: e.message) }
}

/// `GET /v1/status`
public struct StatusResponse: Codable, Sendable {
    public struct Token: Codable, Sendable {
        public var label: String
        public var serial: String
        public var model: String
        public var manufacturer: String
        public init(label: String, serial: String, model: String, manufacturer: String) {
            self.label = label; self.serial = serial; self.model = model; self.manufacturer = manufacturer
        }
    }
    public struct Algorithm: Codable, Sendable {
        public var name: String
        /// "passed", "failed" or "unsupported".
        public var state: String
        public var via: String?
        public var reason: String?
        public init(name: String, state: String, via: String? = nil, reason: String? = nil) {
            self.name = name; self.state = state; self.via = via; self.reason = reason
        }
    }
    public var version: String
    public var module: String
    public var moduleDescription: String
    public var token: Token?
    public var tokenAvailable: Bool
    public var tokenError: String?
    public var algorithms: [Algorithm]
    public var selfTestAt: String?
    /// `off`, or what the start-up check found ("enforced by the token …").
    public var trustedWrapping: String?
    /// How the module's function list was obtained, e.g. `C_GetInterface (interface "PKCS 11", version 3.0)`.
    public var moduleEntryPoint: String?
    /// The token's flags that matter (`CKF_LOGIN_REQUIRED`, `CKF_WRITE_PROTECTED`, `CKF_USER_PIN_COUNT_LOW`,
    /// `CKF_USER_PIN_FINAL_TRY`, `CKF_USER_PIN_LOCKED`, ...), read from the token for this answer.
    public var tokenFlags: [String]?
    /// What those flags mean for the operator, as sentences (e.g. one more wrong PIN locks the token).
    public var tokenNotes: [String]?
    /// Why byokd uses this token (the configured label, serial or URI, or the default choice and
    /// the tokens it skipped).
    public var tokenSelection: String?
    /// FIPS mode, where the module or the token reports it; absent when neither says.
    public var fips: FIPS?
    public struct FIPS: Codable, Sendable, Equatable {
        /// "on" or "off".
        public var mode: String
        /// What says so.
        public var evidence: String
        public init(mode: String, evidence: String) { self.mode = mode; self.evidence = evidence }
    }
    public init(version: String, module: String, moduleDescription: String, token: Token?, tokenAvailable: Bool,
                tokenError: String?, algorithms: [Algorithm], selfTestAt: String?, moduleEntryPoint: String? = nil,
                tokenFlags: [String]? = nil, tokenNotes: [String]? = nil, tokenSelection: String? = nil, fips: FIPS? = nil) {
        self.version = version; self.module = module; self.moduleDescription = moduleDescription; self.token = token
        self.tokenAvailable = tokenAvailable; self.tokenError = tokenError; self.algorithms = algorithms; self.selfTestAt = selfTestAt
        self.moduleEntryPoint = moduleEntryPoint; self.tokenFlags = tokenFlags; self.tokenNotes = tokenNotes
        self.tokenSelection = tokenSelection; self.fips = fips
    }
}

/// What names a key and proves which key it is: AES and HMAC keys by their KCV, RSA and EC keys by
/// the SHA-256 of their public key.
public protocol KeyIdentity {
    var label: String { get }
    var id: String { get }
    var kcv: String? { get }
    var publicKeySha256: String? { get }
    /// Why the key has no fingerprint (e.g. "no fingerprint: the token lacks CKM_SHA224_HMAC"), when it has none.
    var noFingerprint: String? { get }
}

extension KeyIdentity {
    /// The KCV of a secret key, or the public key hash of a private key.
    public var fingerprint: String? { kcv ?? publicKeySha256 }
    public var noFingerprint: String? { nil }
}

/// A key on the token as `keys list` shows it.
public struct KeyInfo: Codable, Sendable, KeyIdentity {
    public var label: String
    /// CKA_ID as lowercase hex.
    public var id: String
    /// The AWS key spec this key can be imported as, or nil when it fits none.
    public var spec: String?
    /// The PKCS#11 class and type, e.g. "secret/AES-256", "private/RSA-3072".
    public var type: String
    /// Key check value: AES — first 3 bytes of AES-ECB(key, 0^16); HMAC — first 3 bytes of HMAC(key, 0^16).
    public var kcv: String?
    /// Asymmetric keys: SHA-256 of the public key's DER SubjectPublicKeyInfo.
    public var publicKeySha256: String?
    public var sensitive: Bool?
    public var extractable: Bool?
    public var uri: String
    /// Set when the token cannot compute the key's fingerprint: "no fingerprint: the token lacks CKM_…".
    public var noFingerprint: String?
    /// What the operator must know about the key, e.g. that it was made although no wrapping
    /// algorithm that passed the self-test can export it (`keys generate --allow-unexportable`).
    public var warnings: [String]?
    /// What byokd keeps the key for itself, when it does: "audit-mac" (never wrapped, not importable).
    public var reservedFor: String?
    public init(label: String, id: String, spec: String?, type: String, kcv: String?, publicKeySha256: String?,
                sensitive: Bool?, extractable: Bool?, uri: String, noFingerprint: String? = nil, warnings: [String]? = nil) {
        self.label = label; self.id = id; self.spec = spec; self.type = type; self.kcv = kcv
        self.publicKeySha256 = publicKeySha256; self.sensitive = sensitive; self.extractable = extractable; self.uri = uri
        self.noFingerprint = noFingerprint; self.warnings = warnings
    }
}

/// `GET /v1/keys`
public struct KeyListResponse: Codable, Sendable {
    public var keys: [KeyInfo]
    public init(keys: [KeyInfo]) { self.keys = keys }
}

/// `POST /v1/keys`
public struct GenerateRequest: Codable, Sendable {
    public var label: String
    public var spec: String
    /// Make the key even when no wrapping algorithm that passed the self-test can export it.
    public var allowUnexportable: Bool?
    public init(label: String, spec: String, allowUnexportable: Bool? = nil) {
        self.label = label; self.spec = spec; self.allowUnexportable = allowUnexportable
    }
}

/// The import parameters as the operator holds them, carried as bytes: the daemon parses them.
public struct ParametersInput: Codable, Sendable, Hashable {
    /// The JSON printed by `aws kms get-parameters-for-import` (base64 of the file's bytes).
    public var awsJSON: String?
    /// The console's ImportParameters.zip (base64).
    public var zip: String?
    /// The wrapping public key file: DER, base64 or PEM (base64 of the file's bytes).
    public var publicKey: String?
    /// The import token file: raw or base64 (base64 of the file's bytes).
    public var importToken: String?
    /// The KMS key id or ARN, when the files do not say.
    public var kmsKeyId: String?
    /// When the parameters expire (ISO 8601), when the files do not say.
    public var validTo: String?
    /// The cloud the wrap is for; absent means AWS.
    public var provider: CloudProvider?
    /// Azure: the JSON `az keyvault key show` prints for the KEK (base64 of the file's bytes).
    public var azureKey: String?
    /// Azure: the KEK's key identifier, with `publicKey` holding its PEM (`az keyvault key download`).
    public var kid: String?
    /// Google Cloud: the JSON `gcloud kms import-jobs describe --format=json` prints (base64 of the file's bytes).
    public var gcpImportJob: String?
    /// Google Cloud: the import job's resource name and import method, with `publicKey` holding its PEM.
    public var importJob: String?
    public var importMethod: String?
    /// How the import token file is encoded: "raw" or "base64"; absent: decided from its bytes
    /// (docs/API.md), and refused when they could be either.
    public var importTokenEncoding: String?
    public init(awsJSON: String? = nil, zip: String? = nil, publicKey: String? = nil, importToken: String? = nil,
                kmsKeyId: String? = nil, validTo: String? = nil, importTokenEncoding: String? = nil) {
        self.awsJSON = awsJSON; self.zip = zip; self.publicKey = publicKey; self.importToken = importToken
        self.kmsKeyId = kmsKeyId; self.validTo = validTo; self.importTokenEncoding = importTokenEncoding
    }
}

/// `POST /v1/wrap`
public struct WrapRequest: Codable, Sendable {
    /// A key label or a `pkcs11:` URI naming the key on the daemon's token.
    public var key: String
    public var parameters: ParametersInput
    public var wrappingAlgorithm: String?
    public init(key: String, parameters: ParametersInput, wrappingAlgorithm: String? = nil) {
        self.key = key; self.parameters = parameters; self.wrappingAlgorithm = wrappingAlgorithm
    }
}

/// What AWS needs and what the operator should keep: the body of `manifest.json` plus the two blobs.
public struct Manifest: Codable, Sendable {
    public struct Key: Codable, Sendable, KeyIdentity {
        public var label: String
        public var id: String
        public var spec: String
        public var kcv: String?
        public var publicKeySha256: String?
        /// "no fingerprint: the token lacks CKM_…", when the token could not compute one.
        public var noFingerprint: String?
        public init(_ key: some KeyIdentity, spec: String) {
            label = key.label; id = key.id; self.spec = spec; kcv = key.kcv; publicKeySha256 = key.publicKeySha256
            noFingerprint = key.noFingerprint
        }
    }
    public struct Token: Codable, Sendable {
        public var label: String
        public var serial: String
        public var model: String
        public init(label: String, serial: String, model: String) { self.label = label; self.serial = serial; self.model = model }
    }
    public var kmsKeyId: String?
    public var wrappingAlgorithm: String
    public var wrappingKeySpec: String
    public var wrappingPublicKeySha256: String
    public var parametersValidTo: String?
    public var key: Key
    public var token: Token
    /// How the token produced the blob, e.g. "C_WrapKey CKM_RSA_PKCS_OAEP(SHA-256, MGF1-SHA-256)".
    public var wrapMechanism: String
    public var encryptedKeyMaterialSha256: String
    /// AWS only.
    public var importTokenSha256: String?
    public var createdAt: String
    public var byokdVersion: String
    /// Where the wrapping key came from: `kms` (byokd fetched it from AWS KMS itself) or
    /// `operator` (bytes a client sent).
    public var wrappingKeySource: WrappingKeySource?
    /// The wrap ran under a copy of the wrapping key that the Security Officer made trusted on the
    /// token (`trustedWrapping`).
    public var trustedBySecurityOfficer: Bool?
    /// The cloud the blob is for (absent: AWS), and what names the target there.
    public var provider: CloudProvider?
    /// Azure: the KEK's key identifier the `.byok` file names.
    public var azureKid: String?
    /// Google Cloud: the import job and its import method.
    public var gcpImportJob: String?
    public var gcpImportMethod: String?
    public init(kmsKeyId: String?, wrappingAlgorithm: String, wrappingKeySpec: String, wrappingPublicKeySha256: String,
                parametersValidTo: String?, key: Key, token: Token, wrapMechanism: String,
                encryptedKeyMaterialSha256: String, importTokenSha256: String?, createdAt: String, byokdVersion: String,
                wrappingKeySource: WrappingKeySource? = nil, trustedBySecurityOfficer: Bool? = nil) {
        self.kmsKeyId = kmsKeyId; self.wrappingAlgorithm = wrappingAlgorithm; self.wrappingKeySpec = wrappingKeySpec
        self.wrappingPublicKeySha256 = wrappingPublicKeySha256; self.parametersValidTo = parametersValidTo; self.key = key
        self.token = token; self.wrapMechanism = wrapMechanism; self.encryptedKeyMaterialSha256 = encryptedKeyMaterialSha256
        self.importTokenSha256 = importTokenSha256; self.createdAt = createdAt; self.byokdVersion = byokdVersion
        self.wrappingKeySource = wrappingKeySource; self.trustedBySecurityOfficer = trustedBySecurityOfficer
    }
}

/// Where a wrapping public key came from.
public enum WrappingKeySource: String, Codable, Sendable, CaseIterable {
    /// byokd fetched it from AWS KMS itself (GetParametersForImport, online mode).
    case kms
    /// A client sent it (the operator's parameter files): anyone allowed to wrap could have chosen it.
    case `operator`
}

/// `POST /v1/wrap` answer.
public struct WrapResponse: Codable, Sendable {
    public var manifest: Manifest
    /// Base64 of EncryptedKeyMaterial.bin.
    public var encryptedKeyMaterial: String
    /// Base64 of ImportToken.bin.
    public var importToken: String
    public init(manifest: Manifest, encryptedKeyMaterial: String, importToken: String) {
        self.manifest = manifest; self.encryptedKeyMaterial = encryptedKeyMaterial; self.importToken = importToken
    }
}

/// `POST /v1/selftest` answer.
public struct SelfTestResponse: Codable, Sendable {
    public var algorithms: [StatusResponse.Algorithm]
    public var at: String
    public init(algorithms: [StatusResponse.Algorithm], at: String) { self.algorithms = algorithms; self.at = at }
}

/// A request held for a second person's approval (answer `202` to the requester; `GET /v1/approvals`).
/// Every string that came from a client or the token is escaped (`Display.escaped`).
public struct PendingRequest: Codable, Sendable {
    /// A key as the approver needs to see it.
    public struct Key: Codable, Sendable {
        public var label: String
        public var id: String?
        public var spec: String?
        /// KCV of a secret key, SHA-256 of a private key's public key.
        public var fingerprint: String?
        public init(label: String, id: String?, spec: String?, fingerprint: String?) {
            self.label = label; self.id = id; self.spec = spec; self.fingerprint = fingerprint
        }
    }
    public var id: String
    public var operation: String
    public var requestedBy: String
    public var requestedByUid: UInt32
    public var createdAt: String
    public var expiresAt: String
    /// What is asked, in one line.
    public var summary: String
    /// What the second person must do: `approve` (an operator, `byokctl approve`) or `trust` (the
    /// Security Officer, `byokctl trust`).
    public var needs: String?
    public var key: Key?
    public var wrappingAlgorithm: String?
    /// SHA-256 (hex) of the wrapping public key's DER SubjectPublicKeyInfo.
    public var wrappingPublicKeySha256: String?
    public var wrappingKeySource: WrappingKeySource?
    public var parametersValidTo: String?
    /// The KMS key id as the request gave it (the requester's own text unless byokd fetched the parameters).
    public var kmsKeyId: String?
    /// Approving needs the wrapping key's fingerprint stated (`--wrapping-key-sha256`, 16+ hex digits).
    public var confirmWrappingKey: Bool?
    /// The cloud, when not AWS, and what names the destination there (Azure KEK kid, Google import job).
    public var provider: CloudProvider?
    public var target: String?
    public init(id: String, operation: String, requestedBy: String, requestedByUid: UInt32, createdAt: String, expiresAt: String, summary: String) {
        self.id = id; self.operation = operation; self.requestedBy = requestedBy; self.requestedByUid = requestedByUid
        self.createdAt = createdAt; self.expiresAt = expiresAt; self.summary = summary
    }
}

/// `POST /v1/approvals/ID` body.
public struct ApproveRequest: Codable, Sendable {
    /// The start (16+ hex digits) of the wrapping key's SHA-256, as the approver read it from a
    /// trusted copy of the parameters; required when the wrapping key came from a client.
    public var wrappingKeySha256: String?
    public init(wrappingKeySha256: String?) { self.wrappingKeySha256 = wrappingKeySha256 }
}

/// `POST /v1/trust/ID` body: the Security Officer trusts the wrapping key for this one request.
public struct TrustRequest: Codable, Sendable {
    /// The SO PIN, base64 — sent once, wiped after the SO login.
    public var soPin: String
    /// The start (16+ hex digits) of the wrapping key's SHA-256, as the SO read it.
    public var wrappingKeySha256: String
    public init(soPin: String, wrappingKeySha256: String) { self.soPin = soPin; self.wrappingKeySha256 = wrappingKeySha256 }
}

/// `202` body: `{"pending": {...}}`.
public struct PendingBody: Codable, Sendable {
    public var pending: PendingRequest
    public init(pending: PendingRequest) { self.pending = pending }
}

/// `GET /v1/approvals`
public struct PendingListResponse: Codable, Sendable {
    public var pending: [PendingRequest]
    public init(pending: [PendingRequest]) { self.pending = pending }
}

/// `POST /v1/approvals/ID` answer to the approver (never the key material).
public struct ApprovalResponse: Codable, Sendable {
    public var id: String
    public var operation: String
    public var requestedBy: String
    /// "ok" or "error" — how the approved operation ended.
    public var result: String
    public var error: ErrorBody.Inner?
    public init(id: String, operation: String, requestedBy: String, result: String, error: ErrorBody.Inner?) {
        self.id = id; self.operation = operation; self.requestedBy = requestedBy; self.result = result; self.error = error
    }
}

/// `POST /v1/audit/verify` (body: the audit log): the chain and every record's token MAC checked.
public struct AuditVerifyResponse: Codable, Sendable {
    public var intact: Bool
    public var records: Int
    public var head: String
    public var firstBrokenLine: Int?
    public var reason: String?
    public var macVerified: Int
    public var macMissing: Int
    /// The rest of `AuditVerifier.Report`: the head's seq, explicit "token could not sign" gaps,
    /// records after the last MAC, write-ahead records without an outcome.
    public var seq: UInt64?
    public var macGaps: Int?
    public var firstGapLine: Int?
    public var uncoveredTail: Int?
    public var openIntents: [UInt64]?
    public init(intact: Bool, records: Int, head: String, firstBrokenLine: Int?, reason: String?, macVerified: Int, macMissing: Int) {
        self.intact = intact; self.records = records; self.head = head; self.firstBrokenLine = firstBrokenLine
        self.reason = reason; self.macVerified = macVerified; self.macMissing = macMissing
    }
}

/// `POST /v1/kms/create-key`
public struct KMSCreateKeyRequest: Codable, Sendable {
    public var spec: String
    public var usage: String?
    public var multiRegion: Bool?
    public var description: String?
    public var tags: [String: String]?
    public init(spec: String, usage: String?, multiRegion: Bool?, description: String?, tags: [String: String]?) {
        self.spec = spec; self.usage = usage; self.multiRegion = multiRegion; self.description = description; self.tags = tags
    }
}

/// A KMS key as DescribeKey/CreateKey describe it.
public struct KMSKeyInfo: Codable, Sendable {
    public var keyId: String
    public var arn: String
    public var keyState: String
    public var keySpec: String?
    public var keyUsage: String?
    public var origin: String?
    public var multiRegion: Bool?
    public init(keyId: String, arn: String, keyState: String, keySpec: String?, keyUsage: String?, origin: String?, multiRegion: Bool?) {
        self.keyId = keyId; self.arn = arn; self.keyState = keyState; self.keySpec = keySpec; self.keyUsage = keyUsage
        self.origin = origin; self.multiRegion = multiRegion
    }
}

/// `POST /v1/kms/import`: GetParametersForImport → on-token wrap → ImportKeyMaterial → DescribeKey.
public struct KMSImportRequest: Codable, Sendable {
    public var kmsKeyId: String
    public var key: String
    public var wrappingAlgorithm: String?
    public var wrappingKeySpec: String?
    /// ISO 8601; absent means KEY_MATERIAL_DOES_NOT_EXPIRE.
    public var validTo: String?
    public var importType: String?
    public var keyMaterialDescription: String?
    public init(kmsKeyId: String, key: String, wrappingAlgorithm: String?, wrappingKeySpec: String?, validTo: String?,
                importType: String?, keyMaterialDescription: String?) {
        self.kmsKeyId = kmsKeyId; self.key = key; self.wrappingAlgorithm = wrappingAlgorithm; self.wrappingKeySpec = wrappingKeySpec
        self.validTo = validTo; self.importType = importType; self.keyMaterialDescription = keyMaterialDescription
    }
}

/// One key material of a KMS key (ListKeyRotations with IncludeKeyMaterial=ALL_KEY_MATERIAL).
public struct KMSKeyMaterial: Codable, Sendable {
    public var keyMaterialId: String?
    public var description: String?
    /// IMPORTED or PENDING_IMPORT.
    public var importState: String?
    /// CURRENT, NON_CURRENT or PENDING_ROTATION.
    public var state: String?
    public var expirationModel: String?
    public var validTo: String?
    public var rotationDate: String?
    public var rotationType: String?
    public init(keyMaterialId: String?, description: String?, importState: String?, state: String?, expirationModel: String?,
                validTo: String?, rotationDate: String?, rotationType: String?) {
        self.keyMaterialId = keyMaterialId; self.description = description; self.importState = importState; self.state = state
        self.expirationModel = expirationModel; self.validTo = validTo; self.rotationDate = rotationDate; self.rotationType = rotationType
    }
}

/// `POST /v1/kms/rotate`: new key material from the token imported (NEW_KEY_MATERIAL), then RotateKeyOnDemand.
public struct KMSRotateRequest: Codable, Sendable {
    public var kmsKeyId: String
    public var key: String
    public var wrappingAlgorithm: String?
    public var wrappingKeySpec: String?
    public var validTo: String?
    public var keyMaterialDescription: String?
    public init(kmsKeyId: String, key: String, wrappingAlgorithm: String?, wrappingKeySpec: String?, validTo: String?, keyMaterialDescription: String?) {
        self.kmsKeyId = kmsKeyId; self.key = key; self.wrappingAlgorithm = wrappingAlgorithm; self.wrappingKeySpec = wrappingKeySpec
        self.validTo = validTo; self.keyMaterialDescription = keyMaterialDescription
    }
}

public struct KMSRotateResponse: Codable, Sendable {
    public var imported: KMSImportResponse
    /// The key's materials after the rotation.
    public var materials: [KMSKeyMaterial]
    public init(imported: KMSImportResponse, materials: [KMSKeyMaterial]) { self.imported = imported; self.materials = materials }
}

/// `POST /v1/kms/materials`
public struct KMSMaterialsRequest: Codable, Sendable {
    public var kmsKeyId: String
    public init(kmsKeyId: String) { self.kmsKeyId = kmsKeyId }
}

public struct KMSMaterialsResponse: Codable, Sendable {
    public var kmsKeyId: String
    public var materials: [KMSKeyMaterial]
    public init(kmsKeyId: String, materials: [KMSKeyMaterial]) { self.kmsKeyId = kmsKeyId; self.materials = materials }
}

public struct KMSImportResponse: Codable, Sendable {
    public var wrap: WrapResponse
    public var kms: KMSKeyInfo
    public init(wrap: WrapResponse, kms: KMSKeyInfo) { self.wrap = wrap; self.kms = kms }
}

public enum ByokVersion {
    public static let current = "0.1.0"
}

/// Where byokd listens unless told otherwise (the systemd unit's socket), for daemon and client.
public enum ByokSocket {
    public static let defaultPath = "/run/byokd/byokd.sock"
}

/// ISO 8601 with seconds, UTC — the one time format on the wire and in files.
public enum Timestamp {
    public static func string(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        var tmv = tm()
        gmtime_r(&t, &tmv)
        var out = [UInt8]()
        out.reserveCapacity(20)
        func put(_ v: Int32, _ width: Int) {
            var digits = [UInt8](repeating: 48, count: width)
            var n = Int(v)
            for i in stride(from: width - 1, through: 0, by: -1) { digits[i] = UInt8(48 + n % 10); n /= 10 }
            out += digits
        }
        put(tmv.tm_year + 1900, 4); out.append(45); put(tmv.tm_mon + 1, 2); out.append(45); put(tmv.tm_mday, 2)
        out.append(84); put(tmv.tm_hour, 2); out.append(58); put(tmv.tm_min, 2); out.append(58); put(tmv.tm_sec, 2); out.append(90)
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses ISO 8601 / RFC 3339 (`2024-05-01T12:00:00Z`, `...T12:00:00.123456+00:00`, a space for `T`)
    /// or epoch seconds (`1714564800`, `1714564800.5`).
    public static func parse(_ s: String) -> Date? {
        let str = s.trimmingBlanks
        if let d = Double(str), str.first?.isNumber == true, !str.contains(Character("-")) { return Date(timeIntervalSince1970: d) }
        let c = Array(str.utf8)
        func num(_ from: Int, _ len: Int) -> Int? {
            guard from + len <= c.count else { return nil }
            var v = 0
            for i in from..<(from + len) {
                guard c[i] >= 48 && c[i] <= 57 else { return nil }
                v = v * 10 + Int(c[i] - 48)
            }
            return v
        }
        guard c.count >= 19, let y = num(0, 4), c[4] == 45, let mo = num(5, 2), c[7] == 45, let d = num(8, 2),
              c[10] == 84 || c[10] == 116 || c[10] == 32, let h = num(11, 2), c[13] == 58, let mi = num(14, 2),
              c[16] == 58, let se = num(17, 2),
              (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, se < 61 else { return nil }
        var i = 19
        var frac = 0.0
        if i < c.count && c[i] == 46 {
            i += 1
            var scale = 0.1
            let start = i
            while i < c.count, c[i] >= 48 && c[i] <= 57 { frac += Double(c[i] - 48) * scale; scale /= 10; i += 1 }
            if i == start { return nil }
        }
        var offset = 0
        if i < c.count {
            if c[i] == 90 || c[i] == 122 { i += 1 }
            else if c[i] == 43 || c[i] == 45 {
                let sign = c[i] == 45 ? -1 : 1
                guard let oh = num(i + 1, 2) else { return nil }
                var om = 0
                if i + 3 < c.count && c[i + 3] == 58 { guard let m = num(i + 4, 2) else { return nil }; om = m; i += 6 }
                else if let m = num(i + 3, 2) { om = m; i += 5 } else { i += 3 }
                offset = sign * (oh * 3600 + om * 60)
            } else { return nil }
        }
        guard i == c.count else { return nil }
        var tmv = tm()
        tmv.tm_year = Int32(y - 1900); tmv.tm_mon = Int32(mo - 1); tmv.tm_mday = Int32(d)
        tmv.tm_hour = Int32(h); tmv.tm_min = Int32(mi); tmv.tm_sec = Int32(se)
        let t = timegm(&tmv)
        return Date(timeIntervalSince1970: Double(t - offset) + frac)
    }
}

/// `POST /v1/wrap/batch`: many wraps in one request. The answer streams one `BatchResult` JSON line
/// per entry (chunked transfer encoding, `application/x-ndjson`), in entry order.
public struct BatchWrapRequest: Codable, Sendable {
    public struct Entry: Codable, Sendable {
        /// The caller's name for the entry (byokctl uses the output directory).
        public var name: String
        public var key: String
        public var parameters: ParametersInput
        public var wrappingAlgorithm: String?
        public init(name: String, key: String, parameters: ParametersInput, wrappingAlgorithm: String?) {
            self.name = name; self.key = key; self.parameters = parameters; self.wrappingAlgorithm = wrappingAlgorithm
        }
    }
    public var entries: [Entry]
    public init(entries: [Entry]) { self.entries = entries }
}

public struct BatchResult: Codable, Sendable {
    public var index: Int
    public var name: String
    public var result: WrapResponse?
    public var error: ErrorBody.Inner?
    public init(index: Int, name: String, result: WrapResponse?, error: ErrorBody.Inner?) {
        self.index = index; self.name = name; self.result = result; self.error = error
    }
}
