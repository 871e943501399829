import ByokAPI
@testable import ByokDaemon
import Foundation
import XCTest

/// The request pipeline's parts, in process: the endpoint table, the operation names, typed
/// decoding, the two-person rule's store and the audit record builder.
final class PipelineTests: XCTestCase {
    let alice = PeerCredentials(pid: 10, uid: 1001, gid: 1001, userName: "alice", groups: [1001])
    let bob = PeerCredentials(pid: 11, uid: 1002, gid: 1002, userName: "bob", groups: [1002, 500])

    func testEveryEndpointIsFoundAndOthersAreRefusedWithTheRightCode() throws {
        for e in Endpoint.table {
            let path = e.takesID ? e.path + "abc123" : e.path
            let (found, id) = try Endpoint.match(e.method, path)
            XCTAssertEqual(found.operation, e.operation, path)
            XCTAssertEqual(id, e.takesID ? "abc123" : nil, path)
        }
        XCTAssertEqual(Set(Endpoint.table.map(\.operation)), Set(Operation.allCases), "every operation has an endpoint")
        XCTAssertThrowsError(try Endpoint.match("DELETE", "/v1/keys")) { XCTAssertEqual(($0 as? ByokError)?.code, .badRequest) }
        XCTAssertThrowsError(try Endpoint.match("GET", "/v1/kms/import")) { XCTAssertEqual(($0 as? ByokError)?.code, .badRequest) }
        XCTAssertThrowsError(try Endpoint.match("GET", "/v1/approvals/abc")) { XCTAssertEqual(($0 as? ByokError)?.code, .badRequest) }
        XCTAssertThrowsError(try Endpoint.match("GET", "/v2/status")) { XCTAssertEqual(($0 as? ByokError)?.code, .notFound) }
        XCTAssertThrowsError(try Endpoint.match("GET", "/v1/statusx")) { XCTAssertEqual(($0 as? ByokError)?.code, .notFound) }
    }

    func testOperationNamesAreOneListForAccessTwoPersonRuleAndDocs() throws {
        XCTAssertEqual(Operation.accessNames.map(\.rawValue),
                       ["status", "keys.list", "keys.generate", "wrap", "selftest", "approve", "audit", "kms.import", "kms.create-key"])
        XCTAssertEqual(Operation.wrapBatch.permissions, [.wrap])
        XCTAssertEqual(Operation.auditVerify.permissions, [.audit])
        XCTAssertEqual(Operation.approvalsList.permissions, [.approve])
        XCTAssertEqual(Operation.kmsImport.permissions, [.kmsImport, .wrap], "importing wraps: it needs wrap too")
        XCTAssertEqual(Operation.requestPoll.permissions, [])
        // `access` takes only the names that authorize.
        XCTAssertThrowsError(try AccessPolicy(config: ["wrap.batch": ["uid:0"]], socketGroup: nil))
        XCTAssertNoThrow(try AccessPolicy(config: ["kms.import": ["uid:0"]], socketGroup: nil))
        for bad in ["approve", "audit", "wrap.batch", "request.poll", "nonsense"] {
            XCTAssertThrowsError(try Operation.twoPersonSet([bad]), bad)
        }
        XCTAssertEqual(try Operation.twoPersonSet(["wrap", "keys.generate"]), [.wrap, .keysGenerate, .kmsImport], "kms.import follows wrap")
        // Every name is documented.
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/CONFIGURATION.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        for op in Operation.allCases { XCTAssertTrue(text.contains("`\(op.rawValue)`"), "docs/CONFIGURATION.md does not name \(op.rawValue)") }
    }

    func testAccessPolicyMatchesUidsAndGroupsAndDefaultsToRootAndTheSocketGroup() throws {
        let policy = try AccessPolicy(config: ["wrap": ["uid:1001"], "approve": ["gid:500"]], socketGroup: 1002)
        XCTAssertTrue(policy.allows(.wrap, alice))
        XCTAssertFalse(policy.allows(.wrap, bob))
        XCTAssertTrue(policy.allows(.approve, bob), "a supplementary group counts")
        XCTAssertFalse(policy.allows(.approve, alice))
        XCTAssertTrue(policy.allows(.status, bob), "unlisted: the socket's group")
        XCTAssertFalse(policy.allows(.status, alice), "unlisted: not alice's group")
    }

    func testBodiesAreDecodedOnceIntoTheirTypeAndBadOnesNameTheProblem() throws {
        let wrap = Endpoint.table.first { $0.operation == .wrap }!
        let body = Array(#"{"key":"k1","parameters":{"kmsKeyId":"arn:x"},"wrappingAlgorithm":"RSAES_OAEP_SHA_1"}"#.utf8)
        guard case .wrap(let w) = try DaemonRequest.decode(wrap, id: nil, body: body) else { return XCTFail("not a wrap") }
        XCTAssertEqual(w.key, "k1")
        XCTAssertEqual(w.parameters.kmsKeyId, "arn:x")
        XCTAssertThrowsError(try DaemonRequest.decode(wrap, id: nil, body: Array(#"{"parameters":{}}"#.utf8))) {
            XCTAssertEqual(($0 as? ByokError)?.code, .badRequest)
            XCTAssertTrue(($0 as? ByokError)?.message.contains("\"key\"") == true, "\($0)")
        }
        let batch = Endpoint.table.first { $0.operation == .wrapBatch }!
        XCTAssertThrowsError(try DaemonRequest.decode(batch, id: nil, body: Array(#"{"entries":[]}"#.utf8))) {
            XCTAssertEqual(($0 as? ByokError)?.message, "the batch has no entries")
        }
        let approve = Endpoint.table.first { $0.operation == .approve }!
        guard case .approve(let id) = try DaemonRequest.decode(approve, id: "00ff", body: []) else { return XCTFail("not an approval") }
        XCTAssertEqual(id, "00ff")
    }

    func testApprovalsHoldTypedRequestsAndHandEachOutOnce() throws {
        let approvals = Approvals(timeout: 60)
        let json = Data(#"{"KeyId":"arn:aws:kms:eu-west-1:111122223333:key/k","PublicKey":"","ImportToken":""}"#.utf8).base64EncodedString()
        let request = DaemonRequest.wrap(WrapRequest(key: "payments", parameters: ParametersInput(awsJSON: json), wrappingAlgorithm: "RSAES_OAEP_SHA_256"))
        let summary = Approvals.summary(request)
        XCTAssertEqual(summary, "wrap key \"payments\" with RSAES_OAEP_SHA_256 for KMS key arn:aws:kms:eu-west-1:111122223333:key/k")
        let a = try approvals.add(request, requester: alice, summary: summary)
        let b = try approvals.add(.keysGenerate(GenerateRequest(label: "x", spec: "HMAC_256")), requester: alice, summary: "g")
        XCTAssertNotEqual(a.id, b.id)
        XCTAssertEqual(a.id.count, 12)
        XCTAssertEqual(approvals.waiting().map(\.id), [a.id, b.id])
        XCTAssertEqual(Approvals.describe(a).requestedBy, "alice")
        XCTAssertEqual(Approvals.describe(a).operation, "wrap")

        XCTAssertNotNil(approvals.claim(a.id))
        XCTAssertNil(approvals.claim(a.id), "a request runs once")
        XCTAssertEqual(approvals.waiting().map(\.id), [b.id])
        approvals.finish(a.id, .failure(ByokError(.keyNotFound, "no key")))
        guard case .done(.failure(let e)) = approvals.get(a.id)?.state else { return XCTFail("no outcome kept") }
        XCTAssertEqual(e.code, .keyNotFound)

        let later = Date().addingTimeInterval(61)
        XCTAssertNil(approvals.claim(b.id, now: later), "an expired request cannot be approved")
        XCTAssertEqual(approvals.expire(now: later).map(\.id), [b.id])
        XCTAssertEqual(approvals.expire(now: later).count, 0, "expired once")
        approvals.remove(b.id)
        XCTAssertNil(approvals.get(b.id))
    }

    func testAuditRecordsNameTheRequestEvenWhenItFailsAndTheOutcomeWhenItWorks() throws {
        let request = DaemonRequest.wrap(WrapRequest(key: "k1", parameters: ParametersInput(kmsKeyId: "arn:k"), wrappingAlgorithm: "RSAES_OAEP_SHA_1"))
        let failed = AuditRecords.record(for: request, result: .failure(ByokError(.paramsExpired, "old")), requestId: "r1", peer: alice)
        XCTAssertEqual(failed.operation, "wrap")
        XCTAssertEqual(failed.result, "error")
        XCTAssertEqual(failed.errorCode, "PARAMS_EXPIRED")
        XCTAssertEqual(failed.key?.label, "k1")
        XCTAssertEqual(failed.wrappingAlgorithm, "RSAES_OAEP_SHA_1")
        XCTAssertEqual(failed.kmsKeyId, "arn:k")
        XCTAssertEqual(failed.peer?.uid, 1001)
        XCTAssertEqual(AuditRecords.record(for: request, result: .failure(ByokError(.denied, "no")), requestId: "r", peer: bob).result, "denied")

        let info = KeyInfo(label: "k1", id: "0a0b", spec: "SYMMETRIC_DEFAULT", type: "secret/AES-256", kcv: "ABCDEF", publicKeySha256: nil,
                           sensitive: true, extractable: true, uri: "pkcs11:")
        let manifest = Manifest(kmsKeyId: "arn:full", wrappingAlgorithm: "RSAES_OAEP_SHA_1", wrappingKeySpec: "RSA_2048",
                                wrappingPublicKeySha256: "aa", parametersValidTo: nil, key: .init(info, spec: "SYMMETRIC_DEFAULT"),
                                token: .init(label: "t", serial: "s", model: "m"), wrapMechanism: "C_WrapKey",
                                encryptedKeyMaterialSha256: "bb", importTokenSha256: "cc", createdAt: "now", byokdVersion: "v")
        let ok = AuditRecords.record(for: request, result: .success(.wrapped(WrapResponse(manifest: manifest, encryptedKeyMaterial: "", importToken: ""))),
                                     requestId: "r2", peer: alice)
        XCTAssertEqual(ok.result, "ok")
        XCTAssertNil(ok.errorCode)
        XCTAssertEqual(ok.key?.id, "0a0b")
        XCTAssertEqual(ok.key?.fingerprint, "ABCDEF")
        XCTAssertEqual(ok.kmsKeyId, "arn:full")
        XCTAssertEqual(ok.wrappingPublicKeySha256, "aa")
        XCTAssertEqual(ok.encryptedKeyMaterialSha256, "bb")

        let rsa = KeyInfo(label: "r", id: "01", spec: "RSA_2048", type: "private/RSA-2048", kcv: nil, publicKeySha256: "ff00",
                          sensitive: true, extractable: true, uri: "pkcs11:")
        let generated = AuditRecords.record(for: .keysGenerate(GenerateRequest(label: "r", spec: "RSA_2048")), result: .success(.generated(rsa)),
                                            requestId: "r3", peer: alice)
        XCTAssertEqual(generated.key?.fingerprint, "ff00", "a private key is named by its public key's hash")
        XCTAssertEqual(generated.operation, "keys.generate")
    }
}
