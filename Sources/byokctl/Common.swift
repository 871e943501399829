import ArgumentParser
import ByokAPI
import ByokClient
import Foundation

/// Options every command takes.
struct GlobalOptions: ParsableArguments {
    @Option(help: ArgumentHelp("byokd's socket (default $BYOKD_SOCKET or /run/byokd/byokd.sock).", valueName: "path"))
    var socket: String?

    @Flag(help: "Machine-readable JSON output (errors too, as {\"error\":{\"code\",\"message\"}}).")
    var json = false

    var socketPath: String {
        socket ?? ProcessInfo.processInfo.environment["BYOKD_SOCKET"].flatMap { $0.isEmpty ? nil : $0 } ?? ByokSocket.defaultPath
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
func printError(_ text: String) { fputs(text, stderr) }

/// Bytes to standard output as they are.
func writeOutput(_ data: Data) {
    data.withUnsafeBytes { _ = fwrite($0.baseAddress, 1, $0.count, stdout) }
    fflush(stdout)
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
