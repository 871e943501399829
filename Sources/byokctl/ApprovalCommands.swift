import ArgumentParser
import ByokAPI
import ByokClient
import Foundation

/// Tells the operator their request waits for a second person.
func announcePending(_ p: PendingRequest) {
    FileHandle.standardError.write(Data("""
        byokctl: this \(p.operation) needs a second operator's approval.
          request \(p.id): \(p.summary)
          ask another operator to run:  byokctl approve \(p.id)
          waiting until \(p.expiresAt) …

        """.utf8))
}

struct Approve: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Approve another operator's request (two-person rule).")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "The request id the requester was given.") var id: String

    func run() {
        byokctl.run(options) {
            let r = try options.client().call("POST", "/v1/approvals/\(id)", "{}", as: ApprovalResponse.self)
            if options.json { options.printJSON(r); return }
            if let e = r.error {
                print("approved \(r.operation) \(r.id) of \(r.requestedBy); it failed: \(e.message) [\(e.code.rawValue)]")
            } else {
                print("approved \(r.operation) \(r.id) of \(r.requestedBy); it is done and its result is waiting for \(r.requestedBy)")
            }
        }
    }
}

struct Pending: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List requests waiting for approval.")
    @OptionGroup var options: GlobalOptions

    func run() {
        byokctl.run(options) {
            let r = try options.client().call("GET", "/v1/approvals", as: PendingListResponse.self)
            if options.json { options.printJSON(r); return }
            if r.pending.isEmpty { print("no requests are waiting for approval"); return }
            print(table(["ID", "BY", "EXPIRES", "WHAT"], r.pending.map { [$0.id, $0.requestedBy, $0.expiresAt, $0.summary] }))
        }
    }
}

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Fetch or verify the audit log.", subcommands: [Verify.self, Show.self])

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check an audit log's hash chain and name the first broken record.",
            discussion: "Without FILE, fetches the daemon's log (needs the audit permission). Exit 0 intact, 2 broken.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "An audit.jsonl file.") var file: String?
        @Flag(help: "Also have byokd check every record's MAC with its key on the token (setting auditMacKey).") var withToken = false

        func run() {
            byokctl.run(options) {
                let data = try file.map { try Outputs.read($0, what: "audit log", limit: 1 << 34) } ?? options.client().fetch("/v1/audit")
                if withToken {
                    let (status, body) = try options.client().send("POST", "/v1/audit/verify", body: data)
                    if status != 200 {
                        let e = (try? JSONDecoder().decode(ErrorBody.self, from: body)).map { ByokError($0.error.code, $0.error.message) }
                        throw e ?? ByokError(.internal, "byokd answered \(status)")
                    }
                    let r = try JSONDecoder().decode(AuditVerifyResponse.self, from: body)
                    if options.json { options.printJSON(r) }
                    guard r.intact else {
                        let e = ByokError(.auditChainBroken, "the audit log is broken at line \(r.firstBrokenLine ?? 0): \(r.reason ?? "")")
                        FileHandle.standardError.write(Data("byokctl: error: \(e.message) [\(e.code.rawValue)]\n".utf8))
                        Foundation.exit(e.code.exitCode)
                    }
                    if !options.json {
                        print("audit log intact: \(r.records) records, chain head \(r.head); \(r.macVerified) token MACs verified, \(r.macMissing) records without a MAC")
                    }
                    return
                }
                let report = AuditVerifier.verify(data)
                if let broken = report.firstBroken {
                    let e = ByokError(.auditChainBroken, "the audit log is broken at line \(broken.line): \(broken.reason); the \(report.records) records before it are intact")
                    if options.json {
                        struct Out: Encodable { let intact: Bool; let records: Int; let firstBrokenLine: Int; let reason: String; let error: ErrorBody.Inner }
                        options.printJSON(Out(intact: false, records: report.records, firstBrokenLine: broken.line, reason: broken.reason, error: ErrorBody(e).error))
                    }
                    FileHandle.standardError.write(Data("byokctl: error: \(e.message) [\(e.code.rawValue)]\n".utf8))
                    Foundation.exit(e.code.exitCode)
                }
                if options.json {
                    struct Out: Encodable { let intact: Bool; let records: Int; let head: String }
                    options.printJSON(Out(intact: true, records: report.records, head: report.head))
                } else {
                    print("audit log intact: \(report.records) records, chain head \(report.head)")
                }
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the daemon's audit log (JSON Lines).")
        @OptionGroup var options: GlobalOptions

        func run() {
            byokctl.run(options) {
                FileHandle.standardOutput.write(try options.client().fetch("/v1/audit"))
            }
        }
    }
}
