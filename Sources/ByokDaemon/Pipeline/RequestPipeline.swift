import BYOK
import ByokAPI
import Foundation
import Logging

/// The one path every request takes (docs/DESIGN.md, "A request, hop by hop"):
/// endpoint → authorize (kernel peer credentials) → decode the body once → hold for a second
/// operator, or execute → one audit record, durable before the answer → encode.
final class RequestPipeline: Sendable {
    let service: TokenService
    let policy: AccessPolicy
    let audit: AuditLog
    let approvals: Approvals
    let twoPerson: Set<Operation>
    /// The token key that MACs audit records (`auditMacKey`), for `audit verify --with-token`.
    let macKey: String?

    init(service: TokenService, policy: AccessPolicy, audit: AuditLog, approvals: Approvals, twoPerson: Set<Operation>, macKey: String?) {
        self.service = service
        self.policy = policy
        self.audit = audit
        self.approvals = approvals
        self.twoPerson = twoPerson
        self.macKey = macKey
    }

    func handle(_ http: HTTPRequest, peer: PeerCredentials?, logger: Logger) -> HTTPResponse {
        let started = Date()
        let requestId = logger[metadataKey: "request"].map { "\($0)" } ?? "-"
        expireApprovals(requestId: requestId)
        var record = AuditRecords.start("unknown", requestId: requestId, peer: peer)
        let result: Result<Outcome, ByokError>
        do {
            let (endpoint, id) = try Endpoint.match(http.method, http.path)
            record.operation = endpoint.operation.rawValue
            let caller = try authorize(endpoint.operation, peer)
            let request = try DaemonRequest.decode(endpoint, id: id, body: http.body)
            AuditRecords.describe(request, into: &record)
            result = .success(try dispatch(request, caller: caller, record: &record))
        } catch {
            result = .failure(ByokError.wrapping(error))
        }
        AuditRecords.complete(&record, with: result)
        var response = result.response()
        // One record per request, durable before the answer; no record, no answer. A requester
        // polling a request that still waits leaves no record (they poll every second).
        if !(record.operation == Operation.requestPoll.rawValue && record.result == "pending") {
            do { try audit.append(record) } catch {
                logger.critical("audit log write failed; refusing the answer", metadata: ["error": "\(error)"])
                response = .error(ByokError(.auditLogFailed, "byokd cannot write its audit log, so it gives no answer; see the daemon's log"))
            }
        }
        if logger.logLevel <= .info {
            logger.info("\(http.method) \(http.path)", metadata: [
                "peer": "\(peer?.description ?? "?")", "status": "\(response.status)", "operation": "\(record.operation)",
                "ms": "\(Int(Date().timeIntervalSince(started) * 1000))",
            ])
        }
        return response
    }

    /// The caller, if the access list lets them do `operation` (every permission it needs). A poll
    /// needs only an identity: whether it is the requester's is checked against the request.
    private func authorize(_ operation: Operation, _ peer: PeerCredentials?) throws -> PeerCredentials {
        guard let peer else { throw ByokError(.denied, "byokd could not learn who is calling (SO_PEERCRED failed); refusing") }
        if let missing = operation.permissions.first(where: { !policy.allows($0, peer) }) {
            let what = missing == operation ? missing.rawValue : "\(missing.rawValue) (which \(operation.rawValue) needs)"
            throw ByokError(.denied, "user \(peer.userName) (uid \(peer.uid)) may not \(what) on this byokd; ask its administrator to add you to the access list")
        }
        return peer
    }

    /// Holds, approves, collects or executes a request.
    private func dispatch(_ request: DaemonRequest, caller: PeerCredentials, record: inout AuditRecord) throws -> Outcome {
        switch request {
        case .approve(let id):
            return try approve(id, approver: caller, record: &record)
        case .requestPoll(let id):
            return try collect(id, caller: caller)
        case .approvalsList:
            return .approvals(PendingListResponse(pending: approvals.waiting().map(Approvals.describe)))
        case .wrapBatch(let batch):
            if twoPerson.contains(.wrap) {
                throw ByokError(.badRequest, "batch wraps are not available while wrap needs a second operator's approval; wrap the keys one by one")
            }
            return .batch(BatchStream(batch: batch, caller: caller, requestId: record.requestId, service: service, audit: audit))
        default:
            if twoPerson.contains(request.operation) {
                let entry = try approvals.add(request, requester: caller, summary: Approvals.summary(request))
                return .pending(Approvals.describe(entry))
            }
            return try execute(request, record: &record)
        }
    }

    /// Runs an operation on the token (or the audit log, or AWS KMS) and returns its outcome. One
    /// that touches the token writes `record` ahead as its intent first; the outcome names it.
    private func execute(_ request: DaemonRequest, record: inout AuditRecord) throws -> Outcome {
        if request.operation.writesAhead { record.intent = try audit.intent(record) }
        switch request {
        case .status: return .status(service.status())
        case .keysList: return .keys(try service.listKeys())
        case .keysGenerate(let g): return .generated(try service.generate(g))
        case .wrap(let w): return .wrapped(try service.wrap(w))
        case .selftest:
            let results = try service.runSelfTest()
            return .selfTest(SelfTestResponse(algorithms: results.map(\.statusLine), at: Timestamp.string(Date())))
        case .audit: return .auditLog(try audit.contents())
        case .auditVerify(let log): return .auditVerified(try verify(log))
        case .auditHead:
            let head = audit.head()
            return .auditHead(AuditHeadResponse(seq: head.seq, hash: head.hash))
        case .kmsCreateKey(let k): return .kmsCreated(try service.kmsCreateKey(k))
        case .kmsImport(let k): return .kmsImported(try service.kmsImport(k))
        case .wrapBatch, .approvalsList, .approve, .requestPoll:
            throw ByokError(.internal, "\(request.operation.rawValue) is not run directly")
        }
    }

    /// A second operator approves: the held request runs now, through `execute`, with its own
    /// audit record in the requester's name naming the approver. The approver learns only how it
    /// ended; the requester collects the outcome.
    private func approve(_ id: String, approver: PeerCredentials, record: inout AuditRecord) throws -> Outcome {
        guard let entry = approvals.get(id) else {
            throw ByokError(.approvalNotFound, "no request \(id) is waiting for approval (`byokctl pending` lists them)")
        }
        record.requestedBy = AuditRecords.peer(entry.requester)
        guard entry.requester.uid != approver.uid else {
            throw ByokError(.denied, "you cannot approve your own request \(id); a second operator must")
        }
        guard let claimed = approvals.claim(id) else {
            throw ByokError(.approvalNotFound, "request \(id) is no longer waiting (approved already, or expired)")
        }
        var executed = AuditRecords.approved(claimed.request, requester: claimed.requester, approver: approver, id: id, requestId: record.requestId)
        var result = Result { try execute(claimed.request, record: &executed) }.mapError(ByokError.wrapping)
        AuditRecords.complete(&executed, with: result)
        do { try audit.append(executed) } catch {
            result = .failure(ByokError(.auditLogFailed, "byokd cannot write its audit log, so the approved \(claimed.operation.rawValue) gives no answer"))
        }
        approvals.finish(id, result)
        let error: ErrorBody.Inner? = if case .failure(let e) = result { ErrorBody(e).error } else { nil }
        return .approved(ApprovalResponse(id: id, operation: claimed.operation.rawValue, requestedBy: claimed.requester.userName,
                                          result: error == nil ? "ok" : "error", error: error))
    }

    /// The requester collects their approved request's outcome (once), or learns it still waits.
    private func collect(_ id: String, caller: PeerCredentials) throws -> Outcome {
        guard let entry = approvals.get(id) else {
            throw ByokError(.approvalNotFound, "no request \(id) is known (it may have been collected already)")
        }
        guard entry.requester.uid == caller.uid else { throw ByokError(.denied, "request \(id) belongs to another user") }
        switch entry.state {
        case .waiting, .running:
            return .pending(Approvals.describe(entry))
        case .expired:
            approvals.remove(id)
            throw ByokError(.approvalExpired, "request \(id) expired at \(Timestamp.string(entry.expires)) without a second operator's approval")
        case .done(let result):
            approvals.remove(id)
            return try result.get()
        }
    }

    /// The log's chain and every record's MAC, checked with the token's MAC key.
    private func verify(_ log: [UInt8]) throws -> AuditVerifyResponse {
        guard macKey != nil, let key = service.auditMacKey else {
            throw ByokError(.badRequest, "this byokd MACs no audit records (setting auditMacKey); `byokctl audit verify` checks the chain without the token")
        }
        return AuditVerifyResponse(AuditVerifier.verify(Data(log), mac: { [service] in key.check($0, service: service) }))
    }

    /// Requests nobody approved in time: an "expired" record each, once.
    private func expireApprovals(requestId: String) {
        for e in approvals.expire() {
            var r = AuditRecords.start(e.operation.rawValue, requestId: requestId, peer: e.requester)
            AuditRecords.describe(e.request, into: &r)
            r.result = "expired"
            r.requestedBy = r.peer
            r.approvalId = e.id
            r.errorCode = ErrorCode.approvalExpired.rawValue
            try? audit.append(r)
        }
    }
}

extension ByokError {
    /// Any error as a ByokError; what is not one already is a bug (INTERNAL).
    static func wrapping(_ error: any Error) -> ByokError {
        (error as? ByokError) ?? ByokError(.internal, "\(error)")
    }
}
