import ArgumentParser
import ByokAPI
import ByokClient
import Foundation

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Fetch, anchor or verify the audit log.", subcommands: [Verify.self, Head.self, Show.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check an audit log's hash chain (and token MACs, and kept heads) and name the first broken record.",
            discussion: """
                Without FILE, fetches the daemon's log (needs the audit permission). Exit 0 intact, 2 broken.
                The chain alone cannot show records removed from, or altered at, the end: keep the head \
                (`byokctl audit head`, or the "audit head SEQ:HASH" lines byokd writes to its journal) \
                somewhere else and pass it with --head.
                """)
        @OptionGroup var options: GlobalOptions
        @Argument(help: "An audit.jsonl file.") var file: String?
        @Flag(help: "Also have byokd check every record's MAC with its key on the token (setting auditMacKey).") var withToken = false
        @Option(name: .customLong("head"), help: ArgumentHelp("A record the log must contain, as SEQ:HASH (from `byokctl audit head` or byokd's journal); repeatable.", valueName: "seq:hash"))
        var heads: [String] = []

        func validate() throws {
            for h in heads where AuditAnchor(h) == nil {
                throw ValidationError("--head \(h) is not SEQ:HASH (a record number, a colon, and 64 hex digits), as `byokctl audit head` prints it")
            }
        }

        func run() {
            byokctl.run(options) {
                let data = try file.map { try Outputs.read($0, what: "audit log", limit: 1 << 34) } ?? options.client().fetch("/v1/audit")
                let anchors = heads.compactMap(AuditAnchor.init)
                // The chain and the kept heads are checked here; the MACs only the token can check.
                var result = AuditVerifyResponse(AuditVerifier.verify(data, anchors: anchors))
                var macs = false
                if withToken && result.intact {
                    let (status, body) = try options.client().send("POST", "/v1/audit/verify", body: data)
                    if status != 200 {
                        let e = (try? JSONDecoder().decode(ErrorBody.self, from: body)).map { ByokError($0.error.code, $0.error.message) }
                        throw e ?? ByokError(.internal, "byokd answered \(status)")
                    }
                    result = try JSONDecoder().decode(AuditVerifyResponse.self, from: body)
                    macs = true
                }
                report(result, anchors: anchors, macs: macs)
            }
        }

        private func report(_ r: AuditVerifyResponse, anchors: [AuditAnchor], macs: Bool) {
            if options.json {
                struct Out: Encodable {
                    let verify: AuditVerifyResponse
                    let anchors: [String]
                    let error: ErrorBody.Inner?
                    func encode(to encoder: Encoder) throws {
                        try verify.encode(to: encoder)
                        var c = encoder.container(keyedBy: Keys.self)
                        try c.encode(anchors, forKey: .anchors)
                        try c.encodeIfPresent(error, forKey: .error)
                    }
                    enum Keys: String, CodingKey { case anchors, error }
                }
                let e = r.intact ? nil : ErrorBody(broken(r)).error
                options.printJSON(Out(verify: r, anchors: anchors.map(\.description), error: e))
            }
            guard r.intact else {
                let e = broken(r)
                printError("byokctl: error: \(e.message) [\(e.code.rawValue)]\n")
                Foundation.exit(e.code.exitCode)
            }
            if options.json { return }
            var parts = ["audit log intact: \(r.records) records, chain head \(r.seq ?? 0):\(r.head)"]
            if macs {
                parts.append("\(r.macVerified) token MACs verified, \(r.macMissing) records before the first MAC")
                if let gaps = r.macGaps, gaps > 0 {
                    parts.append("\(gaps) records the token could not sign, each saying so (the first on line \(r.firstGapLine ?? 0))")
                }
                if let tail = r.uncoveredTail, tail > 0 {
                    parts.append("the last \(tail) records are covered by no MAC (only a kept head protects them)")
                }
            }
            if !anchors.isEmpty { parts.append("contains the kept head\(anchors.count == 1 ? "" : "s") \(anchors.map(\.description).joined(separator: ", "))") }
            if let open = r.openIntents, !open.isEmpty {
                let shown = open.prefix(20).map(String.init).joined(separator: ", ") + (open.count > 20 ? ", …" : "")
                parts.append("\(open.count) write-ahead records have no outcome (seq \(shown)): byokd stopped or could not write between them and their outcome, so those operations may have happened — `byokctl keys list` shows whether such keys exist")
            }
            print(parts.joined(separator: "; "))
        }

        private func broken(_ r: AuditVerifyResponse) -> ByokError {
            ByokError(.auditChainBroken, "the audit log is broken at line \(r.firstBrokenLine ?? 0): \(r.reason ?? ""); the \(r.records) records before it are intact")
        }
    }

    struct Head: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the daemon's audit chain head as SEQ:HASH, to keep somewhere else.",
            discussion: "Later, `byokctl audit verify --head SEQ:HASH` fails unless the log still holds that very record, so records removed from or altered at the end are caught.")
        @OptionGroup var options: GlobalOptions

        func run() {
            byokctl.run(options) {
                let r = try options.client().call("GET", "/v1/audit/head", as: AuditHeadResponse.self)
                if options.json { options.printJSON(r); return }
                print(r.anchor)
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the daemon's audit log (JSON Lines).")
        @OptionGroup var options: GlobalOptions

        func run() {
            byokctl.run(options) {
                writeOutput(try options.client().fetch("/v1/audit"))
            }
        }
    }
}
