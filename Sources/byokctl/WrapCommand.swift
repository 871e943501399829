import ArgumentParser
import ByokAPI
import ByokClient
import Foundation

extension CloudProvider: ExpressibleByArgument {}

struct Wrap: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wrap",
        abstract: "Wrap a token key on the token for AWS KMS, Azure Key Vault or Google Cloud KMS.",
        discussion: """
        AWS (default): --params with the JSON `aws kms get-parameters-for-import` prints or the console's \
        ImportParameters.zip; or --public-key and --import-token (each DER/raw, base64 or PEM). Writes \
        EncryptedKeyMaterial.bin, ImportToken.bin and manifest.json.
        Azure (--for azure): --params with the JSON `az keyvault key show` prints for the KEK, or --public-key KEK.pem \
        (`az keyvault key download`) with --kid. Writes KeyTransferPackage.byok and manifest.json.
        Google Cloud (--for gcp): --params with the JSON `gcloud kms import-jobs describe --format=json` prints, or \
        --public-key JOB.pem with --import-job and --import-method. Writes WrappedKey.bin and manifest.json.
        Each prints the command to run next.
        """)
    @OptionGroup var options: GlobalOptions
    @Option(help: "The key: its label or a pkcs11: URI.") var key: String?
    @Option(name: .customLong("for"), help: "The cloud the key goes to.") var provider: CloudProvider = .aws
    @Option(help: ArgumentHelp("AWS CLI JSON or ImportParameters.zip; Azure KEK JSON; Google import job JSON.", valueName: "file"),
            completion: .file()) var params: String?
    @Option(help: "Azure: the KEK's key identifier (https://VAULT.vault.azure.net/keys/NAME/VERSION), with --public-key.") var kid: String?
    @Option(help: "Google Cloud: the import job's resource name (projects/…/importJobs/J), with --public-key.") var importJob: String?
    @Option(help: ArgumentHelp("Google Cloud: the import job's method, with --public-key.", valueName: "method"),
            completion: .list(Values.gcpImportMethods)) var importMethod: String?
    @Option(help: ArgumentHelp("Wrapping public key file (DER, base64 or PEM).", valueName: "file"), completion: .file()) var publicKey: String?
    @Option(help: ArgumentHelp("Import token file (raw or base64).", valueName: "file"), completion: .file()) var importToken: String?
    @Option(help: ArgumentHelp("How --import-token is encoded: raw or base64. Without it, a file with any byte that is no base64 character is raw, base64 text ending in a newline is decoded, and anything else is refused as ambiguous.", valueName: "encoding"))
    var importTokenEncoding: String?
    @Option(help: ArgumentHelp("\(Values.wrappingAlgorithms.joined(separator: ", ")) (as given to get-parameters-for-import).",
                               valueName: "algorithm"), completion: .algorithms)
    var wrappingAlgorithm: String?
    @Option(help: "KMS key id or ARN, when the files do not carry it.") var kmsKeyId: String?
    @Option(help: ArgumentHelp("When the import parameters expire (ISO 8601), for files that do not say (--public-key and --import-token); not the key material's expiry, which is aws kms import-key-material --valid-to.",
                               valueName: "time"))
    var parametersValidTo: String?
    @Option(name: .customLong("valid-to"), help: .hidden) var deprecatedValidTo: String?
    @Option(help: ArgumentHelp("Directory for the outputs (created if missing).", valueName: "dir"), completion: .directory) var out: String?
    @Flag(help: "Replace outputs already in --out.") var force = false
    @Option(help: ArgumentHelp("Many wraps in one request: a JSON array (or JSON Lines) of {key, params | publicKey+importToken, wrappingAlgorithm, kmsKeyId, out}; paths relative to FILE.", valueName: "file"),
            completion: .file())
    var batch: String?

    /// The parameters' expiry as given, by its name or the deprecated one.
    var givenParametersValidTo: String? { parametersValidTo ?? deprecatedValidTo }

    func validate() throws {
        if parametersValidTo != nil && deprecatedValidTo != nil {
            throw ValidationError("give --parameters-valid-to only (--valid-to is its deprecated name)")
        }
        if batch != nil {
            if key != nil || out != nil || params != nil || publicKey != nil || importToken != nil {
                throw ValidationError("--batch takes everything from its file; leave out --key, --out, --params, --public-key and --import-token")
            }
            return
        }
        if key == nil { throw ValidationError("give --key LABEL|pkcs11:URI") }
        if out == nil { throw ValidationError("give --out DIR") }
        if importTokenEncoding != nil && importToken == nil {
            throw ValidationError("--import-token-encoding goes with --import-token")
        }
        if let e = importTokenEncoding, !["raw", "base64"].contains(e.lowercased()) {
            throw ValidationError("--import-token-encoding is raw or base64")
        }
        switch provider {
        case .aws:
            if kid != nil || importJob != nil || importMethod != nil { throw ValidationError("--kid, --import-job and --import-method are for --for azure or --for gcp") }
            if params != nil && (publicKey != nil || importToken != nil) {
                throw ValidationError("give --params, or --public-key with --import-token, not both")
            }
            if params == nil && (publicKey == nil || importToken == nil) {
                throw ValidationError("give --params FILE (JSON or ZIP), or both --public-key and --import-token")
            }
        case .azure:
            if importToken != nil || kmsKeyId != nil || importJob != nil || importMethod != nil || wrappingAlgorithm != nil {
                throw ValidationError("for Azure give --params KEK.json, or --public-key KEK.pem with --kid")
            }
            if (params == nil) == (publicKey == nil) || (publicKey != nil) != (kid != nil) {
                throw ValidationError("for Azure give --params KEK.json (az keyvault key show), or --public-key KEK.pem with --kid")
            }
        case .gcp:
            if importToken != nil || kmsKeyId != nil || kid != nil || wrappingAlgorithm != nil {
                throw ValidationError("for Google Cloud give --params JOB.json, or --public-key JOB.pem with --import-job and --import-method")
            }
            if (params == nil) == (publicKey == nil) || (publicKey != nil) != (importJob != nil && importMethod != nil) {
                throw ValidationError("for Google Cloud give --params JOB.json (gcloud kms import-jobs describe --format=json), or --public-key JOB.pem with --import-job and --import-method")
            }
        }
    }

    func run() {
        if deprecatedValidTo != nil {
            warn("wrap --valid-to is deprecated and means the import parameters' expiry: use --parameters-valid-to (the key material's expiry is `aws kms import-key-material --valid-to`)")
        }
        if let batch { return BatchWrap(options: options, file: batch, force: force, defaultAlgorithm: wrappingAlgorithm).run() }
        let key = key!, out = out!
        byokctl.run(options) {
            try Values.checkAlgorithm(wrappingAlgorithm)
            // Before byokd is asked: a wrap must never be audited as done while its outputs cannot
            // be written. Nothing is created until the wrap succeeded.
            try Outputs.check(directory: out, force: force, provider: provider)
            try wrap(key: key, out: out)
        }
    }

    private func wrap(key: String, out: String) throws {
        var input = ParametersInput(kmsKeyId: kmsKeyId, validTo: givenParametersValidTo)
        if provider != .aws { input.provider = provider }
        if let params {
            let d = try Outputs.read(params, what: "parameters file").base64EncodedString()
            switch provider {
            case .aws:
                if Data(base64Encoded: d)!.starts(with: [0x50, 0x4B, 0x03, 0x04]) { input.zip = d } else { input.awsJSON = d }
            case .azure: input.azureKey = d
            case .gcp: input.gcpImportJob = d
            }
        } else if let publicKey {
            input.publicKey = try Outputs.read(publicKey, what: "wrapping public key file").base64EncodedString()
            input.importToken = try importToken.map { try Outputs.read($0, what: "import token file").base64EncodedString() }
            input.kid = kid
            input.importJob = importJob
            input.importMethod = importMethod
            input.importTokenEncoding = importTokenEncoding
        }
        let r = try options.client().call("POST", "/v1/wrap", WrapRequest(key: key, parameters: input, wrappingAlgorithm: wrappingAlgorithm),
                                          as: WrapResponse.self, onPending: announcePending)
        guard let blob = Data(base64Encoded: r.encryptedKeyMaterial), let token = Data(base64Encoded: r.importToken) else {
            throw ByokError(.internal, "byokd's answer carried damaged base64")
        }
        let m = r.manifest
        guard (m.provider ?? .aws) == provider else { throw ByokError(.internal, "byokd wrapped for \(m.provider?.rawValue ?? "aws"), not \(provider.rawValue)") }
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try Outputs.create(directory: out)
        // All of a wrap's files in one call: each fsync'd and renamed, the directory synced once.
        let blobs: [(name: String, data: Data)] = switch provider {
        case .aws: [(Outputs.encryptedKeyMaterial, blob), (Outputs.importToken, token)]
        case .azure:
            [(Outputs.azureBYOK, AzureBYOK.file(kid: m.azureKid ?? "", ciphertext: [UInt8](blob),
                                                generator: "byokd \(ByokVersion.current); \(m.token.model) token \"\(m.token.label)\" (serial \(m.token.serial))"))]
        case .gcp: [(Outputs.gcpWrappedKey, blob)]
        }
        try Outputs.writeAtomically(blobs + [(Outputs.manifest, try enc.encode(m) + Data("\n".utf8))], directory: out)
        let files = Outputs.files(for: provider)
        let command = NextCommand.command(for: m, directory: out)
        noteIgnoredExpiry(m)
        if options.json {
            struct Result: Encodable { let manifest: Manifest; let files: [String]; let nextCommand: String; let awsCommand: String? }
            options.printJSON(Result(manifest: m, files: files.map { out + "/" + $0 }, nextCommand: command, awsCommand: provider == .aws ? command : nil))
            return
        }
        print("wrapped \(m.key.spec) key \"\(Display.sanitized(m.key.label))\" (id \(m.key.id)\(m.key.kcv.map { ", KCV \($0)" } ?? "")) on token \"\(m.token.label)\"")
        if let none = m.key.noFingerprint { print("  \(none)") }
        print("  with \(m.wrappingAlgorithm) under the \(m.wrappingKeySpec) wrapping key \(m.wrappingPublicKeySha256.prefix(16))…")
        if let v = m.parametersValidTo { print("  import parameters valid until \(v)") }
        print("wrote \(files.map { Outputs.absolute(out) + "/" + $0 }.joined(separator: ", "))")
        print("")
        switch provider {
        case .aws: print("Next, upload the key material to AWS KMS:")
        case .azure: print("Next, import the key into Azure Key Vault (choose the key's --name there):")
        case .gcp: print("Next, import the key version into Cloud KMS (into a key created with --skip-initial-version-creation and this purpose; for RSA keys pick the --algorithm you need):")
        }
        print("")
        print(command)
        if provider == .aws && m.kmsKeyId == nil { print("\n(replace <KMS_KEY_ID> with the KeyId you requested the parameters for)") }
    }

    /// --parameters-valid-to applies only when the files carry no expiry; say so when they did.
    private func noteIgnoredExpiry(_ m: Manifest) {
        guard let given = givenParametersValidTo, let used = m.parametersValidTo,
              Timestamp.parse(given) != Timestamp.parse(used) else { return }
        warn("--parameters-valid-to \(Display.sanitized(given)) was not used: the parameters say they expire at \(used)")
    }
}
