import ArgumentParser
import ByokAPI
import Foundation

/// byokctl: the operator's client for byokd. Exit codes: 0 done; 2 bad input or usage;
/// 3 HSM or token error; 4 denied; 5 daemon unreachable; 6 AWS KMS error.
///
/// Every command states its `commandName`: a name derived from the type (`String(describing:)`)
/// costs protocol-conformance lookups that scan the whole statically linked binary, for every
/// command of the tree, on every start — about a third of `byokctl --version`.
struct Byokctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "byokctl",
        abstract: "Generate keys in the HSM and wrap them on the token for AWS KMS, Azure or Google Cloud import, through byokd.",
        discussion: """
        --socket and --json may be given before or after the command (`byokctl --socket S status`). \
        Without --socket, byokctl uses $BYOKD_SOCKET, else /run/byokd/byokd.sock (the system byokd), \
        else $XDG_RUNTIME_DIR/byokd/byokd.sock (a byokd you run yourself).
        Exit codes: 0 done; 2 bad input or usage; 3 HSM or token error; 4 denied; 5 byokd unreachable; 6 AWS KMS error.
        """,
        version: ByokVersion.current,
        subcommands: [Status.self, Keys.self, Wrap.self, KMS.self, SelfTestCommand.self, Approve.self, Trust.self, Pending.self, Audit.self])

    // Declared here too (same property name as in every command), so the options parse before the
    // command name as well as after it: the parser fills every `options` in the command stack.
    @OptionGroup var options: GlobalOptions
}

let arguments = Array(CommandLine.arguments.dropFirst())
do {
    var command = try Byokctl.parseAsRoot(arguments)
    try command.run()
} catch {
    UsageError.exit(error, arguments: arguments)
}
