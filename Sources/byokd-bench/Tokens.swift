import ByokAPI
import ByokClient
import Foundation

/// A token both byokd and the floor open: module, init string, label, PIN file.
struct TokenSetup: Sendable {
    let name: String
    let module: String
    let initArgs: String?
    let tokenLabel: String
    let pinFile: String
    let env: [String: String]
}

/// A fresh SoftHSM token: the dev token `byokd --dev` makes (random PIN in a 0600 file, no PIN on
/// any command line), used afterwards by path like any token.
func softHSM(_ dir: String) throws -> TokenSetup {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: byokdPath)
    p.arguments = ["--dev", "--state-dir", dir, "--socket", dir + "/make.sock", "--log-level", "error"]
    p.standardError = FileHandle(forWritingAtPath: "/dev/null")
    try p.run()
    let deadline = now() + 60
    while now() < deadline, (try? DaemonClient(socketPath: dir + "/make.sock").send("GET", "/v1/status"))?.0 != 200 { usleep(10_000) }
    p.terminate()
    p.waitUntilExit()
    let conf = dir + "/dev-token/softhsm2.conf"
    guard FileManager.default.fileExists(atPath: conf) else { throw BenchError("byokd --dev did not make its token") }
    var env = ProcessInfo.processInfo.environment
    env["SOFTHSM2_CONF"] = conf
    setenv("SOFTHSM2_CONF", conf, 1)
    return TokenSetup(name: "SoftHSM2", module: "/usr/lib/softhsm/libsofthsm2.so", initArgs: nil, tokenLabel: "byokd-dev",
                      pinFile: dir + "/dev-token/pin", env: env)
}

/// A fresh NSS softokn database (sql:), PIN-protected.
func nss(_ dir: String) throws -> TokenSetup {
    try FileManager.default.createDirectory(atPath: dir + "/nssdb", withIntermediateDirectories: true)
    try "bench-pass\n".write(toFile: dir + "/pw", atomically: true, encoding: .utf8)
    _ = try run("certutil", ["-N", "-d", "sql:\(dir)/nssdb", "-f", dir + "/pw"])
    return TokenSetup(name: "NSS softokn", module: "/usr/lib/x86_64-linux-gnu/libsoftokn3.so",
                      initArgs: "configdir='sql:\(dir)/nssdb' certPrefix='' keyPrefix='' secmod='secmod.db' flags=",
                      tokenLabel: "NSS Certificate DB", pinFile: dir + "/pw", env: ProcessInfo.processInfo.environment)
}

/// byokd as a ceremony host runs it: release build, audit log on disk, log level as configured
/// (default info), `sessions` token sessions.
final class Daemon: Sendable {
    static let sessions = 4
    let process: Process
    let socket: String
    let stateDir: String
    var auditLog: String { stateDir + "/audit.jsonl" }

    init(_ t: TokenSetup, dir: String) throws {
        socket = dir + "/byokd.sock"
        stateDir = dir + "/state"
        try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)
        try #"{"sessions": \#(Self.sessions)}"#.write(toFile: dir + "/byokd.json", atomically: true, encoding: .utf8)
        process = Process()
        process.executableURL = URL(fileURLWithPath: byokdPath)
        process.arguments = ["--config", dir + "/byokd.json", "--module", t.module, "--token", t.tokenLabel, "--pin-file", t.pinFile,
                             "--socket", socket, "--state-dir", stateDir, "--log-level", logLevel]
            + (t.initArgs.map { ["--init-args", $0] } ?? [])
        process.environment = t.env
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        let deadline = now() + 60
        while now() < deadline {
            if let s = try? DaemonClient(socketPath: socket).call("GET", "/v1/status", as: StatusResponse.self), s.selfTestAt != nil { return }
            usleep(5000)
        }
        throw BenchError("byokd did not start")
    }

    var pid: Int32 { process.processIdentifier }

    /// The length of the last audit record byokd wrote, newline included.
    func lastRecordBytes() throws -> Int {
        let log = try Data(contentsOf: URL(fileURLWithPath: auditLog))
        guard let line = log.dropLast().split(separator: 10).last else { throw BenchError("byokd's audit log is empty") }
        return line.count + 1
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }
}
