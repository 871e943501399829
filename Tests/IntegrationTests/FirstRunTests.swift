import Foundation
import TestSupport
import XCTest

/// byokd started by someone other than root, the way a new operator tries it first: it finds a
/// place of its own (XDG), byokctl finds it there, and a place it cannot use is a sentence naming
/// the flag to give, with a stable code, never INTERNAL or a Foundation error.
final class FirstRunTests: XCTestCase {
    static let nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"]

    /// A home and a runtime directory owned by nobody.
    func nobodyDirs() throws -> (TempDir, String, String) {
        let dir = TempDir("byokd-firstrun")
        chmod(dir.path, 0o755)
        let home = dir.file("home"), run = dir.file("run")
        for d in [home, run] {
            try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            chown(d, 65534, 65534)
        }
        return (dir, home, run)
    }

    func asNobody(_ binary: String, _ arguments: [String], env: [String: String]) throws -> Tools.Result {
        try Tools.run("setpriv", Self.nobody + ["env", "-i"] + env.map { "\($0)=\($1)" } + [binary] + arguments)
    }

    override func setUpWithError() throws {
        try XCTSkipUnless(geteuid() == 0, "needs root to start byokd as another user")
        let r = try Tools.run("setpriv", Self.nobody + ["test", "-x", Binaries.byokd])
        try XCTSkipUnless(r.code == 0, "the built binaries are not reachable for uid 65534")
    }

    func testAUsersByokdUsesXDGPlacesAndByokctlFindsIt() throws {
        let (dir, home, run) = try nobodyDirs()
        let env = ["PATH": "/usr/bin:/bin", "HOME": home, "XDG_RUNTIME_DIR": run]
        let log = dir.file("byokd.log")
        FileManager.default.createFile(atPath: log, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Tools.resolve("setpriv"))
        p.arguments = Self.nobody + ["env", "-i"] + env.map { "\($0)=\($1)" } + [Binaries.byokd, "--dev"]
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        p.standardError = handle
        p.standardOutput = handle
        try p.run()
        defer { p.terminate(); p.waitUntilExit() }
        var status: Tools.Result?
        for _ in 0..<300 {
            let r = try asNobody(Binaries.byokctl, ["status", "--json"], env: env)
            if r.code == 0, r.json?["selfTestAt"] is String { status = r; break }
            if !p.isRunning { break }
            usleep(100_000)
        }
        let log_ = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        XCTAssertNotNil(status, "byokctl found the user's byokd without --socket; byokd said:\n\(log_)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: run + "/byokd/byokd.sock"), log_)
        XCTAssertTrue(FileManager.default.fileExists(atPath: home + "/.local/state/byokd/audit.jsonl"), log_)
    }

    func testWithoutAPlaceForTheSocketByokdSaysWhichFlagToGive() throws {
        let (_, home, _) = try nobodyDirs()
        let r = try asNobody(Binaries.byokd, ["--dev"], env: ["PATH": "/usr/bin:/bin", "HOME": home])
        XCTAssertEqual(r.code, 1, r.err)
        XCTAssertTrue(r.err.contains("[SOCKET_UNAVAILABLE]") && r.err.contains("give --socket PATH"), r.err)
        XCTAssertTrue(r.err.contains("cannot start"), r.err)
    }

    func testPlacesAUserCannotWriteAreSentencesNotInternalErrors() throws {
        let (_, home, run) = try nobodyDirs()
        let env = ["PATH": "/usr/bin:/bin", "HOME": home, "XDG_RUNTIME_DIR": run]
        let state = try asNobody(Binaries.byokd, ["--dev", "--state-dir", "/var/lib/byokd-test-\(getpid())"], env: env)
        XCTAssertEqual(state.code, 1, state.err)
        XCTAssertTrue(state.err.contains("[STATE_DIR_UNUSABLE]") && state.err.contains("give --state-dir DIR"), state.err)
        let socket = try asNobody(Binaries.byokd, ["--dev", "--socket", "/run/byokd-test-\(getpid())/byokd.sock"], env: env)
        XCTAssertEqual(socket.code, 1, socket.err)
        XCTAssertTrue(socket.err.contains("[SOCKET_UNAVAILABLE]") && socket.err.contains("give --socket PATH"), socket.err)
        for r in [state, socket] {
            XCTAssertFalse(r.err.contains("INTERNAL") || r.err.contains("NSCocoaErrorDomain") || r.err.contains("Error Domain"), r.err)
        }
    }
}
