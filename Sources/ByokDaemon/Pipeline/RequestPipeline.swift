import BYOK
import ByokAPI
import Foundation
import Logging
import PKCS11

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
    /// Where wrapping keys may come from (`wrappingKeySources`).
    let sources: Set<WrappingKeySource>
    /// Every wrap waits for the Security Officer's step (`trustedWrapping`).
    let trustedWrapping: Bool

    init(service: TokenService, policy: AccessPolicy, audit: AuditLog, approvals: Approvals, twoPerson: Set<Operation>, macKey: String?,
         sources: Set<WrappingKeySource> = Set(WrappingKeySource.allCases), trustedWrapping: Bool = false) {
        self.service = service
        self.policy = policy
        self.audit = audit
        self.approvals = approvals
        self.twoPerson = twoPerson
        self.macKey = macKey
        self.sources = sources
        self.trustedWrapping = trustedWrapping
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
            // One line per request; a wrap's details are in its audit record (and at debug).
            var metadata: Logger.Metadata = [
                "peer": "\(peer?.description ?? "?")", "status": "\(response.status)", "operation": "\(record.operation)",
                "ms": "\(Int(Date().timeIntervalSince(started) * 1000))",
            ]
            if let label = record.key?.label { metadata["key"] = "\(label)" }
            logger.info("\(http.method) \(http.path)", metadata: metadata)
        }
        return response
    }

    /// The caller, if the access list lets them do `operation` (every permission it needs). A poll
    /// needs only an identity: whether it is the requester's is checked against the request.
    private func authorize(_ operation: Operation, _ peer: PeerCredentials?) throws -> PeerCredentials {
        guard let peer else { throw ByokError(.denied, "byokd could not learn who is calling (SO_PEERCRED failed); refusing") }
        if let missing = operation.permissions.first(where: { !policy.allows($0, peer) }) {
            let what = missing == operation ? missing.rawValue : "\(missing.rawValue) (which \(operation.rawValue) needs)"
            throw ByokError(.denied, "user \(peer.userName) (uid \(peer.uid)) is not allowed the operation \(what) on this byokd; ask its administrator to add you to the access list")
        }
        return peer
    }

    /// Holds, approves, trusts, collects or executes a request.
    private func dispatch(_ request: DaemonRequest, caller: PeerCredentials, record: inout AuditRecord) throws -> Outcome {
        if request.operation.wraps { try checkSource(request.operation == .kmsImport || request.operation == .kmsRotate ? .kms : .operator) }
        switch request {
        case .approve(let id, let body):
            return try approve(id, body, approver: caller, record: &record)
        case .trust(let id, let body):
            return try trust(id, body, officer: caller, record: &record)
        case .requestPoll(let id):
            return try collect(id, caller: caller)
        case .approvalsList:
            return .approvals(PendingListResponse(pending: approvals.waiting().map(Approvals.describe)))
        case .wrapBatch(let batch):
            if trustedWrapping {
                throw ByokError(.badRequest, "batch wraps are not available with trustedWrapping on (each wrap waits for the Security Officer); wrap the keys one by one")
            }
            if twoPerson.contains(.wrap) {
                throw ByokError(.badRequest, "batch wraps are not available while wrap needs a second operator's approval; wrap the keys one by one")
            }
            return .batch(BatchStream(batch: batch, caller: caller, requestId: record.requestId, service: service, audit: audit))
        default:
            let needsTrust = trustedWrapping && [.wrap, .kmsImport, .kmsRotate].contains(request.operation)
            guard needsTrust || twoPerson.contains(request.operation) else { return try execute(request, plan: nil, record: &record) }
            // Held: a wrap is checked now (parameters, key, rules), so the second person sees what
            // will run and the requester learns of a mistake at once; within the bounds first.
            try approvals.admissible(request, requester: caller)
            let plan: WrapPlan? = switch request {
            case .wrap(let w): try service.plan(w)
            case .kmsImport(let k): try service.planKMSImport(k)
            case .kmsRotate(let k): try service.planKMSImport(KMSImportRequest(k))
            default: nil
            }
            let entry = try approvals.add(request, plan: plan, needs: needsTrust ? .trust : .approve, requester: caller)
            return .pending(Approvals.describe(entry))
        }
    }

    private func checkSource(_ source: WrappingKeySource) throws {
        guard sources.contains(source) else {
            throw ByokError(.wrappingKeySourceRefused, source == .operator
                ? "this byokd accepts only wrapping keys it fetched from AWS KMS itself (setting wrappingKeySources); use `byokctl kms import` instead of wrapping under a key a client sends"
                : "this byokd does not fetch wrapping keys from AWS KMS (setting wrappingKeySources)")
        }
    }

    /// Runs an operation on the token (or the audit log, or AWS KMS) and returns its outcome. A
    /// held wrap runs the plan that was shown. One that touches the token writes `record` ahead as
    /// its intent first; the outcome names it.
    private func execute(_ request: DaemonRequest, plan: WrapPlan?, record: inout AuditRecord) throws -> Outcome {
        if let durability = request.operation.writesAhead { record.intent = try audit.intent(record, durability: durability) }
        switch request {
        case .status: return .status(service.status())
        case .keysList: return .keys(try service.listKeys())
        case .keysGenerate(let g): return .generated(try service.generate(g))
        case .wrap(let w): return .wrapped(try plan.map(service.wrap) ?? service.wrap(w))
        case .selftest:
            let results = try service.runSelfTest()
            return .selfTest(SelfTestResponse(algorithms: results.map(\.statusLine), at: Timestamp.string(Date())))
        case .audit: return .auditLog(try audit.contents())
        case .auditVerify(let log): return .auditVerified(try verify(log))
        case .auditHead:
            let head = audit.head()
            return .auditHead(AuditHeadResponse(seq: head.seq, hash: head.hash))
        case .kmsCreateKey(let k): return .kmsCreated(try service.kmsCreateKey(k))
        case .kmsImport(let k):
            guard let plan else { return .kmsImported(try service.kmsImport(k)) }
            return .kmsImported(try service.finishKMSImport(plan, wrapped: try service.wrap(plan)))
        case .kmsRotate(let k):
            let plan = try plan ?? service.planKMSImport(KMSImportRequest(k))
            return .kmsRotated(try service.kmsRotate(plan, wrapped: try service.wrap(plan)))
        case .kmsMaterials(let k): return .kmsMaterials(try service.kmsMaterials(k))
        case .wrapBatch, .approvalsList, .approve, .trust, .requestPoll:
            throw ByokError(.internal, "\(request.operation.rawValue) is not run directly")
        }
    }

    /// The entry `id` names, for a second person who is not its requester.
    private func heldEntry(_ id: String, by second: PeerCredentials, record: inout AuditRecord) throws -> Approvals.Entry {
        guard let entry = approvals.get(id) else {
            throw ByokError(.approvalNotFound, "no request \(Display.escaped(id)) is waiting for approval (`byokctl pending` lists them)")
        }
        record.requestedBy = AuditRecords.peer(entry.requester)
        guard entry.requester.uid != second.uid else {
            throw ByokError(.denied, "you cannot approve your own request \(id); a second person must")
        }
        return entry
    }

    /// A wrapping key a client chose is approved only by someone who states its fingerprint, read
    /// from a copy of the parameters they trust: a rubber stamp cannot pass.
    private func confirmFingerprint(_ given: String?, of plan: WrapPlan, id: String) throws {
        let hex = (given ?? "").lowercased().filter { $0 != ":" && $0 != " " }
        guard hex.count >= 16, hex.allSatisfy(\.isHexDigit) else {
            throw ByokError(.wrappingKeyUnconfirmed, "request \(id) wraps under a wrapping key the requester supplied; approve it with --wrapping-key-sha256 and at least the first 16 hex digits of that key's SHA-256, read from your own copy of the AWS parameters (`byokctl pending` shows what byokd received)")
        }
        guard plan.wrappingKeySha256.hasPrefix(hex) else {
            throw ByokError(.denied, "the wrapping key SHA-256 you gave does not match the key request \(id) would wrap under; do not approve it — the parameters are not the ones you checked")
        }
    }

    /// A second operator approves: the held request runs now, through `execute`, with its own
    /// audit record in the requester's name naming the approver. The approver learns only how it
    /// ended; the requester collects the outcome.
    private func approve(_ id: String, _ body: ApproveRequest, approver: PeerCredentials, record: inout AuditRecord) throws -> Outcome {
        let entry = try heldEntry(id, by: approver, record: &record)
        guard entry.needs == .approve else {
            throw ByokError(.badRequest, "request \(id) waits for the Security Officer (`byokctl trust \(id)`), not for an approval")
        }
        if let plan = entry.plan, plan.source == .operator { try confirmFingerprint(body.wrappingKeySha256, of: plan, id: id) }
        return try runHeld(id, second: approver, record: &record) { try execute($0.request, plan: $0.plan, record: &$1) }
    }

    /// The Security Officer trusts a held wrap's wrapping key on the token for this one wrap.
    private func trust(_ id: String, _ body: TrustRequest, officer: PeerCredentials, record: inout AuditRecord) throws -> Outcome {
        let entry = try heldEntry(id, by: officer, record: &record)
        guard entry.needs == .trust, let plan = entry.plan else {
            throw ByokError(.badRequest, "request \(id) waits for an operator's approval (`byokctl approve \(id)`), not for the Security Officer")
        }
        try confirmFingerprint(body.wrappingKeySha256, of: plan, id: id)
        guard var bytes = Data(base64Encoded: body.soPin).map([UInt8].init), !bytes.isEmpty else {
            throw ByokError(.badRequest, "the request body's soPin is not base64")
        }
        let soPIN = PIN(wiping: &bytes)
        return try runHeld(id, second: officer, record: &record, trustedBy: true) { entry, executed in
            executed.intent = try audit.intent(executed)
            let wrapped = try service.trustedWrap(plan, soPIN: soPIN, tag: entry.id)
            switch entry.request {
            case .kmsImport: return .kmsImported(try service.finishKMSImport(plan, wrapped: wrapped))
            case .kmsRotate: return .kmsRotated(try service.kmsRotate(plan, wrapped: wrapped))
            default: return .wrapped(wrapped)
            }
        }
    }

    /// Runs a held request once (claimed, so a second approval cannot run it again), audits it in
    /// the requester's name with the second person, and keeps the outcome for the requester.
    private func runHeld(_ id: String, second: PeerCredentials, record: inout AuditRecord, trustedBy: Bool = false,
                         _ run: (Approvals.Entry, inout AuditRecord) throws -> Outcome) throws -> Outcome {
        guard let claimed = approvals.claim(id) else {
            throw ByokError(.approvalNotFound, "request \(id) is no longer waiting (approved already, or expired)")
        }
        var executed = AuditRecords.approved(claimed.request, requester: claimed.requester, approver: second, id: id, requestId: record.requestId)
        if trustedBy { executed.trustedBy = executed.approvedBy; executed.approvedBy = nil }
        var result = Result { try run(claimed, &executed) }.mapError(ByokError.wrapping)
        AuditRecords.complete(&executed, with: result)
        do { try audit.append(executed) } catch {
            result = .failure(ByokError(.auditLogFailed, "byokd cannot write its audit log, so the approved \(claimed.operation.rawValue) gives no answer"))
        }
        approvals.finish(id, result)
        let error: ErrorBody.Inner? = if case .failure(let e) = result { ErrorBody(e).error } else { nil }
        return .approved(ApprovalResponse(id: id, operation: claimed.operation.rawValue, requestedBy: Display.escaped(claimed.requester.userName),
                                          result: error == nil ? "ok" : "error", error: error))
    }

    /// The requester collects their approved request's outcome (once), or learns it still waits.
    private func collect(_ id: String, caller: PeerCredentials) throws -> Outcome {
        guard let entry = approvals.get(id) else {
            throw ByokError(.approvalNotFound, "no request \(Display.escaped(id)) is known (it may have been collected already)")
        }
        guard entry.requester.uid == caller.uid else { throw ByokError(.denied, "request \(id) belongs to another user") }
        switch entry.state {
        case .waiting, .running:
            return .pending(Approvals.describe(entry))
        case .expired:
            approvals.remove(id)
            throw ByokError(.approvalExpired, "request \(id) expired at \(Timestamp.string(entry.expires)) without a second person's approval")
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
