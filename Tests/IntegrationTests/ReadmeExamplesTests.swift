import Foundation
import TestSupport
import XCTest

/// Every `byokctl` command in the README's code blocks parses: run against a socket nobody listens
/// on, in an empty directory, it gets past the argument parser (which prints "Usage:" for what it
/// refuses) and byokctl's own checks of values; what it then fails on (no daemon, no such file)
/// is not the README's fault.
final class ReadmeExamplesTests: XCTestCase {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The byokctl command lines of fenced and indented code blocks, continuation lines joined,
    /// comments dropped, split as a shell would (quotes, backslashes).
    static func examples(in markdown: String) -> [[String]] {
        var commands: [[String]] = []
        var fenced = false
        var pending = ""
        for raw in markdown.components(separatedBy: "\n") {
            if raw.hasPrefix("```") { fenced.toggle(); continue }
            let inBlock = fenced || raw.hasPrefix("    ")
            guard inBlock || !pending.isEmpty else { continue }
            var line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("$ ") { line.removeFirst(2) }
            if pending.isEmpty && !line.hasPrefix("byokctl ") { continue }
            // The benchmark's output table names "byokctl wrap as a process" with its ratio: not a command.
            if line.contains("×") { continue }
            if line.hasSuffix("\\") {
                pending += String(line.dropLast()) + " "
                continue
            }
            commands.append(split(pending + line))
            pending = ""
        }
        return commands
    }

    static func split(_ line: String) -> [String] {
        var words: [String] = [], word = "", quote: Character?, started = false
        var chars = Array(line)[...]
        while let c = chars.popFirst() {
            if let q = quote {
                if c == q { quote = nil } else { word.append(c) }
            } else if c == "'" || c == "\"" {
                quote = c; started = true
            } else if c == "\\", let next = chars.popFirst() {
                word.append(next); started = true
            } else if c == "#" && !started {
                break
            } else if c == " " || c == "\t" {
                if started { words.append(word); word = ""; started = false }
            } else {
                word.append(c); started = true
            }
        }
        if started { words.append(word) }
        return words
    }

    func testEveryByokctlExampleInTheREADMEParses() throws {
        let readme = try String(contentsOf: Self.repository.appendingPathComponent("README.md"), encoding: .utf8)
        let examples = Self.examples(in: readme)
        XCTAssertGreaterThanOrEqual(examples.count, 8, "found the README's examples: \(examples)")
        let cwd = TempDir("byokd-readme")
        var env = ProcessInfo.processInfo.environment
        env["BYOKD_SOCKET"] = "/nonexistent/byokd.sock"
        for words in examples {
            XCTAssertEqual(words.first, "byokctl")
            let r = try Tools.run(Binaries.byokctl, Array(words.dropFirst()) + ["--json"], environment: env, stdin: Data(), cwd: cwd.path)
            let code = (r.json?["error"] as? [String: Any])?["code"] as? String
            XCTAssertFalse(r.err.contains("Usage:"), "\(words.joined(separator: " ")) does not parse: \(r.err)")
            XCTAssertFalse(["KEY_SPEC_UNKNOWN", "ALGORITHM_UNKNOWN"].contains(code ?? ""), "\(words.joined(separator: " ")): \(r.out)")
        }
    }

    func testTheExtractorSeesContinuationsQuotesAndComments() {
        let md = """
        text `byokctl inline` is not a block

            byokctl status                                   # module
            byokctl wrap --key 'pkcs11:object=a;id=%01' \\
                --out ./x

        ```sh
        $ byokctl keys list
        ```
        """
        XCTAssertEqual(Self.examples(in: md), [["byokctl", "status"], ["byokctl", "wrap", "--key", "pkcs11:object=a;id=%01", "--out", "./x"],
                                               ["byokctl", "keys", "list"]])
    }
}
