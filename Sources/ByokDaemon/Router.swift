import BYOK
import ByokAPI
import Foundation
import Logging

/// Maps the HTTP API (docs/API.md) onto the token service, with authorization from the kernel's
/// peer credentials, the two-person rule, and one audit record per request written before the
/// answer goes out.
final class Router: @unchecked Sendable {
    let service: TokenService
    let policy: AccessPolicy
    let audit: AuditLog
    let approvals: Approvals
    let twoPerson: Set<Operation>
    var macKeyReference: String?

    init(service: TokenService, policy: AccessPolicy, audit: AuditLog, approvals: Approvals, twoPerson: Set<Operation>) {
        self.service = service
        self.policy = policy
        self.audit = audit
        self.approvals = approvals
        self.twoPerson = twoPerson
    }

    /// What a request path asks for.
    enum Endpoint {
        case operation(Operation)
        case batch
        case auditVerify
        case approvalsList
        case approve(String)
        case poll(String)
    }

    static func endpoint(_ method: String, _ path: String) throws -> Endpoint {
        switch (method, path) {
        case ("GET", "/v1/status"): return .operation(.status)
        case ("GET", "/v1/keys"): return .operation(.keysList)
        case ("POST", "/v1/keys"): return .operation(.keysGenerate)
        case ("POST", "/v1/wrap"): return .operation(.wrap)
        case ("POST", "/v1/wrap/batch"): return .batch
        case ("POST", "/v1/audit/verify"): return .auditVerify
        case ("POST", "/v1/selftest"): return .operation(.selftest)
        case ("GET", "/v1/audit"): return .operation(.audit)
        case ("POST", "/v1/kms/import"): return .operation(.kmsImport)
        case ("POST", "/v1/kms/create-key"): return .operation(.kmsCreateKey)
        case ("GET", "/v1/approvals"): return .approvalsList
        default: break
        }
        if ["/v1/kms/import", "/v1/kms/create-key"].contains(path) {
            throw ByokError(.badRequest, "\(method) is not allowed on \(path) (see docs/API.md)")
        }
        if method == "POST", path.hasPrefix("/v1/approvals/") { return .approve(String(path.dropFirst("/v1/approvals/".count))) }
        if method == "GET", path.hasPrefix("/v1/requests/") { return .poll(String(path.dropFirst("/v1/requests/".count))) }
        if ["/v1/status", "/v1/keys", "/v1/wrap", "/v1/selftest", "/v1/audit", "/v1/approvals"].contains(path) {
            throw ByokError(.badRequest, "\(method) is not allowed on \(path) (see docs/API.md)")
        }
        throw ByokError(.notFound, "no such endpoint \(path); see docs/API.md")
    }

    func handle(_ request: HTTPRequest, peer: PeerCredentials?, logger: Logger) -> HTTPResponse {
        let started = Date()
        let rid = logger[metadataKey: "request"].map { "\($0)" } ?? "-"
        expireApprovals(requestId: rid)
        var record = AuditRecord(time: Timestamp.string(started), requestId: rid, operation: "unknown", result: "error")
        record.peer = peer.map(Self.auditPeer)
        var response: HTTPResponse
        do {
            response = try route(request, peer: peer, record: &record)
        } catch let e as ByokError {
            record.result = e.code == .denied ? "denied" : "error"
            record.errorCode = e.code.rawValue
            response = .error(e)
        } catch {
            record.errorCode = ErrorCode.internal.rawValue
            response = .error(ByokError(.internal, "\(error)"))
        }
        // One record per request, durable before the answer; no record, no answer.
        if !(record.operation == "request.poll" && record.result == "pending") {
            do { try audit.append(record) } catch {
                logger.critical("audit log write failed; refusing the answer", metadata: ["error": "\(error)"])
                response = .error(ByokError(.internal, "byokd cannot write its audit log, so it gives no answer; see the daemon's log"))
            }
        }
        logger.info("\(request.method) \(request.path)", metadata: [
            "peer": "\(peer?.description ?? "?")", "status": "\(response.status)", "operation": "\(record.operation)",
            "ms": "\(Int(Date().timeIntervalSince(started) * 1000))",
        ])
        return response
    }

    static func auditPeer(_ p: PeerCredentials) -> AuditRecord.Peer {
        AuditRecord.Peer(uid: p.uid, gid: p.gid, pid: p.pid, user: p.userName)
    }

    private func authorize(_ op: Operation, _ peer: PeerCredentials?) throws -> PeerCredentials {
        guard let peer else { throw ByokError(.denied, "byokd could not learn who is calling (SO_PEERCRED failed); refusing") }
        guard policy.allows(op, peer) else {
            throw ByokError(.denied, "user \(peer.userName) (uid \(peer.uid)) may not \(op.rawValue) on this byokd; ask its administrator to add you to the access list")
        }
        return peer
    }

    private func route(_ r: HTTPRequest, peer: PeerCredentials?, record: inout AuditRecord) throws -> HTTPResponse {
        switch try Self.endpoint(r.method, r.path) {
        case .operation(let op):
            record.operation = op.rawValue
            let caller = try authorize(op, peer)
            if twoPerson.contains(op) {
                let summary = try Self.summary(op, r.body)
                let entry = approvals.add(operation: op, body: r.body, requester: caller, summary: summary)
                record.result = "pending"
                record.approvalId = entry.id
                Self.describe(op, r.body, into: &record)
                return .json(PendingBody(pending: Approvals.describe(entry)), status: 202)
            }
            return try execute(op, r.body, record: &record)

        case .batch:
            record.operation = "wrap.batch"
            let caller = try authorize(.wrap, peer)
            if twoPerson.contains(.wrap) {
                throw ByokError(.badRequest, "batch wraps are not available while wrap needs a second operator's approval; wrap the keys one by one")
            }
            let batch = try JSONCoding.decode(BatchWrapRequest.self, r.body)
            guard !batch.entries.isEmpty else { throw ByokError(.badRequest, "the batch has no entries") }
            guard batch.entries.count <= 10_000 else { throw ByokError(.badRequest, "a batch takes at most 10,000 entries; this one has \(batch.entries.count)") }
            record.result = "ok"
            record.batchSize = batch.entries.count
            return streamBatch(batch, caller: caller, requestId: record.requestId)

        case .auditVerify:
            record.operation = "audit.verify"
            _ = try authorize(.audit, peer)
            guard let macKey = macKeyReference else {
                throw ByokError(.badRequest, "this byokd MACs no audit records (setting auditMacKey); `byokctl audit verify` checks the chain without the token")
            }
            let report = AuditVerifier.verify(Data(r.body), sha256Hex: { SoftwareCrypto.sha256($0).hex }, mac: { [service] rec in
                guard let mac = rec.mac.flatMap({ [UInt8](hex: $0) }),
                      let expected = service.hmac(key: macKey, SoftwareCrypto.sha256(AuditVerifier.macInput(rec))) else { return nil }
                return mac == expected
            })
            record.result = "ok"
            return .json(AuditVerifyResponse(intact: report.firstBroken == nil, records: report.records, head: report.head,
                                             firstBrokenLine: report.firstBroken?.line, reason: report.firstBroken?.reason,
                                             macVerified: report.macVerified, macMissing: report.macMissing))

        case .approvalsList:
            record.operation = "approvals.list"
            _ = try authorize(.approve, peer)
            record.result = "ok"
            return .json(PendingListResponse(pending: approvals.waiting().map(Approvals.describe)))

        case .approve(let id):
            record.operation = Operation.approve.rawValue
            record.approvalId = id
            let approver = try authorize(.approve, peer)
            guard let entry = approvals.get(id) else { throw ByokError(.approvalNotFound, "no request \(id) is waiting for approval (`byokctl pending` lists them)") }
            record.requestedBy = Self.auditPeer(entry.requester)
            guard entry.requester.uid != approver.uid else {
                throw ByokError(.denied, "you cannot approve your own request \(id); a second operator must")
            }
            guard let claimed = approvals.claim(id) else {
                throw ByokError(.approvalNotFound, "request \(id) is no longer waiting (approved already, or expired)")
            }
            // The approved operation: its own audit record, in the requester's name, with the approver.
            var exec = AuditRecord(time: Timestamp.string(Date()), requestId: record.requestId, operation: claimed.operation.rawValue, result: "error")
            exec.peer = Self.auditPeer(claimed.requester)
            exec.requestedBy = Self.auditPeer(claimed.requester)
            exec.approvedBy = Self.auditPeer(approver)
            exec.approvalId = id
            var response: HTTPResponse
            do { response = try execute(claimed.operation, claimed.body, record: &exec) } catch let e as ByokError {
                exec.result = "error"; exec.errorCode = e.code.rawValue
                response = .error(e)
            }
            do { try audit.append(exec) } catch {
                response = .error(ByokError(.internal, "byokd cannot write its audit log, so the approved \(claimed.operation.rawValue) gives no answer"))
            }
            approvals.finish(id, response)
            record.result = "ok"
            let err = response.status >= 300 ? (try? JSONDecoder().decode(ErrorBody.self, from: Data(response.body)))?.error : nil
            return .json(ApprovalResponse(id: id, operation: claimed.operation.rawValue, requestedBy: claimed.requesterName,
                                          result: err == nil ? "ok" : "error", error: err))

        case .poll(let id):
            record.operation = "request.poll"
            record.approvalId = id
            guard let peer else { throw ByokError(.denied, "byokd could not learn who is calling") }
            guard let entry = approvals.get(id) else { throw ByokError(.approvalNotFound, "no request \(id) is known (it may have been collected already)") }
            guard entry.requester.uid == peer.uid else { throw ByokError(.denied, "request \(id) belongs to another user") }
            switch entry.state {
            case .waiting, .running:
                record.result = "pending"
                return .json(PendingBody(pending: Approvals.describe(entry)), status: 202)
            case .expired:
                approvals.remove(id)
                throw ByokError(.approvalExpired, "request \(id) expired at \(Timestamp.string(entry.expires)) without a second operator's approval")
            case .done(let response):
                approvals.remove(id)
                record.result = response.status < 300 ? "ok" : "error"
                return response
            }
        }
    }

    /// Streams a batch's results: each group's wraps are audited (one sync) before their lines go out.
    private func streamBatch(_ batch: BatchWrapRequest, caller: PeerCredentials, requestId: String) -> HTTPResponse {
        let service = self.service, audit = self.audit
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        var response = HTTPResponse(status: 200, body: [], contentType: "application/x-ndjson")
        response.stream = { write in
            struct ClientGone: Error {}
            do {
                try service.wrapBatch(batch.entries) { group in
                    var records: [AuditRecord] = []
                    for (i, result) in group {
                        var r = AuditRecord(time: Timestamp.string(Date()), requestId: requestId, operation: Operation.wrap.rawValue, result: "ok")
                        r.peer = Self.auditPeer(caller)
                        r.batchIndex = i
                        r.batchSize = batch.entries.count
                        r.key = .init(label: batch.entries[i].key)
                        r.wrappingAlgorithm = batch.entries[i].wrappingAlgorithm
                        r.kmsKeyId = batch.entries[i].parameters.kmsKeyId
                        switch result {
                        case .success(let w):
                            let m = w.manifest
                            r.key = .init(label: m.key.label, id: m.key.id, spec: m.key.spec, fingerprint: m.key.kcv ?? m.key.publicKeySha256)
                            r.wrappingPublicKeySha256 = m.wrappingPublicKeySha256
                            r.kmsKeyId = m.kmsKeyId
                            r.encryptedKeyMaterialSha256 = m.encryptedKeyMaterialSha256
                        case .failure(let e):
                            r.result = "error"
                            r.errorCode = e.code.rawValue
                        }
                        records.append(r)
                    }
                    try audit.append(records)
                    var out: [UInt8] = []
                    for (i, result) in group {
                        let line: BatchResult
                        switch result {
                        case .success(let w): line = BatchResult(index: i, name: batch.entries[i].name, result: w, error: nil)
                        case .failure(let e): line = BatchResult(index: i, name: batch.entries[i].name, result: nil, error: ErrorBody(e).error)
                        }
                        out += Array((try? enc.encode(line)) ?? Data()) + [10]
                    }
                    guard write(out) else { throw ClientGone() }
                }
            } catch is ClientGone {
                return
            } catch {
                let e = (error as? ByokError) ?? ByokError(.internal, "\(error)")
                _ = write(Array((try? enc.encode(BatchResult(index: -1, name: "", result: nil, error: ErrorBody(e).error))) ?? Data()) + [10])
            }
        }
        return response
    }

    private func expireApprovals(requestId: String) {
        for e in approvals.expire() {
            var r = AuditRecord(time: Timestamp.string(Date()), requestId: requestId, operation: e.operation.rawValue, result: "expired")
            r.peer = Self.auditPeer(e.requester)
            r.requestedBy = r.peer
            r.approvalId = e.id
            r.errorCode = ErrorCode.approvalExpired.rawValue
            try? audit.append(r)
        }
    }

    /// Runs an operation and fills its audit record.
    private func execute(_ op: Operation, _ body: [UInt8], record: inout AuditRecord) throws -> HTTPResponse {
        Self.describe(op, body, into: &record)
        let response: HTTPResponse
        switch op {
        case .status:
            response = .json(service.status())
        case .keysList:
            response = .json(try service.listKeys())
        case .keysGenerate:
            let k = try service.generate(try JSONCoding.decode(GenerateRequest.self, body))
            record.key = .init(label: k.label, id: k.id, spec: k.spec, fingerprint: k.kcv ?? k.publicKeySha256)
            response = .json(k, status: 201)
        case .wrap:
            let w = try service.wrap(try JSONCoding.decode(WrapRequest.self, body))
            let m = w.manifest
            record.key = .init(label: m.key.label, id: m.key.id, spec: m.key.spec, fingerprint: m.key.kcv ?? m.key.publicKeySha256)
            record.wrappingAlgorithm = m.wrappingAlgorithm
            record.wrappingPublicKeySha256 = m.wrappingPublicKeySha256
            record.kmsKeyId = m.kmsKeyId
            record.encryptedKeyMaterialSha256 = m.encryptedKeyMaterialSha256
            response = .json(w)
        case .selftest:
            let results = try service.runSelfTest()
            response = .json(SelfTestResponse(algorithms: results.map {
                .init(name: $0.algorithm.rawValue, state: $0.state.rawValue, via: $0.route?.description, reason: $0.reason)
            }, at: Timestamp.string(Date())))
        case .audit:
            response = HTTPResponse(status: 200, body: Array(audit.contents()), contentType: "application/jsonl")
        case .kmsCreateKey:
            response = .json(try service.kmsCreateKey(try JSONCoding.decode(KMSCreateKeyRequest.self, body)), status: 201)
        case .kmsImport:
            let req = try JSONCoding.decode(KMSImportRequest.self, body)
            record.key = .init(label: req.key)
            record.kmsKeyId = req.kmsKeyId
            let r = try service.kmsImport(req)
            let m = r.wrap.manifest
            record.key = .init(label: m.key.label, id: m.key.id, spec: m.key.spec, fingerprint: m.key.kcv ?? m.key.publicKeySha256)
            record.wrappingAlgorithm = m.wrappingAlgorithm
            record.wrappingPublicKeySha256 = m.wrappingPublicKeySha256
            record.kmsKeyId = r.kms.arn.isEmpty ? req.kmsKeyId : r.kms.arn
            record.encryptedKeyMaterialSha256 = m.encryptedKeyMaterialSha256
            response = .json(r)
        case .approve:
            throw ByokError(.badRequest, "approve takes an id: POST /v1/approvals/ID")
        }
        record.result = "ok"
        return response
    }

    /// What the request names, for the audit record even when it fails.
    static func describe(_ op: Operation, _ body: [UInt8], into record: inout AuditRecord) {
        switch op {
        case .keysGenerate:
            if let g = try? JSONDecoder().decode(GenerateRequest.self, from: Data(body)) { record.key = .init(label: g.label, spec: g.spec) }
        case .wrap:
            if let w = try? JSONDecoder().decode(WrapRequest.self, from: Data(body)) {
                record.key = .init(label: w.key)
                record.wrappingAlgorithm = w.wrappingAlgorithm
                record.kmsKeyId = w.parameters.kmsKeyId
            }
        default: break
        }
    }

    /// A line for the approver: what exactly they are approving.
    static func summary(_ op: Operation, _ body: [UInt8]) throws -> String {
        switch op {
        case .keysGenerate:
            let g = try JSONCoding.decode(GenerateRequest.self, body)
            return "generate \(g.spec) key \"\(g.label)\""
        case .wrap:
            let w = try JSONCoding.decode(WrapRequest.self, body)
            var kms = w.parameters.kmsKeyId
            if kms == nil, let j = w.parameters.awsJSON, let d = Data(base64Encoded: j),
               let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any] { kms = o["KeyId"] as? String }
            return "wrap key \"\(w.key)\" with \(w.wrappingAlgorithm ?? "the parameters' algorithm") for KMS key \(kms ?? "(not named)")"
        default:
            return op.rawValue
        }
    }
}
