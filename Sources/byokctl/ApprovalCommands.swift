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
