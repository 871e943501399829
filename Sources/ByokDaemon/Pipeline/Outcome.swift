import ByokAPI

/// What an operation produced, as a domain value. The audit record is built from it and the HTTP
/// answer is encoded from it; nothing downstream re-reads an encoded answer.
enum Outcome: Sendable {
    case status(StatusResponse)
    case keys(KeyListResponse)
    case generated(KeyInfo)
    case wrapped(WrapResponse)
    case selfTest(SelfTestResponse)
    case auditLog([UInt8])
    case auditVerified(AuditVerifyResponse)
    case auditHead(AuditHeadResponse)
    case kmsCreated(KMSKeyInfo)
    case kmsImported(KMSImportResponse)
    case kmsRotated(KMSRotateResponse)
    case kmsMaterials(KMSMaterialsResponse)
    case approvals(PendingListResponse)
    /// Held for a second operator (answer 202).
    case pending(PendingRequest)
    /// The approver's view of the operation they approved (never its key material).
    case approved(ApprovalResponse)
    /// A batch's results, streamed as they are audited.
    case batch(BatchStream)

    /// The HTTP answer.
    func response() -> HTTPResponse {
        switch self {
        case .status(let v): .json(v)
        case .keys(let v): .json(v)
        case .generated(let v): .json(v, status: 201)
        case .wrapped(let v): .json(v)
        case .selfTest(let v): .json(v)
        case .auditLog(let bytes): HTTPResponse(status: 200, body: bytes, contentType: "application/jsonl")
        case .auditVerified(let v): .json(v)
        case .auditHead(let v): .json(v)
        case .kmsCreated(let v): .json(v, status: 201)
        case .kmsImported(let v): .json(v)
        case .kmsRotated(let v): .json(v)
        case .kmsMaterials(let v): .json(v)
        case .approvals(let v): .json(v)
        case .pending(let v): .json(PendingBody(pending: v), status: 202)
        case .approved(let v): .json(v)
        case .batch(let stream): stream.response()
        }
    }
}

extension Result where Success == Outcome, Failure == ByokError {
    func response() -> HTTPResponse {
        switch self {
        case .success(let o): o.response()
        case .failure(let e): .error(e)
        }
    }
}
