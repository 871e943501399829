import ArgumentParser
import ByokAPI
import ByokClient
import Foundation

/// Tells the operator their request waits for a second person.
func announcePending(_ p: PendingRequest) {
    let who = p.needs == "trust" ? "the Security Officer's step" : "a second operator's approval"
    let command = p.needs == "trust" ? "byokctl trust \(p.id) --wrapping-key-sha256 …" : "byokctl approve \(p.id)"
        + (p.confirmWrappingKey == true ? " --wrapping-key-sha256 …" : "")
    printError("""
        byokctl: this \(p.operation) needs \(who).
        \(describe(p, indent: "  "))
          ask them to check it and run:  \(command)
          waiting until \(p.expiresAt) …

        """)
}

/// A held request as a block of lines, everything that came from a client or token sanitized.
func describe(_ p: PendingRequest, indent: String = "") -> String {
    var lines: [(String, String)] = [("request", p.id), ("operation", p.operation), ("requested by", "\(p.requestedBy) (uid \(p.requestedByUid))"),
                                     ("waits for", p.needs == "trust" ? "the Security Officer: byokctl trust \(p.id)" : "an operator: byokctl approve \(p.id)")]
    if let k = p.key {
        lines.append(("token key", "\"\(k.label)\"" + [k.spec, k.id.map { "id \($0)" }, k.fingerprint.map { "fingerprint \($0)" }]
            .compactMap { $0 }.map { ", " + $0 }.joined()))
    }
    if let a = p.wrappingAlgorithm { lines.append(("algorithm", a)) }
    if let h = p.wrappingPublicKeySha256 {
        let source = p.wrappingKeySource == .kms ? "fetched from AWS KMS by byokd" : "supplied by the requester — check it against your own copy"
        lines.append(("wrapping key SHA-256", h))
        lines.append(("wrapping key source", source))
    }
    if let v = p.parametersValidTo { lines.append(("parameters valid to", v)) }
    if let k = p.kmsKeyId { lines.append(("KMS key (as given)", k)) }
    if p.key == nil { lines.append(("what", p.summary)) }
    lines.append(("expires", p.expiresAt))
    let width = lines.map(\.0.count).max() ?? 0
    return lines.map { indent + padded($0.0, to: width) + "  " + Display.sanitized($0.1) }.joined(separator: "\n")
}

struct Approve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve",
        abstract: "Approve another operator's request (two-person rule).",
        discussion: "A wrap under a wrapping key the requester supplied needs --wrapping-key-sha256: the first 16 or more hex digits of that key's SHA-256, read from your own copy of the AWS parameters (e.g. `openssl pkey -pubin -inform DER -in WrappingPublicKey.bin -outform DER | sha256sum`). `byokctl pending` shows what byokd received.")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "The request id the requester was given.") var id: String
    @Option(help: ArgumentHelp("The wrapping key's SHA-256 (16+ hex digits) as you checked it.", valueName: "hex")) var wrappingKeySha256: String?

    func run() {
        byokctl.run(options) {
            let r = try options.client().call("POST", "/v1/approvals/\(id)", ApproveRequest(wrappingKeySha256: wrappingKeySha256), as: ApprovalResponse.self)
            if options.json { options.printJSON(r); return }
            printOutcome(r, verb: "approved")
        }
    }
}

func printOutcome(_ r: ApprovalResponse, verb: String) {
    let who = Display.sanitized(r.requestedBy)
    if let e = r.error {
        print("\(verb) \(r.operation) \(r.id) of \(who); it failed: \(Display.sanitized(e.message)) [\(e.code.rawValue)]")
    } else {
        print("\(verb) \(r.operation) \(r.id) of \(who); it is done and its result is waiting for \(who)")
    }
}

struct Trust: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trust",
        abstract: "As the Security Officer, trust a held wrap's wrapping key on the token for that one wrap (trustedWrapping).",
        discussion: "Check the request with `byokctl pending` first. The SO PIN is read from the terminal without echo, or from --so-pin-file (never from the command line or the environment); it is sent to byokd once, used for one C_Login, and wiped.")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "The request id.") var id: String
    @Option(help: ArgumentHelp("The wrapping key's SHA-256 (16+ hex digits) as you checked it.", valueName: "hex")) var wrappingKeySha256: String
    @Option(help: ArgumentHelp("A file holding the SO PIN (one trailing newline allowed), for automation.", valueName: "file"),
                                completion: .file()) var soPinFile: String?

    func run() {
        byokctl.run(options) {
            var pin = try soPinFile.map { try SecretInput.file($0) } ?? SecretInput.terminal(prompt: "Security Officer PIN for request \(id): ")
            defer { for i in pin.indices { pin[i] = 0 } }
            var encoded = Array(Data(pin).base64EncodedString().utf8)
            defer { for i in encoded.indices { encoded[i] = 0 } }
            let r = try options.client().call("POST", "/v1/trust/\(id)",
                                              TrustRequest(soPin: String(decoding: encoded, as: UTF8.self), wrappingKeySha256: wrappingKeySha256),
                                              as: ApprovalResponse.self)
            if options.json { options.printJSON(r); return }
            printOutcome(r, verb: "trusted the wrapping key for")
        }
    }
}

struct Pending: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "pending", abstract: "List requests waiting for approval or for the Security Officer.")
    @OptionGroup var options: GlobalOptions

    func run() {
        byokctl.run(options) {
            let r = try options.client().call("GET", "/v1/approvals", as: PendingListResponse.self)
            if options.json { options.printJSON(r); return }
            if r.pending.isEmpty { print("no requests are waiting for approval"); return }
            print(r.pending.map { describe($0) }.joined(separator: "\n\n"))
        }
    }
}
