import ByokAPI
@testable import ByokDaemon
import Foundation
import PKCS11
import XCTest

/// The one table from PKCS#11 return codes (per function) to byokd's codes, and the README's copy.
final class TokenErrorsTests: XCTestCase {
    func code(_ f: Function, _ rv: ReturnValue) -> ErrorCode { TokenErrors.code(for: .call(function: f, rv: rv)) }

    func testCodesFollowTheFunctionAndTheReturnCode() {
        // A key the token cannot make is TOKEN_LACKS_ALGORITHM, whatever way the token says it.
        for rv in [ReturnValue.functionNotSupported, .mechanismInvalid, .keySizeRange, .curveNotSupported, .domainParamsInvalid] {
            XCTAssertEqual(code(.generateKey, rv), .tokenLacksAlgorithm, "\(rv)")
            XCTAssertEqual(code(.generateKeyPair, rv), .tokenLacksAlgorithm, "\(rv)")
        }
        // Only a PIN problem is TOKEN_LOGIN_FAILED; the token failing at login is TOKEN_ERROR.
        XCTAssertEqual(code(.login, .pinIncorrect), .tokenLoginFailed)
        XCTAssertEqual(code(.login, .pinLocked), .tokenLoginFailed)
        XCTAssertEqual(code(.login, .generalError), .tokenError)
        XCTAssertEqual(code(.login, .deviceError), .tokenError)
        XCTAssertEqual(code(.initialize, .hostMemory), .tokenUnavailable)
        XCTAssertEqual(code(.wrapKey, .keyUnextractable), .keyNotExtractable)
        XCTAssertEqual(code(.wrapKey, .functionNotSupported), .tokenLacksAlgorithm)
        XCTAssertEqual(code(.findObjects, .functionNotSupported), .tokenError)
        XCTAssertEqual(code(.wrapKey, .deviceRemoved), .tokenUnavailable)
        XCTAssertEqual(code(.sign, ReturnValue(rawValue: 0x8000_1234)), .tokenError, "vendor codes fall through")
        XCTAssertEqual(TokenErrors.code(for: .tokenNotFound("x")), .tokenUnavailable)
    }

    func testHintsNameTheCommonCauses() {
        let template = TokenErrors.explain(.call(function: .generateKey, rv: .attributeValueInvalid))
        XCTAssertTrue(template.hasPrefix("C_GenerateKey returned CKR_ATTRIBUTE_VALUE_INVALID"), template)
        XCTAssertTrue(template.contains("CKA_SENSITIVE=true with CKA_EXTRACTABLE=true"), template)
        XCTAssertTrue(TokenErrors.explain(.call(function: .initialize, rv: .hostMemory)).contains("service"))
        XCTAssertTrue(TokenErrors.explain(.call(function: .login, rv: .generalError)).contains("not a wrong PIN"))
    }

    /// The README's table ("Token errors, by PKCS#11 return code") says what the code does.
    func testTheREADMEShowsTheSameTable() throws {
        let readme = try String(contentsOfFile: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("README.md").path, encoding: .utf8)
        let section = try XCTUnwrap(readme.components(separatedBy: "### Token errors, by PKCS#11 return code").dropFirst().first)
        let rows = section.split(separator: "\n").prefix { !$0.hasPrefix("#") }.filter { $0.hasPrefix("| ") && !$0.hasPrefix("| function") }
            .map { $0.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) } }
        for rule in TokenErrors.table {
            let functions = rule.functions.map { Set($0.map(\.rawValue)) }
            let row = rows.first { cells in
                guard cells.count >= 3 else { return false }
                let f = cells[0] == "any" ? nil : Set(cells[0].components(separatedBy: ", "))
                let codes = Set(cells[1].components(separatedBy: ", "))
                let wanted = rule.returnValues.map { Set($0.map(\.description)) }
                return f == functions && (wanted.map { $0.isSubset(of: codes) } ?? cells[1].hasPrefix("any other"))
            }
            XCTAssertEqual(row?[2], rule.code.rawValue, "README row for \(functions ?? ["any"]) \(rule.returnValues.map { $0.map(\.description).sorted() } ?? ["any other"])")
        }
    }
}
