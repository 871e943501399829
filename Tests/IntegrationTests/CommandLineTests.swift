import Foundation
import TestSupport
import Synchronization
import XCTest

/// The command lines a new operator types, as issue 13 found them: each surprise it listed has a
/// test here that failed on the binaries before the fix.
final class CommandLineTests: XCTestCase {
    /// byokctl without a daemon: a socket nobody listens on. Reaching DAEMON_UNREACHABLE (exit 5)
    /// means the command line parsed and passed every check byokctl makes itself.
    static let nowhere = "/nonexistent/byokd.sock"

    func ctl(_ arguments: [String], cwd: String? = nil, environment: [String: String] = [:]) throws -> Tools.Result {
        var env = ProcessInfo.processInfo.environment
        env["BYOKD_SOCKET"] = nil
        env.merge(environment) { $1 }
        return try Tools.run(Binaries.byokctl, arguments, environment: env, cwd: cwd)
    }

    func errorCode(_ r: Tools.Result) -> String? { (r.json?["error"] as? [String: Any])?["code"] as? String }

    func testGlobalOptionsGoBeforeOrAfterTheCommand() throws {
        let (daemon, _) = try DaemonFixture.softHSM()
        for args in [["--socket", daemon.socket, "status"], ["status", "--socket", daemon.socket],
                     ["--json", "--socket", daemon.socket, "keys", "list"], ["keys", "--socket", daemon.socket, "list", "--json"]] {
            let r = try ctl(args)
            XCTAssertEqual(r.code, 0, "\(args): \(r.err)")
        }
        let json = try ctl(["--json", "--socket", daemon.socket, "keys", "list"])
        XCTAssertNotNil(json.json?["keys"], "--json before the command gives JSON: \(json.out)")
    }

    func testKMSImportNeedsNoOut() throws {
        let r = try ctl(["kms", "import", "--kms-key-id", "1234abcd-12ab-34cd-56ef-1234567890ab", "--key", "k", "--socket", Self.nowhere, "--json"])
        XCTAssertEqual(errorCode(r), "DAEMON_UNREACHABLE", "parsed without --out: \(r.err)")
        XCTAssertEqual(r.code, 5)
    }

    func testWrapsParametersExpiryFlagIsRenamedAndTheOldNameWarns() throws {
        let base = ["wrap", "--key", "k", "--public-key", "/dev/null", "--import-token", "/dev/null", "--out", TempDir().file("o"),
                    "--socket", Self.nowhere, "--json"]
        let new = try ctl(base + ["--parameters-valid-to", "2030-01-01T00:00:00Z"])
        XCTAssertNotEqual(errorCode(new), "BAD_REQUEST", new.err)
        XCTAssertFalse(new.err.contains("deprecated"), new.err)
        let old = try ctl(base + ["--valid-to", "2030-01-01T00:00:00Z"])
        XCTAssertNotEqual(errorCode(old), "BAD_REQUEST", old.err)
        XCTAssertTrue(old.err.contains("--valid-to is deprecated") && old.err.contains("--parameters-valid-to"), old.err)
        let help = try ctl(["wrap", "--help"])
        XCTAssertTrue(help.out.contains("--parameters-valid-to"), help.out)
        XCTAssertFalse(help.out.contains("--valid-to <"), "the deprecated name is hidden: \(help.out)")
    }

    func testAnExpiryTheParametersOverruleIsReported() throws {
        let (daemon, _) = try DaemonFixture.softHSM()
        XCTAssertEqual(try daemon.ctl(["keys", "generate", "--label", "k", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        let aws = try AWSSide.keyPair(bits: 2048)
        let params = daemon.dir.write("p.json", AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken()))
        let r = try daemon.ctl(["wrap", "--key", "k", "--params", params, "--wrapping-algorithm", "RSAES_OAEP_SHA_1",
                                "--parameters-valid-to", "2099-01-01T00:00:00Z", "--out", daemon.dir.file("out")])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.err.contains("--parameters-valid-to 2099-01-01T00:00:00Z was not used"), r.err)
    }

    func testVersions() throws {
        for b in [Binaries.byokd, Binaries.byokctl] {
            let r = try Tools.run(b, ["--version"])
            XCTAssertEqual(r.code, 0, "\(b) --version: \(r.err)")
            XCTAssertTrue(r.out.range(of: #"^\d+\.\d+\.\d+\n$"#, options: .regularExpression) != nil, r.out)
        }
    }

    func testUsageErrorsFollowJSONAndExit2() throws {
        let r = try ctl(["status", "--bogus", "--json"])
        XCTAssertEqual(r.code, 2, r.err)
        XCTAssertEqual(errorCode(r), "BAD_REQUEST", "stdout: \(r.out)")
        XCTAssertTrue(((r.json?["error"] as? [String: Any])?["message"] as? String ?? "").contains("--bogus"), r.out)
        let missing = try ctl(["--json", "keys", "generate", "--label", "x"])
        XCTAssertEqual(missing.code, 2)
        XCTAssertEqual(errorCode(missing), "BAD_REQUEST", missing.out)
        XCTAssertEqual(try Tools.run(Binaries.byokd, ["--bogus"]).code, 2, "byokd's usage errors are exit 2 (bad configuration), not 64")
    }

    func testEnumeratedValuesAreCheckedBeforeByokdIsAsked() throws {
        let spec = try ctl(["keys", "generate", "--label", "x", "--spec", "AES_512", "--socket", Self.nowhere, "--json"])
        XCTAssertEqual(errorCode(spec), "KEY_SPEC_UNKNOWN", spec.err)
        let algorithm = try ctl(["kms", "import", "--kms-key-id", "k", "--key", "k", "--wrapping-algorithm", "RSAES_OAEP_SHA_384",
                                 "--socket", Self.nowhere, "--json"])
        XCTAssertEqual(errorCode(algorithm), "ALGORITHM_UNKNOWN", algorithm.err)
        let keySpec = try ctl(["kms", "import", "--kms-key-id", "k", "--key", "k", "--wrapping-key-spec", "RSA_1024", "--socket", Self.nowhere, "--json"])
        XCTAssertEqual(errorCode(keySpec), "BAD_REQUEST", keySpec.err)
        // AWS's refused names go through, so byokd can say why (ALGORITHM_REFUSED, BadInputTests).
        let refused = try ctl(["kms", "import", "--kms-key-id", "k", "--key", "k", "--wrapping-algorithm", "RSAES_PKCS1_V1_5",
                               "--socket", Self.nowhere, "--json"])
        XCTAssertEqual(errorCode(refused), "DAEMON_UNREACHABLE", refused.err)
        let level = try Tools.run(Binaries.byokd, ["--log-level", "verbose"])
        XCTAssertEqual(level.code, 2, level.err)
        let dir = TempDir()
        let config = dir.write("byokd.json", #"{"logLevel": "verbose"}"#)
        let fromFile = try Tools.run(Binaries.byokd, ["--config", config, "--socket", dir.file("s"), "--state-dir", dir.file("state")])
        XCTAssertEqual(fromFile.code, 2, fromFile.err)
        XCTAssertTrue(fromFile.err.contains("logLevel \"verbose\" is not a log level") && fromFile.err.contains("[BAD_REQUEST]"), fromFile.err)
    }

    func testCompletionOffersValuesAndFiles() throws {
        let bash = try ctl(["--generate-completion-script", "bash"]).out
        for value in ["SYMMETRIC_DEFAULT", "ECC_SECG_P256K1", "RSAES_OAEP_SHA_256", "RSA_AES_KEY_WRAP_SHA_1", "RSA_4096", "NEW_KEY_MATERIAL",
                      "GENERATE_VERIFY_MAC", "azure"] {
            XCTAssertTrue(bash.contains(value), "bash completion offers \(value)")
        }
        // --params, --public-key, --batch complete file names; --out directories.
        let wrap = try XCTUnwrap(bash.components(separatedBy: "_byokctl_wrap()").dropFirst().first)
        let wrapFunction = String(wrap.prefix(6000))
        for option in ["--params", "--public-key", "--import-token", "--batch"] {
            XCTAssertNotNil(wrapFunction.range(of: "\(option)\\)\\s*\\n?\\s*__byokctl_add_completions -f", options: .regularExpression)
                            ?? wrapFunction.range(of: "'\(option)'\\)\\s*\\n?\\s*__byokctl_add_completions -f", options: .regularExpression),
                            "\(option) completes file names")
        }
        let byokd = try Tools.run(Binaries.byokd, ["--generate-completion-script", "bash"]).out
        XCTAssertTrue(byokd.contains("critical") && byokd.contains("notice"), "byokd completes --log-level")
    }

    func testAWSFlagNamesAreAccepted() throws {
        let create = try ctl(["kms", "create-key", "--key-spec", "HMAC_256", "--key-usage", "GENERATE_VERIFY_MAC", "--socket", Self.nowhere, "--json"])
        XCTAssertEqual(errorCode(create), "DAEMON_UNREACHABLE", create.err)
        let generate = try ctl(["keys", "generate", "--label", "x", "--key-spec", "SYMMETRIC_DEFAULT", "--socket", Self.nowhere, "--json"])
        XCTAssertEqual(errorCode(generate), "DAEMON_UNREACHABLE", generate.err)
    }

    func testBatchSaysPerEntryWhatHappenedAndWhatToRunNext() throws {
        let (daemon, _) = try DaemonFixture.softHSM()
        XCTAssertEqual(try daemon.ctl(["keys", "generate", "--label", "a", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        let aws = try AWSSide.keyPair(bits: 2048)
        _ = daemon.dir.write("p.json", AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken()))
        let lines = [#"{"key": "a", "params": "p.json", "out": "o/1"}"#, "", #"{"key": "nope", "params": "p.json", "out": "o/2"}"#,
                     #"{"key": "a", "params": "p.json", "out": "o/3"}"#]
        let file = daemon.dir.write("batch.jsonl", lines.joined(separator: "\n") + "\n")
        let r = try daemon.ctl(["wrap", "--batch", file, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--json"])
        XCTAssertEqual(r.code, 2, r.err)
        let entries = try XCTUnwrap(r.json?["entries"] as? [[String: Any]], r.out)
        XCTAssertEqual(entries.map { $0["line"] as? Int }, [1, 3, 4])
        XCTAssertEqual(entries.map { $0["ok"] as? Bool }, [true, false, true])
        XCTAssertEqual(entries[1]["key"] as? String, "nope")
        XCTAssertEqual((entries[1]["error"] as? [String: Any])?["code"] as? String, "KEY_NOT_FOUND")
        let command = try XCTUnwrap(entries[0]["nextCommand"] as? String)
        XCTAssertTrue(command.contains("aws kms import-key-material") && command.contains("fileb://\(daemon.dir.path)/o/1/EncryptedKeyMaterial.bin"), command)

        // The same as text: the failure with its line and key, then each command.
        try FileManager.default.removeItem(atPath: daemon.dir.file("o"))
        let text = try daemon.ctl(["wrap", "--batch", file, "--wrapping-algorithm", "RSAES_OAEP_SHA_1"])
        XCTAssertEqual(text.code, 2)
        XCTAssertTrue(text.out.contains("FAILED line 3, key \"nope\""), text.out)
        XCTAssertEqual(text.out.components(separatedBy: "aws kms import-key-material").count - 1, 2, text.out)
        XCTAssertTrue(text.out.contains("# line 4, key \"a\""), text.out)

        // A JSON array reports the line each entry starts on.
        let array = "[\n  {\"key\": \"a\", \"params\": \"p.json\", \"out\": \"q/1\"},\n  {\"key\": \"nope\",\n   \"params\": \"p.json\", \"out\": \"q/2\"}\n]\n"
        let arr = try daemon.ctl(["wrap", "--batch", daemon.dir.write("batch.json", array), "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--json"])
        XCTAssertEqual((arr.json?["entries"] as? [[String: Any]])?.map { $0["line"] as? Int }, [2, 3], arr.out)
    }

    func testAnUnwritableOutFailsBeforeTheWrap() throws {
        let (daemon, _) = try DaemonFixture.softHSM()
        XCTAssertEqual(try daemon.ctl(["keys", "generate", "--label", "k", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        let aws = try AWSSide.keyPair(bits: 2048)
        let params = daemon.dir.write("p.json", AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken()))
        let file = daemon.dir.write("a-file", "x")
        let r = try daemon.ctl(["wrap", "--key", "k", "--params", params, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--out", file + "/sub", "--json"])
        XCTAssertEqual(errorCode(r), "OUTPUT_UNWRITABLE", r.out + r.err)
        // The same in a batch: no entry is wrapped, no directory of another entry is left behind.
        let batch = daemon.dir.write("batch.jsonl", "{\"key\": \"k\", \"params\": \"p.json\", \"out\": \"fine\"}\n{\"key\": \"k\", \"params\": \"p.json\", \"out\": \"a-file/sub\"}\n")
        let b = try daemon.ctl(["wrap", "--batch", batch, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--json"])
        XCTAssertEqual(errorCode(b), "OUTPUT_UNWRITABLE", b.out + b.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: daemon.dir.file("fine")))
        let audit = (try? String(contentsOfFile: daemon.stateDir + "/audit.jsonl", encoding: .utf8)) ?? ""
        XCTAssertFalse(audit.contains("\"operation\":\"wrap\""), "byokd was never asked to wrap: \(audit)")
    }

    func testPrintedPathsAreClean() throws {
        let (daemon, _) = try DaemonFixture.softHSM()
        XCTAssertEqual(try daemon.ctl(["keys", "generate", "--label", "k", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        let aws = try AWSSide.keyPair(bits: 2048)
        let params = daemon.dir.write("p.json", AWSSide.cliJSON(publicKey: aws.publicDER, importToken: AWSSide.randomImportToken()))
        let r = try daemon.ctl(["wrap", "--key", "k", "--params", params, "--wrapping-algorithm", "RSAES_OAEP_SHA_1", "--out", "./x/../out"],
                               cwd: daemon.dir.path)
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.out.contains("fileb://\(daemon.dir.path)/out/EncryptedKeyMaterial.bin"), r.out)
        XCTAssertFalse(r.out.contains("/./") || r.out.contains("/../"), r.out)
    }

    func testKeysListFitsATerminal() throws {
        let (daemon, _) = try DaemonFixture.softHSM()
        XCTAssertEqual(try daemon.ctl(["keys", "generate", "--label", "payments-2026", "--spec", "SYMMETRIC_DEFAULT"]).code, 0)
        XCTAssertEqual(try daemon.ctl(["keys", "generate", "--label", "signing-2026", "--spec", "ECC_NIST_P256", "--allow-unexportable"]).code, 0)
        let r = try daemon.ctl(["keys", "list"])
        XCTAssertEqual(r.code, 0, r.err)
        for line in r.out.split(separator: "\n") { XCTAssertLessThanOrEqual(line.count, 100, "too wide: \(line)") }
    }

    func testTheSocketsRealGroupIsNamedWhenAccessIsDenied() throws {
        try XCTSkipUnless(geteuid() == 0, "needs root to run byokctl as another user")
        let (daemon, _) = try DaemonFixture.softHSM()
        chmod(daemon.dir.path, 0o755)
        let r = try Tools.run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", Binaries.byokctl, "status", "--socket", daemon.socket])
        XCTAssertEqual(r.code, 5, r.err)
        XCTAssertTrue(r.err.contains("root:root mode 660") && r.err.contains("only root may use it"), r.err)
        XCTAssertFalse(r.err.contains("(byok)"), r.err)
    }

    /// byokctl links FoundationEssentials only (docs/DESIGN.md): one symbol of
    /// swift-corelibs-foundation (`FileHandle`, NSString API, `CharacterSet`, `Thread`…) links all
    /// of it and ICU, 50 MB more to relocate at every start (a wrap as a process then loses to
    /// OpenSSL). The objects of byokctl and of the modules it links must reference none.
    func testByokctlReferencesNothingOfSwiftCorelibsFoundation() throws {
        var checked = 0
        for target in ["byokctl", "ByokClient", "ByokAPI", "Posix", "ArgumentParser"] {
            let dir = Binaries.directory + "/\(target).build"
            // Objects of sources that still exist (an incremental build keeps those of removed files).
            let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Sources/\(target)").standardized.path
            let objects = try FileManager.default.contentsOfDirectory(atPath: dir).filter {
                $0.hasSuffix(".swift.o") && (target == "ArgumentParser" || FileManager.default.fileExists(atPath: sources + "/" + $0.dropLast(2)))
            }
            XCTAssertFalse(objects.isEmpty, "no objects in \(dir)")
            for object in objects {
                let undefined = try Tools.check("nm", ["-u", dir + "/" + object]).out.split(separator: "\n")
                // `$s10Foundation…` its types and functions, `…10FoundationE…` its extensions (String's
                // `replacingOccurrences`); FoundationInternationalization brings ICU too.
                let foundation = undefined.filter { $0.contains("10Foundation") || $0.contains("FoundationInternationalization") }.prefix(3)
                XCTAssertEqual(Array(foundation), [], "\(target)/\(object) uses swift-corelibs-foundation (`nm -u | swift demangle` names it)")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 20)
    }

    /// Something on --socket that is not byokd: byokctl says so (exit 5), never traps, never sends
    /// the request again once an answer began (byokd may have done what was asked).
    func testAnAnswerThatIsNotByokdsHTTPIsAClearErrorAndNoRetry() throws {
        let answers = [
            "HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n",
            "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\n{}",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n",
            "HTTP/1.1 200 OK\r\nX: " + String(repeating: "a", count: 70_000),
        ]
        for answer in answers {
            let dir = TempDir()
            let path = dir.file("fake.sock")
            let listener = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            withUnsafeMutableBytes(of: &addr.sun_path) { p in for (k, b) in path.utf8.enumerated() { p[k] = b } }
            let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
            XCTAssertEqual(bound, 0)
            XCTAssertEqual(listen(listener, 4), 0)
            let requests = Mutex(0)
            let server = Thread {
                while true {
                    let c = accept(listener, nil, nil)
                    if c < 0 { return }
                    var buf = [UInt8](repeating: 0, count: 65536)
                    if recv(c, &buf, buf.count, 0) > 0 { requests.withLock { $0 += 1 } }
                    _ = Array(answer.utf8).withUnsafeBytes { send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    close(c)
                }
            }
            server.start()
            let r = try ctl(["status", "--socket", path, "--json"])
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
            XCTAssertEqual(r.code, 5, "\(answer.prefix(60).debugDescription): \(r.err)")
            XCTAssertTrue(r.out.contains("DAEMON_UNREACHABLE"), r.out)
            XCTAssertTrue(r.out.contains("not byokd's HTTP"), r.out)
            XCTAssertEqual(requests.withLock { $0 }, 1, "the request was sent once")
        }
    }
}
