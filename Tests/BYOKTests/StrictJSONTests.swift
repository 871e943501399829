@testable import ByokAPI
import Foundation
import XCTest

/// API bodies and the configuration are read strictly: what Foundation's JSONDecoder lets through
/// (unknown fields, repeated keys, trailing commas) is refused with the field named.
final class StrictJSONTests: XCTestCase {
    func decode<T: Decodable>(_ t: T.Type, _ s: String) throws -> T { try StrictJSON.decode(t, from: Array(s.utf8)) }

    func failure<T: Decodable>(_ t: T.Type, _ s: String, file: StaticString = #filePath, line: UInt = #line) -> StrictJSON.Failure? {
        do { _ = try decode(t, s); XCTFail("accepted \(s)", file: file, line: line); return nil } catch let f as StrictJSON.Failure {
            return f
        } catch { XCTFail("\(error)", file: file, line: line); return nil }
    }

    func testWhatTheTypesTakeIsDecoded() throws {
        let w = try decode(WrapRequest.self, #"{"key":"k","parameters":{"awsJSON":"e30=","kmsKeyId":"arn:x"},"wrappingAlgorithm":null}"#)
        XCTAssertEqual(w.key, "k")
        XCTAssertEqual(w.parameters.awsJSON, "e30=")
        XCTAssertNil(w.wrappingAlgorithm)
        let k = try decode(KMSCreateKeyRequest.self, #"{"spec":"HMAC_256","tags":{"a":"1","b":"\u00e9\n"},"multiRegion":true}"#)
        XCTAssertEqual(k.tags, ["a": "1", "b": "é\n"])
        XCTAssertEqual(k.multiRegion, true)
        let b = try decode(BatchWrapRequest.self, #" { "entries" : [ {"name":"a","key":"k","parameters":{}} ] } "#)
        XCTAssertEqual(b.entries.count, 1)
        XCTAssertEqual(try decode([UInt32].self, "[1, 1e3, 4294967295]"), [1, 1000, 4_294_967_295])
        XCTAssertEqual(try decode(String.self, #""\ud83d\ude00""#), "😀")
    }

    func testUnknownFieldsAreRefusedWithTheirPath() {
        XCTAssertEqual(failure(GenerateRequest.self, #"{"label":"k","spec":"HMAC_256","extractable":false}"#),
                       StrictJSON.Failure(path: "extractable", problem: "is not a field this takes"))
        XCTAssertEqual(failure(WrapRequest.self, #"{"key":"k","parameters":{"publicKey":"","trusted":true}}"#)?.path, "parameters.trusted")
        XCTAssertEqual(failure(BatchWrapRequest.self, #"{"entries":[{"name":"a","key":"k","parameters":{}},{"name":"b","key":"k","parameters":{},"x":1}]}"#)?.path,
                       "entries[1].x")
    }

    func testRepeatedKeysTrailingCommasAndTrailingTextAreRefused() {
        XCTAssertEqual(failure(GenerateRequest.self, #"{"label":"a","label":"b","spec":"HMAC_256"}"#)?.problem, "appears twice")
        XCTAssertTrue(failure(GenerateRequest.self, #"{"label":"a","spec":"HMAC_256",}"#)?.problem.contains("not valid JSON") == true)
        XCTAssertTrue(failure(GenerateRequest.self, #"{"label":"a","spec":"HMAC_256"} {}"#)?.problem.contains("text after") == true)
        XCTAssertTrue(failure(GenerateRequest.self, "")?.problem.contains("not valid JSON") == true)
        XCTAssertTrue(failure(String.self, "\"a\u{01}b\"")?.problem.contains("control character") == true)
        XCTAssertTrue(failure(String.self, #""\ud800""#)?.problem.contains("surrogate") == true)
        XCTAssertTrue(failure([Int].self, String(repeating: "[", count: 100) + String(repeating: "]", count: 100))?.problem.contains("nested") == true)
        XCTAssertTrue(failure(Int.self, "01")?.problem.contains("text after") == true)
    }

    func testWrongTypesAndMissingFieldsNameTheField() {
        let t = failure(WrapRequest.self, #"{"key":"k","parameters":{"kmsKeyId":5}}"#)
        XCTAssertEqual(t?.path, "parameters.kmsKeyId")
        XCTAssertEqual(t?.problem, "must be a string, not a number")
        XCTAssertEqual(failure(GenerateRequest.self, #"{"label":"k"}"#), StrictJSON.Failure(path: "spec", problem: "is missing"))
        XCTAssertEqual(failure(GenerateRequest.self, #"{"label":null,"spec":"x"}"#)?.path, "label")
        XCTAssertEqual(failure(UInt32.self, "1.5")?.problem, "must be a whole number from 0 to 4294967295, not a number")
        XCTAssertEqual(failure(UInt32.self, "-1")?.problem, "must be a whole number from 0 to 4294967295, not a number")
        XCTAssertEqual(failure(Bool.self, "1")?.problem, "must be true or false, not a number")
        XCTAssertEqual(failure(GenerateRequest.self, "[]")?.problem, "must be an object, not an array")
        XCTAssertEqual(StrictJSON.Failure(path: "spec", problem: "is missing").sentence("the request body"), "the request body lacks \"spec\"")
    }
}

/// Text from clients and tokens is shown escaped.
final class DisplayTests: XCTestCase {
    func testControlAndDirectionCharactersAreEscapedAndPlainTextIsNot() {
        XCTAssertEqual(Display.escaped("plain-label_1 é 🔑"), "plain-label_1 é 🔑")
        XCTAssertEqual(Display.escaped("a\nb\u{1B}[2J\u{7F}\u{85}\u{202E}c\\"), "a\\nb\\u{1B}[2J\\u{7F}\\u{85}\\u{202E}c\\\\")
        XCTAssertEqual(Display.sanitized("x\\n\u{1B}"), "x\\n\\u{1B}")
        XCTAssertTrue(Display.hasUnsafe("tab\there"))
        XCTAssertFalse(Display.hasUnsafe("no-controls"))
    }
}
