import ArgumentParser
import ByokDaemon
import Foundation
import Logging

/// byokd: holds the HSM login and wraps keys on the token for AWS KMS import. See README.md.
struct Byokd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "byokd",
        abstract: "Wraps HSM keys on the token for AWS KMS import, serving byokctl over a Unix socket.",
        discussion: "Settings come from --config (JSON, see docs/CONFIGURATION.md); flags override it. The PIN is read from --pin-file or $CREDENTIALS_DIRECTORY/pin, never from the command line.")

    @Option(help: "Configuration file (JSON).") var config: String?
    @Option(help: "PKCS#11 module: a path, or the name p11-kit registers it under.") var module: String?
    @Option(help: "Initialization string for the module (CK_C_INITIALIZE_ARGS.pReserved), e.g. NSS's configdir=...") var initArgs: String?
    @Option(help: "Token: its label, serial number, or a pkcs11: URI.") var token: String?
    @Option(help: "File holding the user PIN (one trailing newline allowed).") var pinFile: String?
    @Option(help: "Unix socket to listen on (default /run/byokd/byokd.sock).") var socket: String?
    @Option(help: "State directory (default /var/lib/byokd).") var stateDir: String?
    @Option(help: "Log level: trace, debug, info, notice, warning, error.") var logLevel: String?
    @Flag(help: "Use a SoftHSM2 development token kept in the state directory (made on first start).") var dev = false
    @Option(help: "The module's entry point, e.g. FC_GetFunctionList for NSS softokn's FIPS token (default: C_GetInterface, else C_GetFunctionList).")
    var functionListSymbol: String?
    @Flag(help: "Log in even when the token says the next wrong PIN locks it (CKF_USER_PIN_FINAL_TRY).") var allowFinalPinTry = false

    func run() throws {
        var file = Configuration()
        if let config {
            do { file = try Configuration.load(path: config) } catch {
                FileHandle.standardError.write(Data("byokd: \(error)\n".utf8))
                throw ExitCode(2)
            }
        }
        var flags = Configuration()
        flags.module = module
        flags.initArgs = initArgs
        flags.token = token
        flags.pinFile = pinFile
        flags.socket = socket
        flags.stateDir = stateDir
        flags.logLevel = logLevel
        if dev { flags.devToken = true }
        flags.functionListSymbol = functionListSymbol
        if allowFinalPinTry { flags.allowFinalPinTry = true }
        let settings = file.overridden(by: flags)
        let level = settings.logLevel.flatMap(Logger.Level.init(rawValue:)) ?? .info
        LoggingSystem.bootstrap { label in SafeLogHandler(label: label, level: level) }
        let logger = Logger(label: "byokd")
        let code = Daemon.run(config: settings, logger: logger)
        if code != 0 { throw ExitCode(code) }
    }
}

// Two malloc arenas instead of glibc's eight per core: byokd's threads are many but short of work,
// and each arena keeps freed memory resident.
Daemon.limitMallocArenas()
Byokd.main()
