import ArgumentParser
import ByokAPI
import ByokDaemon
import Foundation
import Logging

/// byokd: holds the HSM login and wraps keys on the token for AWS KMS import. See README.md.
struct Byokd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "byokd",
        abstract: "Wraps HSM keys on the token for AWS KMS, Azure and Google Cloud import, serving byokctl over a Unix socket.",
        discussion: """
        Settings come from --config (JSON, see docs/CONFIGURATION.md); flags override it. The PIN is read from \
        --pin-file or $CREDENTIALS_DIRECTORY/pin, never from the command line. As root, byokd listens on \
        /run/byokd/byokd.sock and keeps its state in /var/lib/byokd (under systemd: the socket it is passed and \
        $STATE_DIRECTORY); as any other user, on $XDG_RUNTIME_DIR/byokd/byokd.sock with its state in \
        $XDG_STATE_HOME/byokd (~/.local/state/byokd), so `byokd --dev` runs without root.
        Exit status: 0 stopped; 1 cannot start (state directory, socket); 2 bad configuration; 3 the token cannot be used.
        """,
        version: ByokVersion.current)

    @Option(help: ArgumentHelp("Configuration file (JSON).", valueName: "file"), completion: .file(extensions: ["json"])) var config: String?
    @Option(help: ArgumentHelp("PKCS#11 module: a path, or the name p11-kit registers it under.", valueName: "module"), completion: .file(extensions: ["so"]))
    var module: String?
    @Option(help: "Initialization string for the module (CK_C_INITIALIZE_ARGS.pReserved), e.g. NSS's configdir=...") var initArgs: String?
    @Option(help: "Token: its label, serial number, or a pkcs11: URI.") var token: String?
    @Option(help: ArgumentHelp("File holding the user PIN (one trailing newline allowed).", valueName: "file"), completion: .file()) var pinFile: String?
    @Option(help: ArgumentHelp("Unix socket to listen on (default: see below).", valueName: "path"), completion: .file()) var socket: String?
    @Option(help: ArgumentHelp("State directory: audit log, dev token (default: see below).", valueName: "dir"), completion: .directory) var stateDir: String?
    @Option(help: "Log level (default info).") var logLevel: LogLevel?
    @Flag(help: "Use a SoftHSM2 development token kept in the state directory (made on first start).") var dev = false
    @Option(help: "The module's entry point, e.g. FC_GetFunctionList for NSS softokn's FIPS token (default: C_GetInterface, else C_GetFunctionList).")
    var functionListSymbol: String?
    @Flag(help: "Log in even when the token says the next wrong PIN locks it (CKF_USER_PIN_FINAL_TRY).") var allowFinalPinTry = false

    func run() throws {
        var file = Configuration()
        var configError: ByokError?
        if let config {
            do { file = try Configuration.load(path: config) } catch {
                configError = (error as? ByokError) ?? ByokError(.badRequest, "\(error)")
                if configError?.code == .inputUnreadable && !FileManager.default.fileExists(atPath: config) {
                    configError = ByokError(.inputUnreadable, "there is no configuration file \(config); copy the example there (/usr/share/doc/byokd/examples/byokd.json in the package, systemd/byokd.json.example in the source) and set \"module\" and \"token\" for your HSM (docs/CONFIGURATION.md)")
                }
            }
        }
        var flags = Configuration()
        flags.module = module
        flags.initArgs = initArgs
        flags.token = token
        flags.pinFile = pinFile
        flags.socket = socket
        flags.stateDir = stateDir
        flags.logLevel = logLevel?.rawValue
        if dev { flags.devToken = true }
        flags.functionListSymbol = functionListSymbol
        if allowFinalPinTry { flags.allowFinalPinTry = true }
        var settings = file.overridden(by: flags)
        let level = settings.logLevel.flatMap(Logger.Level.init(rawValue:)) ?? .info
        LoggingSystem.bootstrap { label in SafeLogHandler(label: label, level: level) }
        let logger = Logger(label: "byokd")
        // Every start-up failure is one log line: a sentence and a stable code.
        func cannotStart(_ e: ByokError, exit status: Int32) -> ExitCode {
            logger.critical("cannot start: \(e.message) [\(e.code.rawValue)]")
            return ExitCode(status)
        }
        if let configError { throw cannotStart(configError, exit: 2) }
        if let name = settings.logLevel, LogLevel(rawValue: name) == nil {
            throw cannotStart(ByokError(.badRequest, "logLevel \"\(Display.escaped(name))\" is not a log level; the levels are \(LogLevel.allValueStrings.joined(separator: ", "))"), exit: 2)
        }
        do { settings = try Startup.prepare(settings) } catch {
            throw cannotStart((error as? ByokError) ?? ByokError(.internal, "\(error)"), exit: 1)
        }
        let code = Daemon.run(config: settings, logger: logger)
        if code != 0 { throw ExitCode(code) }
    }
}

/// swift-log's levels, as `--log-level` and the `logLevel` setting take them.
enum LogLevel: String, CaseIterable, ExpressibleByArgument {
    case trace, debug, info, notice, warning, error, critical
}

// Two malloc arenas instead of glibc's eight per core: byokd's threads are many but short of work,
// and each arena keeps freed memory resident.
Daemon.limitMallocArenas()
// Usage errors exit 2 like a bad configuration (systemd's RestartPreventExitStatus= holds them back),
// not the argument parser's 64.
do {
    var command = try Byokd.parseAsRoot()
    try command.run()
} catch {
    if error is ExitCode || Byokd.exitCode(for: error) == .success { Byokd.exit(withError: error) }
    FileHandle.standardError.write(Data((Byokd.fullMessage(for: error) + "\n").utf8))
    exit(2)
}
