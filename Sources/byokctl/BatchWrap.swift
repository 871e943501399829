import ArgumentParser
import ByokAPI
import ByokClient
import Foundation

/// `byokctl wrap --batch FILE`: one request, results streamed back and written as they arrive;
/// then, per entry, what happened and the command to run next.
struct BatchWrap {
    let options: GlobalOptions
    let file: String
    let force: Bool
    let defaultAlgorithm: String?

    struct Entry: Decodable {
        var key: String
        var params: String?
        var publicKey: String?
        var importToken: String?
        /// "raw" or "base64", for an import token file the rule cannot decide (docs/API.md).
        var importTokenEncoding: String?
        var wrappingAlgorithm: String?
        var kmsKeyId: String?
        /// The parameters' expiry for files that do not carry one (`parametersValidTo`; `validTo` is its older name).
        var parametersValidTo: String?
        var validTo: String?
        var out: String
    }

    /// What became of one entry, as `--json` prints it.
    struct Outcome: Encodable {
        /// 1-based position in the file, and the line it starts on.
        let entry: Int
        let line: Int
        let key: String
        let out: String
        var ok: Bool
        var files: [String]?
        /// Whether the command names the KMS key (else it says <KMS_KEY_ID>); not printed.
        var kmsKeyIdKnown = true

        enum CodingKeys: String, CodingKey { case entry, line, key, out, ok, files, nextCommand, error }
        var nextCommand: String?
        var error: ErrorBody.Inner?
    }

    func run() {
        byokctl.run(options) {
            let data = try Outputs.read(file, what: "batch file", limit: 64 << 20)
            let base = PathName.parent(file)
            func path(_ p: String) -> String { p.hasPrefix("/") || base == "." ? p : base + "/" + p }
            let (entries, lines) = try Self.parse(data, file: file)
            guard !entries.isEmpty else { throw ByokError(.badRequest, "the batch file \(file) has no entries") }
            let outs = entries.map { path($0.out) }
            if Set(outs).count != outs.count { throw ByokError(.badRequest, "two batch entries write to the same out directory") }
            var request: [BatchWrapRequest.Entry] = []
            // Every entry's output is checked before byokd wraps anything (as for `wrap`).
            for out in outs { try Outputs.check(directory: out, force: force) }
            for (i, e) in entries.enumerated() {
                let at = "batch entry at line \(lines[i]) (key \"\(Display.sanitized(e.key))\")"
                try Values.checkAlgorithm(e.wrappingAlgorithm, option: "wrappingAlgorithm of the \(at)")
                var input = ParametersInput(kmsKeyId: e.kmsKeyId, validTo: e.parametersValidTo ?? e.validTo)
                if let p = e.params {
                    let d = try Outputs.read(path(p), what: "parameters file of the \(at)")
                    if d.starts(with: [0x50, 0x4B, 0x03, 0x04]) { input.zip = d.base64EncodedString() } else { input.awsJSON = d.base64EncodedString() }
                } else if let pk = e.publicKey, let it = e.importToken {
                    input.publicKey = try Outputs.read(path(pk), what: "wrapping public key of the \(at)").base64EncodedString()
                    input.importToken = try Outputs.read(path(it), what: "import token of the \(at)").base64EncodedString()
                    input.importTokenEncoding = e.importTokenEncoding
                } else {
                    throw ByokError(.badRequest, "the \(at) needs params, or publicKey and importToken")
                }
                request.append(.init(name: outs[i], key: e.key, parameters: input, wrappingAlgorithm: e.wrappingAlgorithm ?? defaultAlgorithm))
            }
            var outcomes = entries.indices.map { Outcome(entry: $0 + 1, line: lines[$0], key: entries[$0].key, out: outs[$0], ok: false) }
            var done = 0, failed = 0
            let tty = isatty(2) == 1 && !options.json
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let results = try options.client().batch(BatchWrapRequest(entries: request)) { r in
                guard outcomes.indices.contains(r.index) else { return }
                let name = outcomes[r.index].out
                if let w = r.result, let blob = Data(base64Encoded: w.encryptedKeyMaterial), let token = Data(base64Encoded: w.importToken) {
                    do {
                        try Outputs.create(directory: name)
                        try Outputs.writeAtomically([(Outputs.encryptedKeyMaterial, blob), (Outputs.importToken, token),
                                                     (Outputs.manifest, try enc.encode(w.manifest) + Data("\n".utf8))], directory: name)
                        outcomes[r.index].ok = true
                        outcomes[r.index].files = Outputs.all.map { name + "/" + $0 }
                        outcomes[r.index].nextCommand = NextCommand.command(for: w.manifest, directory: name)
                        outcomes[r.index].kmsKeyIdKnown = w.manifest.kmsKeyId != nil
                    } catch {
                        let e = (error as? ByokError) ?? ByokError(.outputUnwritable, "\(error)")
                        outcomes[r.index].error = ErrorBody(e).error
                    }
                } else {
                    outcomes[r.index].error = r.error ?? ErrorBody(ByokError(.internal, "byokd's answer for this entry carried neither a result nor an error")).error
                }
                if outcomes[r.index].ok { done += 1 } else { failed += 1 }
                if tty { printError("\rwrapped \(done)/\(request.count), \(failed) failed") }
            }
            if tty { printError("\n") }
            if let fatal = results.first(where: { $0.index < 0 })?.error { throw ByokError(fatal.code, fatal.message) }
            for i in outcomes.indices where !outcomes[i].ok && outcomes[i].error == nil {
                outcomes[i].error = ErrorBody(ByokError(.internal, "byokd sent no result for this entry")).error
            }
            report(outcomes)
            if let first = outcomes.first(where: { !$0.ok })?.error { exit(first.code.exitCode) }
        }
    }

    private func report(_ outcomes: [Outcome]) {
        let failures = outcomes.filter { !$0.ok }
        if options.json {
            struct Out: Encodable { let total: Int; let succeeded: Int; let failed: [[String: String]]; let entries: [Outcome] }
            options.printJSON(Out(total: outcomes.count, succeeded: outcomes.count - failures.count,
                                  failed: failures.map { ["out": $0.out, "key": $0.key, "code": $0.error?.code.rawValue ?? "", "message": $0.error?.message ?? ""] },
                                  entries: outcomes))
            return
        }
        print("wrapped \(outcomes.count - failures.count) of \(outcomes.count) keys")
        for f in failures {
            print("FAILED line \(f.line), key \"\(Display.sanitized(f.key))\" (\(f.out)): \(Display.sanitized(f.error?.message ?? "")) [\(f.error?.code.rawValue ?? "")]")
        }
        let done = outcomes.filter(\.ok)
        guard !done.isEmpty else { return }
        print("")
        print("Next, upload each to AWS KMS (each directory also holds its manifest.json):")
        for o in done {
            print("")
            print("# line \(o.line), key \"\(Display.sanitized(o.key))\"")
            print(o.nextCommand ?? "")
        }
        if done.contains(where: { !$0.kmsKeyIdKnown }) {
            print("\n(replace <KMS_KEY_ID> with the KeyId each entry's parameters were requested for)")
        }
    }

    /// The entries of a JSON array or of JSON Lines, with the line each starts on.
    static func parse(_ data: Data, file: String) throws -> ([Entry], [Int]) {
        let decoder = JSONDecoder()
        if let array = try? decoder.decode([Entry].self, from: data) {
            let starts = arrayElementLines([UInt8](data))
            return (array, array.indices.map { $0 < starts.count ? starts[$0] : 0 })
        }
        var entries: [Entry] = [], lines: [Int] = []
        for (n, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated()
        where !line.allSatisfy({ $0 == 32 || $0 == 13 || $0 == 9 }) {
            do { entries.append(try decoder.decode(Entry.self, from: Data(line))) } catch {
                throw ByokError(.badRequest, "line \(n + 1) of the batch file \(file) is not a {key, params | publicKey+importToken, out, ...} entry (\(Self.reason(error))); the file must be a JSON array or JSON Lines")
            }
            lines.append(n + 1)
        }
        return (entries, lines)
    }

    /// The line on which each element of a top-level JSON array starts (strings skipped).
    static func arrayElementLines(_ bytes: [UInt8]) -> [Int] {
        var line = 1, depth = 0, inString = false, escaped = false, expectElement = false
        var starts: [Int] = []
        for b in bytes {
            if b == 10 { line += 1 }
            if inString {
                if escaped { escaped = false } else if b == UInt8(ascii: "\\") { escaped = true } else if b == UInt8(ascii: "\"") { inString = false }
                continue
            }
            if expectElement && depth == 1 && !(b == 32 || b == 9 || b == 10 || b == 13 || b == UInt8(ascii: "]")) {
                starts.append(line)
                expectElement = false
            }
            switch b {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth == 1 { expectElement = true }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth -= 1
            case UInt8(ascii: ","): if depth == 1 { expectElement = true }
            default: break
            }
        }
        return starts
    }

    static func reason(_ error: Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): "\(key.stringValue) is missing"
        case DecodingError.typeMismatch(_, let c), DecodingError.dataCorrupted(let c): c.debugDescription
        default: "\(error)"
        }
    }
}
