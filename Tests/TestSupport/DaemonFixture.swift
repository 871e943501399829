import Foundation
import Synchronization

/// A byokd process for one test: started on a socket in its own directory, stopped with SIGTERM.
public final class DaemonFixture: Sendable {
    public let dir: TempDir
    public let socket: String
    public let stateDir: String
    public let process: Process
    public let logFile: String
    /// The exit status once stopped; held while stopping, so the process is stopped once.
    private let stopped = Mutex<Int32?>(nil)
    public var exitCode: Int32? { stopped.withLock { $0 } }

    /// Starts byokd with `arguments` (plus --socket and --state-dir) and waits until it answers.
    public init(arguments: [String], environment: [String: String] = ProcessInfo.processInfo.environment, dir: TempDir = TempDir("byokd-daemon"),
                waitReady: Bool = true) throws {
        self.dir = dir
        socket = dir.file("byokd.sock")
        stateDir = dir.file("state")
        logFile = dir.file("byokd.log")
        FileManager.default.createFile(atPath: logFile, contents: nil)
        process = Process()
        process.executableURL = URL(fileURLWithPath: Binaries.byokd)
        process.arguments = arguments + ["--socket", socket, "--state-dir", stateDir]
        process.environment = environment
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logFile))
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        if waitReady { try waitUntilReady() }
    }

    /// Byokd on the SoftHSM dev token it makes itself (the README's default).
    public static func dev(extra: [String] = []) throws -> DaemonFixture {
        try DaemonFixture(arguments: ["--dev"] + extra)
    }

    /// Byokd on a fresh SoftHSM token made by softhsm2-util.
    public static func softHSM(extra: [String] = []) throws -> (DaemonFixture, SoftHSM.Token) {
        let dir = TempDir("byokd-daemon")
        let token = try SoftHSM.makeToken(in: dir)
        let d = try DaemonFixture(arguments: ["--module", SoftHSM.module, "--token", token.label, "--pin-file", token.pinFile] + extra,
                                  environment: token.environment, dir: dir)
        return (d, token)
    }

    /// Byokd on a fresh NSS softokn database (the key database slot, logged in with its password).
    public static func nss(extra: [String] = []) throws -> (DaemonFixture, NSSSoftokn.Database) {
        let dir = TempDir("byokd-daemon")
        let db = try NSSSoftokn.makeDatabase(in: dir)
        let d = try DaemonFixture(arguments: ["--module", NSSSoftokn.module, "--init-args", db.initArgs, "--token", NSSSoftokn.tokenLabel,
                                              "--pin-file", db.passwordFile] + extra, dir: dir)
        return (d, db)
    }

    /// Byokd on a fresh NSS softokn database marked FIPS, through the module's FIPS entry point.
    public static func nssFIPS(extra: [String] = []) throws -> (DaemonFixture, NSSSoftokn.Database) {
        let dir = TempDir("byokd-daemon")
        let db = try NSSSoftokn.makeDatabase(in: dir, fips: true)
        let d = try DaemonFixture(arguments: ["--module", NSSSoftokn.module, "--init-args", db.initArgs, "--function-list-symbol", "FC_GetFunctionList",
                                              "--token", NSSSoftokn.fipsTokenLabel, "--pin-file", db.passwordFile] + extra, dir: dir)
        return (d, db)
    }

    public func waitUntilReady(timeout: Double = 60) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if !process.isRunning { throw FixtureError("byokd exited \(process.terminationStatus) before answering:\n\(log)") }
            // Ready once it answers and its start-up self-test has given its verdicts.
            if FileManager.default.fileExists(atPath: socket), let r = try? ctl(["status", "--json"]), r.code == 0,
               r.json?["selfTestAt"] is String { return }
            usleep(50_000)
        }
        throw FixtureError("byokd did not answer within \(timeout) s:\n\(log)")
    }

    public var log: String { (try? String(contentsOfFile: logFile, encoding: .utf8)) ?? "" }

    /// Runs byokctl against this daemon.
    @discardableResult
    public func ctl(_ arguments: [String], cwd: String? = nil) throws -> Tools.Result {
        var env = ProcessInfo.processInfo.environment
        env["BYOKD_SOCKET"] = socket
        return try Tools.run(Binaries.byokctl, arguments, environment: env, cwd: cwd)
    }

    /// SIGTERM, then wait; returns the exit status.
    @discardableResult
    public func stop(timeout: Double = 30) -> Int32 {
        stopped.withLock { exitCode in
            if let exitCode { return exitCode }
            if process.isRunning {
                process.terminate()
                let deadline = Date().addingTimeInterval(timeout)
                while process.isRunning && Date() < deadline { usleep(20_000) }
                if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            }
            process.waitUntilExit()
            exitCode = process.terminationStatus
            return exitCode!
        }
    }

    deinit { stop() }
}
