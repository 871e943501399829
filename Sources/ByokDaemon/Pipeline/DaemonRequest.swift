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
    case approvalsList
    case approve(id: String)
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
        case .approvalsList: .approvalsList
        case .approve: .approve
        case .requestPoll: .requestPoll
        }
    }

    /// Decodes the body an endpoint takes (bodies of GET endpoints are ignored).
    static func decode(_ endpoint: Endpoint, id: String?, body: [UInt8]) throws -> DaemonRequest {
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
        case .approvalsList: return .approvalsList
        case .approve: return .approve(id: id ?? "")
        case .requestPoll: return .requestPoll(id: id ?? "")
        }
    }
}

extension WrapRequest {
    /// A batch entry is a wrap request with a name.
    init(_ entry: BatchWrapRequest.Entry) {
        self.init(key: entry.key, parameters: entry.parameters, wrappingAlgorithm: entry.wrappingAlgorithm)
    }
}
