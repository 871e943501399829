import ArgumentParser
import ByokAPI
import ByokClient
import Foundation

/// Options every command takes, before or after the command name.
struct GlobalOptions: ParsableArguments {
    @Option(help: ArgumentHelp("byokd's socket (default $BYOKD_SOCKET, else /run/byokd/byokd.sock, else $XDG_RUNTIME_DIR/byokd/byokd.sock).",
                               valueName: "path"), completion: .file())
    var socket: String?

    @Flag(help: "Machine-readable JSON output (errors too, as {\"error\":{\"code\",\"message\"}}).")
    var json = false

    var socketPath: String {
        socket ?? ProcessInfo.processInfo.environment["BYOKD_SOCKET"].flatMap { $0.isEmpty ? nil : $0 } ?? DefaultPaths.clientSocket()
    }

    func client() -> DaemonClient { DaemonClient(socketPath: socketPath) }

    /// Prints a value as JSON on stdout.
    func printJSON<T: Encodable>(_ value: T) {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        print(String(decoding: (try? e.encode(value)) ?? Data(), as: UTF8.self))
    }
}

/// Text to standard error, unbuffered (stdio's `stderr`). Not Foundation's `FileHandle`: that one
/// type links swift-corelibs-foundation and ICU into byokctl, two thirds of its size, and every start
/// pays for the size (relocations, protocol-conformance scans).
func printError(_ text: String) {
    fflush(nil)  // what print() buffered goes first
    var bytes = Array(text.utf8)
    var off = 0
    while off < bytes.count {
        let n = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress! + off, $0.count - off) }
        if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
        off += n
    }
    bytes.removeAll()
}

/// Bytes to standard output as they are.
func writeOutput(_ data: Data) {
    fflush(nil)  // what print() buffered goes first
    data.withUnsafeBytes { raw in
        var off = 0
        while off < raw.count {
            let n = write(1, raw.baseAddress! + off, raw.count - off)
            if n <= 0 { if n < 0 && errno == EINTR { continue }; return }
            off += n
        }
    }
}

/// The one place an error becomes output and an exit code.
func fail(_ error: Error, json: Bool) -> Never {
    let e = (error as? ByokError) ?? ByokError(.internal, "\(error)")
    if json {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        print(String(decoding: (try? enc.encode(ErrorBody(e))) ?? Data(), as: UTF8.self))
    }
    printError("byokctl: error: \(Display.sanitized(e.message)) [\(e.code.rawValue)]\n")
    exit(e.code.exitCode)
}

/// A command line the parser refused (or `--help`/`--version`): usage errors exit 2, and with
/// `--json` anywhere on the line their sentence also goes to stdout as the usual error body.
enum UsageError {
    static func exit(_ error: Error, arguments: [String]) -> Never {
        if Byokctl.exitCode(for: error) == .success { Byokctl.exit(withError: error) }
        if wantsJSON(arguments) {
            let e = ByokError(.badRequest, Byokctl.message(for: error))
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            print(String(decoding: (try? enc.encode(ErrorBody(e))) ?? Data(), as: UTF8.self))
        }
        printError(Byokctl.fullMessage(for: error) + "\n")
        Foundation.exit(ErrorCode.badRequest.exitCode)
    }

    /// `--json` given as an option (not after `--`).
    static func wantsJSON(_ arguments: [String]) -> Bool { arguments.prefix { $0 != "--" }.contains("--json") }
}

/// A deprecation notice on stderr (never on stdout, which may be JSON).
func warn(_ text: String) {
    printError("byokctl: warning: \(text)\n")
}

/// Runs a command body, turning errors into the documented exit codes.
func run(_ options: GlobalOptions, _ body: () throws -> Void) {
    do { try body() } catch { fail(error, json: options.json) }
}

/// `s` followed by spaces up to `width` characters.
func padded(_ s: String, to width: Int) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }

func table(_ header: [String], _ rows: [[String]]) -> String {
    let rows = rows.map { $0.map(Display.sanitized) }
    var widths = header.map(\.count)
    for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
    func line(_ r: [String]) -> String {
        r.enumerated().map { i, c in i == r.count - 1 ? c : padded(c, to: widths[i]) }.joined(separator: "  ")
    }
    return ([line(header)] + rows.map(line)).joined(separator: "\n")
}
