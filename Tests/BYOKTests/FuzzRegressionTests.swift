@testable import BYOK
import ByokAPI
import ByokDaemon
import Foundation
import TestSupport
import XCTest

/// Every input libFuzzer ever crashed on (Tests/fuzz-corpus/regressions) and the seeds, replayed:
/// each must now be handled without a trap. And the ZIP reader on archives made by another tool.
final class FuzzRegressionTests: XCTestCase {
    func testCrashesFoundByFuzzingStayFixed() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("fuzz-corpus")
        var replayed = 0
        for dir in ["regressions", "seeds"] {
            let d = root.appendingPathComponent(dir).path
            for f in try FileManager.default.contentsOfDirectory(atPath: d).sorted() {
                FuzzTargets.run(Array(try Data(contentsOf: URL(fileURLWithPath: d + "/" + f))))
                replayed += 1
            }
        }
        XCTAssertGreaterThanOrEqual(replayed, 10)
        // The two regressions: a damaged ZIP that made the former ZIP library trap, and one it leaked on.
        let trap = Array(try Data(contentsOf: root.appendingPathComponent("regressions/zip-seek-past-end-trap")).dropFirst())
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
