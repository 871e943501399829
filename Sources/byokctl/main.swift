import ArgumentParser
import ByokAPI
import Foundation

/// byokctl: the operator's client for byokd. Exit codes: 0 done; 2 bad input or usage;
/// 3 HSM or token error; 4 denied; 5 daemon unreachable.
///
/// Every command states its `commandName`: a name derived from the type (`String(describing:)`)
/// costs protocol-conformance lookups that scan the whole statically linked binary, for every
/// command of the tree, on every start — about a third of `byokctl --version`.
struct Byokctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "byokctl",
        abstract: "Generate keys in the HSM and wrap them on the token for AWS KMS import, through byokd.",
        discussion: "Exit codes: 0 done; 2 bad input or usage; 3 HSM or token error; 4 denied; 5 byokd unreachable; 6 AWS KMS error.",
        version: ByokVersion.current,
        subcommands: [Status.self, Keys.self, Wrap.self, KMS.self, SelfTestCommand.self, Approve.self, Trust.self, Pending.self, Audit.self])
}

// Usage errors exit 2 (the argument parser's default is 64).
do {
    var command = try Byokctl.parseAsRoot()
    try command.run()
} catch {
    let code = Byokctl.exitCode(for: error)
    if code == .success { Byokctl.exit(withError: error) }
    printError(Byokctl.fullMessage(for: error) + "\n")
    exit(code == .validationFailure ? 2 : code.rawValue)
}
