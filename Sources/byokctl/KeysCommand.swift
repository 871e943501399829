import ArgumentParser
import ByokAPI
import Foundation

struct Keys: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "keys", abstract: "List or generate keys on the token.", subcommands: [List.self, Generate.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List secret and private keys on the token, with spec and check value.")
        @OptionGroup var options: GlobalOptions

        func run() {
            byokctl.run(options) {
                let r = try options.client().call("GET", "/v1/keys", as: KeyListResponse.self)
                if options.json { options.printJSON(r); return }
                if r.keys.isEmpty { print("no keys on the token; make one with `byokctl keys generate --label NAME --spec SYMMETRIC_DEFAULT`"); return }
                // Fits 100 columns for labels up to ~20 characters: the public-key hash is shortened
                // (it is whole in --json and in the manifest), the spec stands for the type.
                print(table(["LABEL", "ID", "SPEC", "FINGERPRINT", "SENSITIVE", "EXTRACTABLE"], r.keys.map {
                    [$0.label, $0.id, $0.reservedFor == "audit-mac" ? "byokd's audit MAC key" : $0.spec ?? $0.type,
                     $0.kcv.map { "KCV " + $0 } ?? $0.publicKeySha256.map { String($0.prefix(16)) + "…" } ?? $0.noFingerprint ?? "-",
                     $0.sensitive.map { $0 ? "yes" : "NO" } ?? "?", $0.extractable.map { $0 ? "yes" : "no" } ?? "?"]
                }))
            }
        }
    }

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "generate", abstract: "Generate a key inside the token (sensitive, extractable only by wrapping).")
        @OptionGroup var options: GlobalOptions
        @Option(help: "Label of the new key (must not exist on the token).") var label: String
        @Option(name: [.customLong("spec"), .customLong("key-spec")],
                help: ArgumentHelp("Key spec (AWS's names; --key-spec as in aws kms create-key): \(Values.keySpecs.joined(separator: ", ")).", valueName: "spec"),
                completion: .list(Values.keySpecs)) var spec: String
        @Flag(help: "Make the key even if no wrapping algorithm that passed the self-test can export it to AWS KMS (the answer says so).")
        var allowUnexportable = false

        func run() {
            byokctl.run(options) {
                try Values.check(spec, in: Values.keySpecs, option: "--spec", code: .keySpecUnknown, what: "a key spec")
                let request = GenerateRequest(label: label, spec: spec, allowUnexportable: allowUnexportable ? true : nil)
                let k = try options.client().call("POST", "/v1/keys", request, as: KeyInfo.self, onPending: announcePending)
                if options.json { options.printJSON(k); return }
                print("generated \(k.spec ?? k.type) key \"\(k.label)\" id \(k.id)")
                if let kcv = k.kcv { print("KCV \(kcv)") }
                if let h = k.publicKeySha256 { print("public key SHA-256 \(h)") }
                if let none = k.noFingerprint { print(none) }
                for w in k.warnings ?? [] { print("WARNING: \(w)") }
                print(k.uri)
            }
        }
    }
}
