import ArgumentParser
import ByokAPI
import ByokClient
import Foundation

/// `byokctl wrap --batch FILE`: one request, results streamed back and written as they arrive.
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
        var validTo: String?
        var out: String
    }

    func run() {
        var failures: [(String, ByokError)] = []
        var written = 0
        byokctl.run(options) {
            let data = try Outputs.read(file, what: "batch file", limit: 64 << 20)
            let base = PathName.parent(file)
            func path(_ p: String) -> String { p.hasPrefix("/") || base == "." ? p : base + "/" + p }
            let entries: [Entry]
            do {
                if let arr = try? JSONDecoder().decode([Entry].self, from: data) { entries = arr } else {
                    entries = try data.split(separator: UInt8(ascii: "\n")).filter { !$0.allSatisfy { $0 == 32 || $0 == 13 } }
                        .map { try JSONDecoder().decode(Entry.self, from: Data($0)) }
                }
            } catch {
                throw ByokError(.badRequest, "the batch file \(file) is neither a JSON array nor JSON Lines of {key, params, out, ...} entries (\(error))")
            }
            guard !entries.isEmpty else { throw ByokError(.badRequest, "the batch file \(file) has no entries") }
            let outs = entries.map { path($0.out) }
            if Set(outs).count != outs.count { throw ByokError(.badRequest, "two batch entries write to the same out directory") }
            var request: [BatchWrapRequest.Entry] = []
            for (i, e) in entries.enumerated() {
                try Outputs.check(directory: outs[i], force: force)
                var input = ParametersInput(kmsKeyId: e.kmsKeyId, validTo: e.validTo)
                if let p = e.params {
                    let d = try Outputs.read(path(p), what: "parameters file of entry \(i + 1)")
                    if d.starts(with: [0x50, 0x4B, 0x03, 0x04]) { input.zip = d.base64EncodedString() } else { input.awsJSON = d.base64EncodedString() }
                } else if let pk = e.publicKey, let it = e.importToken {
                    input.publicKey = try Outputs.read(path(pk), what: "wrapping public key of entry \(i + 1)").base64EncodedString()
                    input.importToken = try Outputs.read(path(it), what: "import token of entry \(i + 1)").base64EncodedString()
                    input.importTokenEncoding = e.importTokenEncoding
                } else {
                    throw ByokError(.badRequest, "batch entry \(i + 1) needs params, or publicKey and importToken")
                }
                request.append(.init(name: outs[i], key: e.key, parameters: input, wrappingAlgorithm: e.wrappingAlgorithm ?? defaultAlgorithm))
            }
            let tty = isatty(2) == 1 && !options.json
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            var writeError: Error?
            let results = try options.client().batch(BatchWrapRequest(entries: request)) { r in
                guard r.index >= 0 else { return }
                if let w = r.result, let blob = Data(base64Encoded: w.encryptedKeyMaterial), let token = Data(base64Encoded: w.importToken) {
                    do {
                        try Outputs.create(directory: r.name)
                        try Outputs.writeAtomically([(Outputs.encryptedKeyMaterial, blob), (Outputs.importToken, token),
                                                     (Outputs.manifest, try enc.encode(w.manifest) + Data("\n".utf8))], directory: r.name)
                        written += 1
                    } catch {
                        writeError = writeError ?? error
                        failures.append((r.name, (error as? ByokError) ?? ByokError(.outputUnwritable, "\(error)")))
                    }
                } else if let e = r.error {
                    failures.append((r.name, ByokError(e.code, e.message)))
                }
                if tty {
                    printError("\rwrapped \(written)/\(request.count), \(failures.count) failed")
                }
            }
            if tty { printError("\n") }
            if let fatal = results.first(where: { $0.index < 0 })?.error { throw ByokError(fatal.code, fatal.message) }
            if options.json {
                struct Out: Encodable { let total: Int; let succeeded: Int; let failed: [[String: String]] }
                options.printJSON(Out(total: request.count, succeeded: written,
                                      failed: failures.map { ["out": $0.0, "code": $0.1.code.rawValue, "message": $0.1.message] }))
            } else {
                print("wrapped \(written) of \(request.count) keys")
                for (name, e) in failures { print("FAILED \(name): \(e.message) [\(e.code.rawValue)]") }
                if written > 0 { print("each output directory holds its manifest.json; upload each with aws kms import-key-material as `byokctl wrap` prints it") }
            }
        }
        if let first = failures.first { exit(first.1.code.exitCode) }
    }
}
