@testable import BYOK
import ByokAPI
import ByokDaemon
import Foundation
import TestSupport
import XCTest

/// Every input libFuzzer ever crashed on (Tests/fuzz-corpus/regressions) and the seeds, replayed
/// by byokd-fuzz in a process of its own (so a trap fails this test and names the input, instead of
/// killing the test run): each must come out exactly as Tests/fuzz-corpus/expected says, so a parser
/// that starts accepting garbage, refuses what it took, or changes its error code is caught.
/// And the ZIP reader on archives made by another tool.
final class FuzzRegressionTests: XCTestCase {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("fuzz-corpus")

    /// `<dir>/<file>` → outcome, from lines `<dir>/<file>: <outcome>`.
    func outcomes(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") && !line.trimmingCharacters(in: .whitespaces).isEmpty {
            guard let colon = line.range(of: ": ") else { XCTFail("not `<file>: <outcome>`: \(line)"); continue }
            let name = String(line[..<colon.lowerBound])
            XCTAssertNil(out[name], "\(name) appears twice")
            out[name] = String(line[colon.upperBound...])
        }
        return out
    }

    func testEveryCorpusFileHasItsExpectedOutcome() throws {
        let expected = outcomes(try String(contentsOf: Self.corpus.appendingPathComponent("expected"), encoding: .utf8))
        var files: [String: [UInt8]] = [:]
        for dir in ["seeds", "regressions"] {
            for f in try FileManager.default.contentsOfDirectory(atPath: Self.corpus.appendingPathComponent(dir).path) {
                files["\(dir)/\(f)"] = Array(try Data(contentsOf: Self.corpus.appendingPathComponent("\(dir)/\(f)")))
            }
        }
        XCTAssertEqual(files.keys.filter { expected[$0] == nil }.sorted(), [], "corpus files without an expected outcome in Tests/fuzz-corpus/expected")
        XCTAssertEqual(expected.keys.filter { files[$0] == nil }.sorted(), [], "expected outcomes for files that are not in the corpus")
        XCTAssertTrue(expected.values.contains { $0.contains(": ok ") } && expected.values.contains { $0.contains("rejected") },
                      "the corpus holds inputs that parse and inputs that must be refused")

        // Out of process first: a trap exits the replayer, and its last "running" line names the input.
        let replay = try Tools.run(Binaries.directory + "/byokd-fuzz", ["seeds", "regressions"].map { Self.corpus.appendingPathComponent($0).path })
        let running = replay.err.split(separator: "\n").last { $0.hasPrefix("running ") } ?? "?"
        XCTAssertEqual(replay.code, 0, "byokd-fuzz died (status \(replay.code)) at \(running.dropFirst(8)):\n\(replay.err.suffix(2000))")
        let got = outcomes(replay.out)
        for name in expected.keys.sorted() {
            XCTAssertEqual(got[name], expected[name], name)
        }
        // The library linked here says the same (the replayer is not stale).
        guard replay.code == 0 else { return }
        for (name, bytes) in files.sorted(by: { $0.key < $1.key }) {
            XCTAssertEqual(FuzzTargets.run(bytes).description, expected[name], "in process: \(name)")
        }
        // The two regressions: a damaged ZIP that made the former ZIP library trap, and one it leaked on.
        let trap = Array(try XCTUnwrap(files["regressions/zip-seek-past-end-trap"]).dropFirst())
        XCTAssertThrowsError(try ImportParameters.parse(zip: trap)) { XCTAssertEqual(($0 as? ByokError)?.code, .paramsZip) }
    }

    /// Archives made by Python's zipfile: deflated, stored, with data descriptors (streamed), and damaged.
    func testTheZipReaderReadsWhatOtherToolsWrite() throws {
        let dir = TempDir()
        let script = """
            import io, sys, zipfile
            out = sys.argv[1]
            for name, method in (("deflate", zipfile.ZIP_DEFLATED), ("stored", zipfile.ZIP_STORED)):
                with zipfile.ZipFile(out + "/" + name + ".zip", "w", method) as z:
                    z.writestr("dir/", b"")
                    z.writestr("dir/a.txt", b"hello " * 100)
                    z.writestr("b.bin", bytes(range(256)))
            class Unseekable(io.RawIOBase):
                def __init__(self): self.buf = bytearray()
                def writable(self): return True
                def write(self, b): self.buf += b; return len(b)
            u = Unseekable()
            with zipfile.ZipFile(u, "w", zipfile.ZIP_DEFLATED) as z:
                with z.open("streamed.txt", "w") as f: f.write(b"streamed " * 50)
            open(out + "/descriptor.zip", "wb").write(bytes(u.buf))
            """
        try Tools.check("python3", ["-c", script, dir.path])
        for name in ["deflate", "stored"] {
            let files = try ZipReader.files(Array(try Data(contentsOf: URL(fileURLWithPath: dir.file("\(name).zip")))))
            XCTAssertEqual(files.map(\.path), ["dir/a.txt", "b.bin"], name)
            XCTAssertEqual(files[0].bytes, Array(String(repeating: "hello ", count: 100).utf8))
            XCTAssertEqual(files[1].bytes, Array(0...255))
        }
        let streamed = try ZipReader.files(Array(try Data(contentsOf: URL(fileURLWithPath: dir.file("descriptor.zip")))))
        XCTAssertEqual(streamed.first?.bytes, Array(String(repeating: "streamed ", count: 50).utf8))
        // A flipped byte in the compressed data or the CRC is refused.
        var bad = Array(try Data(contentsOf: URL(fileURLWithPath: dir.file("stored.zip"))))
        bad[60] ^= 0xFF
        XCTAssertThrowsError(try ZipReader.files(bad))
        XCTAssertThrowsError(try ZipReader.files(Array(bad.prefix(40))))
        XCTAssertThrowsError(try ZipReader.files([]))
    }
}
