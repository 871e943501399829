import ByokAPI

/// A request as the pipeline carries it: the endpoint's body decoded once, into the type the
/// operation takes. Pending approvals keep this, not the HTTP bytes.
enum DaemonRequest: Sendable {
    case status
    case keysList
    case keysGenerate(GenerateRequest)
    case wrap(WrapRequest)
    case wrapBatch(BatchWrapRequest)
    case selftest
    case audit
    case auditVerify(log: [UInt8])
    case auditHead
    case kmsImport(KMSImportRequest)
    case kmsCreateKey(KMSCreateKeyRequest)
    case kmsRotate(KMSRotateRequest)
    case kmsMaterials(KMSMaterialsRequest)
    case approvalsList
    case approve(id: String, ApproveRequest)
    case trust(id: String, TrustRequest)
    case requestPoll(id: String)

    var operation: Operation {
        switch self {
        case .status: .status
        case .keysList: .keysList
        case .keysGenerate: .keysGenerate
        case .wrap: .wrap
        case .wrapBatch: .wrapBatch
        case .selftest: .selftest
        case .audit: .audit
        case .auditVerify: .auditVerify
        case .auditHead: .auditHead
        case .kmsImport: .kmsImport
        case .kmsCreateKey: .kmsCreateKey
        case .kmsRotate: .kmsRotate
        case .kmsMaterials: .kmsMaterials
        case .approvalsList: .approvalsList
        case .approve: .approve
        case .trust: .trust
        case .requestPoll: .requestPoll
        }
    }

    /// Decodes the body an endpoint takes (bodies of GET endpoints are ignored), and checks that
    /// no key reference carries a PIN.
    static func decode(_ endpoint: Endpoint, id: String?, body: [UInt8]) throws -> DaemonRequest {
        let request = try decodeBody(endpoint, id: id, body: body)
        switch request {
        case .wrap(let w): try checkKeyReference(w.key)
        case .wrapBatch(let b): for e in b.entries { try checkKeyReference(e.key) }
        case .kmsImport(let k): try checkKeyReference(k.key)
        case .kmsRotate(let k): try checkKeyReference(k.key)
        default: break
        }
        return request
    }

    /// A `pkcs11:` URI may carry a PIN (`pin-value=`, `pin-source=`, RFC 7512); a key reference
    /// never needs one (byokd logs in with its own), and whatever a request names is written to the
    /// audit record and the log line. So such a reference is refused before either sees it.
    static func checkKeyReference(_ reference: String) throws {
        guard reference.hasPrefix("pkcs11:") else { return }
        let lowered = reference.lowercased()
        if lowered.firstRange(of: "pin-value") != nil || lowered.firstRange(of: "pin-source") != nil {
            throw ByokError(.keyLabelInvalid, "the key's pkcs11: URI carries a PIN (pin-value or pin-source); byokd logs in to its token with its own PIN and records every key reference, so remove it from the URI")
        }
    }

    private static func decodeBody(_ endpoint: Endpoint, id: String?, body: [UInt8]) throws -> DaemonRequest {
        switch endpoint.operation {
        case .status: return .status
        case .keysList: return .keysList
        case .keysGenerate: return .keysGenerate(try JSONCoding.decode(GenerateRequest.self, body))
        case .wrap: return .wrap(try JSONCoding.decode(WrapRequest.self, body))
        case .wrapBatch:
            let batch = try JSONCoding.decode(BatchWrapRequest.self, body)
            guard !batch.entries.isEmpty else { throw ByokError(.badRequest, "the batch has no entries") }
            guard batch.entries.count <= 10_000 else {
                throw ByokError(.badRequest, "a batch takes at most 10,000 entries; this one has \(batch.entries.count)")
            }
            return .wrapBatch(batch)
        case .selftest: return .selftest
        case .audit: return .audit
        case .auditVerify: return .auditVerify(log: body)
        case .auditHead: return .auditHead
        case .kmsImport: return .kmsImport(try JSONCoding.decode(KMSImportRequest.self, body))
        case .kmsCreateKey: return .kmsCreateKey(try JSONCoding.decode(KMSCreateKeyRequest.self, body))
        case .kmsRotate: return .kmsRotate(try JSONCoding.decode(KMSRotateRequest.self, body))
        case .kmsMaterials: return .kmsMaterials(try JSONCoding.decode(KMSMaterialsRequest.self, body))
        case .approvalsList: return .approvalsList
        case .approve:
            // byokctl before 0.2 sent no body.
            return .approve(id: id ?? "", body.isEmpty ? ApproveRequest(wrappingKeySha256: nil) : try JSONCoding.decode(ApproveRequest.self, body))
        case .trust: return .trust(id: id ?? "", try JSONCoding.decode(TrustRequest.self, body))
        case .requestPoll: return .requestPoll(id: id ?? "")
        }
    }
}

extension KMSImportRequest {
    /// A rotation imports new key material.
    init(_ r: KMSRotateRequest) {
        self.init(kmsKeyId: r.kmsKeyId, key: r.key, wrappingAlgorithm: r.wrappingAlgorithm, wrappingKeySpec: r.wrappingKeySpec,
                  validTo: r.validTo, importType: "NEW_KEY_MATERIAL", keyMaterialDescription: r.keyMaterialDescription)
    }
}

extension WrapRequest {
    /// A batch entry is a wrap request with a name.
    init(_ entry: BatchWrapRequest.Entry) {
        self.init(key: entry.key, parameters: entry.parameters, wrappingAlgorithm: entry.wrappingAlgorithm)
    }
}
