import ByokAPI
@testable import ByokDaemon
import Foundation
import Logging
import Synchronization
import TestSupport
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
                       ["status", "keys.list", "keys.generate", "wrap", "selftest", "approve", "trust", "audit", "kms.import", "kms.create-key", "kms.rotate", "kms.materials"])
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
        XCTAssertEqual(try Operation.twoPersonSet(["wrap", "keys.generate"]), [.wrap, .keysGenerate, .kmsImport, .kmsRotate], "kms.import and kms.rotate follow wrap")
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
        guard case .approve(let id, let body) = try DaemonRequest.decode(approve, id: "00ff", body: Array(#"{"wrappingKeySha256":"ab"}"#.utf8)) else {
            return XCTFail("not an approval")
        }
        XCTAssertEqual(id, "00ff")
        XCTAssertEqual(body.wrappingKeySha256, "ab")
    }

    func testApprovalsHoldTypedRequestsAndHandEachOutOnce() throws {
        let approvals = Approvals(timeout: 60)
        let request = DaemonRequest.wrap(WrapRequest(key: "payments", parameters: ParametersInput(awsJSON: "e30="), wrappingAlgorithm: "RSAES_OAEP_SHA_256"))
        let a = try approvals.add(request, requester: alice)
        let b = try approvals.add(.keysGenerate(GenerateRequest(label: "x\u{1B}[2J", spec: "HMAC_256")), requester: alice)
        XCTAssertEqual(b.summary, "generate HMAC_256 key \"x\\u{1B}[2J\"", "escape sequences are shown, not run")
        XCTAssertEqual(Approvals.describe(b).key?.label, "x\\u{1B}[2J")
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

/// byokd's log lines cannot be forged or used to repaint a terminal.
final class SafeLogHandlerTests: XCTestCase {
    func testMessagesAndMetadataAreEscapedOneLinePerEvent() {
        final class Sink: Sendable {
            private let lines = Mutex("")
            var text: String { lines.withLock { $0 } }
            func append(_ line: String) { lines.withLock { $0 += line } }
        }
        let sink = Sink()
        var logger = Logger(label: "byokd") { label in SafeLogHandler(label: label, level: .info) { sink.append($0) } }
        logger[metadataKey: "request"] = "r1"
        logger.info("wrapped key", metadata: ["label": "k\n2026-01-01T00:00:00Z critical byokd: forged", "kms": "\u{1B}[2J"])
        logger.debug("not at this level")
        XCTAssertEqual(sink.text.filter { $0 == "\n" }.count, 1, sink.text)
        XCTAssertTrue(sink.text.contains("label=k\\n2026-01-01T00:00:00Z critical byokd: forged"), sink.text)
        XCTAssertTrue(sink.text.contains("kms=\\u{1B}[2J"), sink.text)
        XCTAssertTrue(sink.text.contains("request=r1"))
        XCTAssertFalse(sink.text.contains("\u{1B}"))
    }
}

/// Parameters are parsed once per distinct parameters, and expiry is still checked every time.
final class ParametersCacheTests: XCTestCase {
    func testSameParametersParseOnceAndExpiryIsCheckedOnEveryUse() throws {
        let aws = try AWSSide.keyPair(bits: 2048)
        let validTo = Date().addingTimeInterval(60)
        let json = AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken(), validTo: validTo.timeIntervalSince1970)
        let input = ParametersInput(awsJSON: json.base64EncodedString())
        let cache = ParametersCache(capacity: 2)
        let a = try cache.resolve(input, algorithm: "RSAES_OAEP_SHA_1")
        let b = try cache.resolve(input, algorithm: "RSAES_OAEP_SHA_1")
        XCTAssertEqual(cache.count, 1)
        XCTAssertEqual(a.wrappingKey.sha256, b.wrappingKey.sha256)
        _ = try cache.resolve(input, algorithm: "RSAES_OAEP_SHA_256")
        XCTAssertEqual(cache.count, 2, "the algorithm is part of the key")
        XCTAssertThrowsError(try cache.resolve(input, algorithm: "RSAES_OAEP_SHA_1", now: validTo.addingTimeInterval(1))) {
            XCTAssertEqual(($0 as? ByokError)?.code, .paramsExpired)
        }
        var other = input
        other.kmsKeyId = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        _ = try cache.resolve(other, algorithm: "RSAES_OAEP_SHA_1")
        XCTAssertEqual(cache.count, 2, "bounded")
        XCTAssertThrowsError(try cache.resolve(ParametersInput(awsJSON: "bm90IGpzb24="), algorithm: nil)) { XCTAssertNotNil($0 as? ByokError) }
        // Every field counts: the same key bytes for another cloud are other parameters.
        var azure = ParametersInput(publicKey: aws.publicDER.base64EncodedString())
        azure.provider = .azure
        azure.kid = "https://v.vault.azure.net/keys/k/1"
        XCTAssertEqual(try cache.resolve(azure, algorithm: nil).parameters.provider, .azure)
        var gcp = ParametersInput(publicKey: aws.publicDER.base64EncodedString())
        gcp.provider = .gcp
        gcp.importJob = "projects/p/locations/l/keyRings/r/importJobs/j"
        gcp.importMethod = "RSA_OAEP_3072_SHA256"
        XCTAssertThrowsError(try cache.resolve(gcp, algorithm: nil), "a 2048-bit key is not a 3072-bit import job's") {
            XCTAssertEqual(($0 as? ByokError)?.code, .paramsInvalid)
        }
    }
}
