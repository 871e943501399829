import ArgumentParser
import ByokAPI
import ByokClient
import Foundation

struct KMS: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kms",
        abstract: "Online mode: byokd calls AWS KMS itself, with the credentials the service holds.",
        subcommands: [Import.self, CreateKey.self, Rotate.self, Materials.self])

    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "import",
            abstract: "GetParametersForImport → wrap on the token → ImportKeyMaterial → DescribeKey.",
            discussion: "Defaults: RSAES_OAEP_SHA_256 (RSA_AES_KEY_WRAP_SHA_256 for RSA and ECC keys) and RSA_4096, or the best the token's self-test passed. Re-running it re-imports the same token key (after its material expired or was deleted, or into each replica of a multi-Region key).")
        @OptionGroup var options: GlobalOptions
        @Option(help: "The KMS key: key id, key ARN or alias/NAME.") var kmsKeyId: String
        @Option(help: "The token key: its label or a pkcs11: URI.") var key: String
        @Option(help: ArgumentHelp("Wrapping algorithm (default: the best the token passed).", valueName: "algorithm"),
                completion: .algorithms) var wrappingAlgorithm: String?
        @Option(help: ArgumentHelp("RSA_2048, RSA_3072 or RSA_4096 (default RSA_4096).", valueName: "spec"),
                completion: .list(Values.wrappingKeySpecs)) var wrappingKeySpec: String?
        @Option(help: ArgumentHelp("When the imported material expires (ISO 8601); the default is that it does not.", valueName: "time")) var validTo: String?
        @Flag(help: "The material does not expire (the default; for scripts that want to say so).") var noExpiration = false
        @Option(help: ArgumentHelp("NEW_KEY_MATERIAL or EXISTING_KEY_MATERIAL (keys holding several key materials).", valueName: "type"),
                completion: .list(Values.importTypes)) var importType: String?
        @Option(help: "KeyMaterialDescription for keys holding several key materials.") var keyMaterialDescription: String?
        @Option(help: ArgumentHelp("Also keep EncryptedKeyMaterial.bin, ImportToken.bin and manifest.json (with the KMS answers) in this directory.",
                                   valueName: "dir"), completion: .directory) var out: String?
        @Flag(help: "Replace outputs already in --out.") var force = false

        func validate() throws {
            if validTo != nil && noExpiration { throw ValidationError("--valid-to and --no-expiration contradict each other") }
            if force && out == nil { throw ValidationError("--force replaces outputs in --out; give --out DIR") }
        }

        func run() {
            byokctl.run(options) {
                try Values.checkAlgorithm(wrappingAlgorithm)
                try Values.check(wrappingKeySpec, in: Values.wrappingKeySpecs, option: "--wrapping-key-spec", code: .badRequest, what: "a wrapping key spec")
                try Values.check(importType, in: Values.importTypes, option: "--import-type", code: .badRequest, what: "an import type")
                if let out { try Outputs.check(directory: out, force: force) }
                try importKey(out: out)
            }
        }

        private func importKey(out: String?) throws {
            let r = try options.client().call("POST", "/v1/kms/import",
                KMSImportRequest(kmsKeyId: kmsKeyId, key: key, wrappingAlgorithm: wrappingAlgorithm, wrappingKeySpec: wrappingKeySpec,
                                 validTo: validTo, importType: importType, keyMaterialDescription: keyMaterialDescription),
                as: KMSImportResponse.self, onPending: announcePending)
            guard let blob = Data(base64Encoded: r.wrap.encryptedKeyMaterial), let token = Data(base64Encoded: r.wrap.importToken) else {
                throw ByokError(.internal, "byokd's answer carried damaged base64")
            }
            if let out {
                struct ManifestWithKMS: Encodable { let manifest: Manifest; let kms: KMSKeyInfo }
                let enc = JSONEncoder()
                enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                try Outputs.create(directory: out)
                try Outputs.writeAtomically([(Outputs.encryptedKeyMaterial, blob), (Outputs.importToken, token),
                                             (Outputs.manifest, try enc.encode(ManifestWithKMS(manifest: r.wrap.manifest, kms: r.kms)) + Data("\n".utf8))],
                                            directory: out)
            }
            if options.json { options.printJSON(r); return }
            let m = r.wrap.manifest
            print("imported \(m.key.spec) key \"\(Display.sanitized(m.key.label))\" (\(m.key.kcv.map { "KCV \($0)" } ?? m.key.publicKeySha256.map { "public key SHA-256 \($0)" } ?? ""))")
            print("  into \(r.kms.arn) — key state \(r.kms.keyState)")
            print("  wrapped on token \"\(m.token.label)\" with \(m.wrappingAlgorithm) under \(m.wrappingKeySpec)" + (out.map { "; outputs and manifest in \($0)" } ?? ""))
        }
    }

    struct CreateKey: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "create-key", abstract: "CreateKey with Origin=EXTERNAL, ready for an import.")
        @OptionGroup var options: GlobalOptions
        @Option(name: [.customLong("spec"), .customLong("key-spec")], help: ArgumentHelp("AWS key spec (--key-spec as in aws kms create-key).", valueName: "spec"),
                completion: .list(Values.awsKeySpecs)) var spec: String
        @Option(name: [.customLong("usage"), .customLong("key-usage")],
                help: ArgumentHelp("Key usage (default: ENCRYPT_DECRYPT, GENERATE_VERIFY_MAC or SIGN_VERIFY by spec).", valueName: "usage"),
                completion: .list(Values.keyUsages)) var usage: String?
        @Flag(help: "A multi-Region primary key.") var multiRegion = false
        @Option(help: "Description.") var description: String?
        @Option(help: ArgumentHelp("A tag, KEY=VALUE (repeatable).", valueName: "key=value")) var tag: [String] = []

        func run() {
            byokctl.run(options) {
                try Values.check(spec, in: Values.awsKeySpecs, option: "--key-spec", code: .keySpecUnknown, what: "an AWS KMS key spec")
                try Values.check(usage, in: Values.keyUsages, option: "--key-usage", code: .badRequest, what: "a key usage")
                var tags: [String: String] = [:]
                for t in tag {
                    guard let eq = t.firstIndex(of: "=") else { throw ByokError(.badRequest, "--tag \(t) is not KEY=VALUE") }
                    tags[String(t[..<eq])] = String(t[t.index(after: eq)...])
                }
                let k = try options.client().call("POST", "/v1/kms/create-key",
                    KMSCreateKeyRequest(spec: spec, usage: usage, multiRegion: multiRegion, description: description, tags: tags.isEmpty ? nil : tags),
                    as: KMSKeyInfo.self, onPending: announcePending)
                if options.json { options.printJSON(k); return }
                print("created \(k.keySpec ?? spec) key \(k.keyId) (\(k.arn)), state \(k.keyState), origin \(k.origin ?? "EXTERNAL")")
                print("import into it with: byokctl kms import --kms-key-id \(k.keyId) --key LABEL --out DIR")
            }
        }
    }

    struct Rotate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate",
            abstract: "Import new key material from a token key into a KMS key (NEW_KEY_MATERIAL), then RotateKeyOnDemand.",
            discussion: "For symmetric KMS keys with imported material that hold several key materials. The old material stays (NON_CURRENT) and still decrypts; `byokctl kms materials` lists them.")
        @OptionGroup var options: GlobalOptions
        @Option(help: "The KMS key: key id, key ARN or alias/NAME.") var kmsKeyId: String
        @Option(help: "The token key holding the new material: its label or a pkcs11: URI.") var key: String
        @Option(help: ArgumentHelp("Wrapping algorithm (default: the best the token passed).", valueName: "algorithm"),
                completion: .algorithms) var wrappingAlgorithm: String?
        @Option(help: ArgumentHelp("RSA_2048, RSA_3072 or RSA_4096 (default RSA_4096).", valueName: "spec"),
                completion: .list(Values.wrappingKeySpecs)) var wrappingKeySpec: String?
        @Option(help: "When the new material expires (ISO 8601); the default is that it does not.") var validTo: String?
        @Option(help: "KeyMaterialDescription of the new material.") var keyMaterialDescription: String?

        func run() {
            byokctl.run(options) {
                try Values.checkAlgorithm(wrappingAlgorithm)
                try Values.check(wrappingKeySpec, in: Values.wrappingKeySpecs, option: "--wrapping-key-spec", code: .badRequest, what: "a wrapping key spec")
                let r = try options.client().call("POST", "/v1/kms/rotate",
                    KMSRotateRequest(kmsKeyId: kmsKeyId, key: key, wrappingAlgorithm: wrappingAlgorithm, wrappingKeySpec: wrappingKeySpec,
                                     validTo: validTo, keyMaterialDescription: keyMaterialDescription),
                    as: KMSRotateResponse.self, onPending: announcePending)
                if options.json { options.printJSON(r); return }
                let m = r.imported.wrap.manifest
                print("imported new key material from \(m.key.spec) key \"\(Display.sanitized(m.key.label))\" (\(m.key.kcv.map { "KCV \($0)" } ?? "")) into \(r.imported.kms.arn) and rotated to it")
                print(materialsTable(r.materials))
            }
        }
    }

    struct Materials: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "materials", abstract: "List a KMS key's key materials and their states (ListKeyRotations).")
        @OptionGroup var options: GlobalOptions
        @Option(help: "The KMS key: key id, key ARN or alias/NAME.") var kmsKeyId: String

        func run() {
            byokctl.run(options) {
                let r = try options.client().call("POST", "/v1/kms/materials", KMSMaterialsRequest(kmsKeyId: kmsKeyId), as: KMSMaterialsResponse.self)
                if options.json { options.printJSON(r); return }
                print(materialsTable(r.materials))
            }
        }
    }
}

func materialsTable(_ materials: [KMSKeyMaterial]) -> String {
    table(["KEY MATERIAL", "STATE", "IMPORT", "ROTATED", "EXPIRES", "DESCRIPTION"], materials.map {
        [$0.keyMaterialId ?? "-", $0.state ?? "-", $0.importState ?? "-", $0.rotationDate ?? "-", $0.validTo ?? "never", $0.description ?? ""]
    })
}
