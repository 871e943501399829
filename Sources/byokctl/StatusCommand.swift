import ArgumentParser
import ByokAPI
import Foundation

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show the module, the token, and which wrapping algorithms passed the self-test.")
    @OptionGroup var options: GlobalOptions

    func run() {
        byokctl.run(options) {
            let s = try options.client().call("GET", "/v1/status", as: StatusResponse.self)
            if options.json { options.printJSON(s); return }
            print("byokd \(s.version)")
            print("module:  \(s.module) — \(s.moduleDescription)")
            if let t = s.token {
                print("token:   \"\(t.label)\" serial \(t.serial), \(t.model) (\(t.manufacturer))\(s.tokenAvailable ? "" : " — UNAVAILABLE")")
            }
            if let e = s.tokenError { print("         \(e)") }
            if let entry = s.moduleEntryPoint { print("entry:   \(entry)") }
            if let why = s.tokenSelection { print("chosen:  \(why)") }
            if let flags = s.tokenFlags { print("flags:   \(flags.isEmpty ? "none" : flags.joined(separator: " "))") }
            for note in s.tokenNotes ?? [] { print("  NOTE:  \(note)") }
            if let fips = s.fips { print("FIPS:    \(fips.mode) (\(fips.evidence))") }
            // byokd runs the self-test right after it starts answering: until it is done there is no verdict yet.
            print("self-test: \(s.selfTestAt ?? "not finished yet (byokd runs it at start; ask again in a moment)")")
            print(table(["ALGORITHM", "STATE", "HOW / WHY"], s.algorithms.map { [$0.name, $0.state, $0.via ?? $0.reason ?? ""] }))
        }
    }
}

struct SelfTestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "selftest",
        abstract: "Run the mechanism self-test again: each wrapping algorithm on a throwaway key, checked in software.")
    @OptionGroup var options: GlobalOptions

    func run() {
        byokctl.run(options) {
            let r = try options.client().call("POST", "/v1/selftest", "{}", as: SelfTestResponse.self)
            if options.json { options.printJSON(r); return }
            print(table(["ALGORITHM", "STATE", "HOW / WHY"], r.algorithms.map { [$0.name, $0.state, $0.via ?? $0.reason ?? ""] }))
        }
    }
}
