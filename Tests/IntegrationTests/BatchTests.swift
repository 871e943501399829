import Foundation
import TestSupport
import XCTest

/// `byokctl wrap --batch`: many wraps in one request, each entry's result on its own, one failure
/// not stopping the others, and the exit code saying whether all succeeded.
final class BatchTests: XCTestCase {
    func testABatchWrapsEveryGoodEntryAndReportsTheBadOne() throws {
        let (daemon, _) = try DaemonFixture.nss()
        XCTAssertEqual(try daemon.ctl(["keys", "generate", "--label", "a", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        XCTAssertEqual(try daemon.ctl(["keys", "generate", "--label", "h", "--spec", "HMAC_256"]).code, 0)
        let aws = try AWSSide.keyPair(bits: 3072)
        let dir = daemon.dir
        _ = dir.write("p.json", AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken()))
        _ = dir.write("pub.der", aws.publicDER)
        _ = dir.write("tok.bin", AWSSide.randomImportToken())
        var entries: [[String: Any]] = (0..<6).map { i in
            ["key": i % 2 == 0 ? "a" : "h", "params": "p.json", "wrappingAlgorithm": i < 3 ? "RSAES_OAEP_SHA_256" : "RSAES_OAEP_SHA_1", "out": "b/e\(i)"]
        }
        entries.append(["key": "a", "publicKey": "pub.der", "importToken": "tok.bin", "wrappingAlgorithm": "RSAES_OAEP_SHA_256", "kmsKeyId": AWSSide.keyId, "out": "b/files"])
        entries.append(["key": "nope", "params": "p.json", "wrappingAlgorithm": "RSAES_OAEP_SHA_256", "out": "b/missing"])
        let file = dir.write("batch.json", try JSONSerialization.data(withJSONObject: entries))
        let r = try daemon.ctl(["wrap", "--batch", file, "--json"])
        XCTAssertEqual(r.code, 2, "one entry failed: KEY_NOT_FOUND is exit 2; \(r.err)")
        XCTAssertEqual(r.json?["total"] as? Int, 8)
        XCTAssertEqual(r.json?["succeeded"] as? Int, 7)
        let failed = try XCTUnwrap(r.json?["failed"] as? [[String: String]])
        XCTAssertEqual(failed.map { $0["code"] }, ["KEY_NOT_FOUND"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.file("b/missing")))

        let keys = try XCTUnwrap(try daemon.ctl(["keys", "list", "--json"]).json?["keys"] as? [[String: Any]])
        let kcv = Dictionary(uniqueKeysWithValues: keys.map { ($0["label"] as! String, $0["kcv"] as! String) })
        for i in 0..<6 {
            let blob = try Data(contentsOf: URL(fileURLWithPath: dir.file("b/e\(i)/EncryptedKeyMaterial.bin")))
            let key = try AWSSide.decryptOAEP(blob, with: aws, hash: i < 3 ? "sha256" : "sha1")
            XCTAssertEqual(key.count, 32, "exactly the key: AES-256 and HMAC_256 keys are 32 bytes")
            if i % 2 == 0 {
                XCTAssertEqual(try AWSSide.aesKCV(key), kcv["a"])
            } else {
                XCTAssertEqual(try AWSSide.hmac(key, message: Data(count: 16), digest: "sha256").prefix(3).hex.uppercased(), kcv["h"])
            }
        }
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.file("b/files/manifest.json")))) as? [String: Any]
        XCTAssertEqual(manifest?["kmsKeyId"] as? String, AWSSide.keyId)
        // Every entry is in the audit log.
        let audit = try String(contentsOfFile: daemon.stateDir + "/audit.jsonl", encoding: .utf8)
        let batchWraps = audit.split(separator: "\n").filter { $0.contains("\"batchIndex\"") }
        XCTAssertEqual(batchWraps.count, 8)
        XCTAssertEqual(batchWraps.filter { $0.contains("\"result\":\"error\"") }.count, 1)
        XCTAssertEqual(try daemon.ctl(["audit", "verify"]).code, 0)

        // Run again: outputs exist, so the batch is refused before anything is asked of byokd.
        let again = try daemon.ctl(["wrap", "--batch", file, "--json"])
        XCTAssertEqual(again.code, 2)
        XCTAssertEqual((again.json?["error"] as? [String: Any])?["code"] as? String, "OUTPUT_EXISTS")
    }

    func testAllGoodIsExit0AndJSONLinesWork() throws {
        let (daemon, _) = try DaemonFixture.softHSM()
        XCTAssertEqual(try daemon.ctl(["keys", "generate", "--label", "a", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        let aws = try AWSSide.keyPair(bits: 2048)
        _ = daemon.dir.write("p.json", AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken()))
        let lines = (0..<120).map { "{\"key\": \"a\", \"params\": \"p.json\", \"out\": \"o/\($0)\"}" }.joined(separator: "\n")
        let file = daemon.dir.write("batch.jsonl", lines + "\n")
        let r = try daemon.ctl(["wrap", "--batch", file, "--wrapping-algorithm", "RSAES_OAEP_SHA_1"])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.out.contains("wrapped 120 of 120 keys"), r.out)
        XCTAssertTrue(FileManager.default.fileExists(atPath: daemon.dir.file("o/119/EncryptedKeyMaterial.bin")))
    }

    /// A client that goes away mid-batch stops it after the group being sent; the group wrapped
    /// ahead meanwhile is still audited, noted as not sent, so every wrap has a record.
    func testAClientThatGoesAwayStopsTheBatchAndEveryWrapStillHasARecord() throws {
        let (daemon, _) = try DaemonFixture.softHSM()
        XCTAssertEqual(try daemon.ctl(["keys", "generate", "--label", "a", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        let aws = try AWSSide.keyPair(bits: 2048)
        let params = AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken())
        let entry: [String: Any] = ["key": "a", "parameters": ["awsJSON": params.base64EncodedString()], "wrappingAlgorithm": "RSAES_OAEP_SHA_1"]
        let body = try JSONSerialization.data(withJSONObject: ["entries": (0..<500).map { i in entry.merging(["name": "e\(i)"]) { $1 } }])
        let socket = try UnixSocket(daemon.socket)
        try socket.send("POST /v1/wrap/batch HTTP/1.1\r\nHost: byokd\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n\r\n"
                        + String(decoding: body, as: UTF8.self))
        var head = [UInt8](repeating: 0, count: 16)
        XCTAssertEqual(head.withUnsafeMutableBytes { recv(socket.fd, $0.baseAddress, 16, Int32(MSG_WAITALL)) }, 16)
        XCTAssertEqual(String(decoding: head, as: UTF8.self), "HTTP/1.1 200 OK\r")
        shutdown(socket.fd, Int32(SHUT_RDWR))  // gone before the first group's lines

        // byokd finishes the group it was sending and the one wrapped ahead, then stops.
        var records: [[String: Any]] = []
        let deadline = Date().addingTimeInterval(30)
        var stable = 0
        while Date() < deadline && stable < 5 {
            Thread.sleep(forTimeInterval: 0.2)
            let text = (try? String(contentsOfFile: daemon.stateDir + "/audit.jsonl", encoding: .utf8)) ?? ""
            let now = text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                .filter { $0["batchIndex"] != nil }
            stable = now.count == records.count && !now.isEmpty ? stable + 1 : 0
            records = now
        }
        XCTAssertGreaterThanOrEqual(records.count, 200, "the group being sent and the group wrapped ahead")
        XCTAssertLessThan(records.count, 500, "the batch stopped")
        XCTAssertEqual(records.count % 100, 0, "whole groups")
        XCTAssertEqual(records.map { $0["batchIndex"] as? Int }, (0..<records.count).map { $0 }, "every wrap has one record, in order")
        XCTAssertTrue(records.allSatisfy { $0["result"] as? String == "ok" })
        let noted = records.filter { ($0["note"] as? String)?.contains("not sent") == true }
        XCTAssertEqual(noted.count, 100, "exactly the group wrapped ahead is noted as not sent")
        XCTAssertEqual(noted.first?["batchIndex"] as? Int, records.count - 100)
        XCTAssertEqual(try daemon.ctl(["audit", "verify"]).code, 0)
    }
}
