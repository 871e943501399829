import ArgumentParser
import ByokAPI
import ByokClient
import Foundation

struct Wrap: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Wrap a token key on the token for `aws kms import-key-material`.",
        discussion: """
        Import parameters: --params with the JSON `aws kms get-parameters-for-import` prints or the console's \
        ImportParameters.zip; or --public-key and --import-token (each DER/raw, base64 or PEM). Writes \
        EncryptedKeyMaterial.bin, ImportToken.bin and manifest.json to --out, and prints the AWS CLI command to run next.
        """)
    @OptionGroup var options: GlobalOptions
    @Option(help: "The key: its label or a pkcs11: URI.") var key: String?
    @Option(help: "AWS CLI JSON or ImportParameters.zip.") var params: String?
    @Option(help: "Wrapping public key file (DER, base64 or PEM).") var publicKey: String?
    @Option(help: "Import token file (raw or base64).") var importToken: String?
    @Option(help: ArgumentHelp("How --import-token is encoded: raw or base64. Without it, a file with any byte that is no base64 character is raw, base64 text ending in a newline is decoded, and anything else is refused as ambiguous.", valueName: "encoding"))
    var importTokenEncoding: String?
    @Option(help: "RSAES_OAEP_SHA_256, RSAES_OAEP_SHA_1, RSA_AES_KEY_WRAP_SHA_256 or RSA_AES_KEY_WRAP_SHA_1 (as given to get-parameters-for-import).")
    var wrappingAlgorithm: String?
    @Option(help: "KMS key id or ARN, when the files do not carry it.") var kmsKeyId: String?
    @Option(help: "When the parameters expire (ISO 8601), when the files do not say.") var validTo: String?
    @Option(help: "Directory for EncryptedKeyMaterial.bin, ImportToken.bin and manifest.json.") var out: String?
    @Flag(help: "Replace outputs already in --out.") var force = false
    @Option(help: ArgumentHelp("Many wraps in one request: a JSON array (or JSON Lines) of {key, params | publicKey+importToken, wrappingAlgorithm, kmsKeyId, out}; paths relative to FILE.", valueName: "file"))
    var batch: String?

    func validate() throws {
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
        if params != nil && (publicKey != nil || importToken != nil) {
            throw ValidationError("give --params, or --public-key with --import-token, not both")
        }
        if params == nil && (publicKey == nil || importToken == nil) {
            throw ValidationError("give --params FILE (JSON or ZIP), or both --public-key and --import-token")
        }
    }

    func run() {
        if let batch { return BatchWrap(options: options, file: batch, force: force, defaultAlgorithm: wrappingAlgorithm).run() }
        let key = key!, out = out!
        byokctl.run(options) {
            try Outputs.check(directory: out, force: force)
            var input = ParametersInput(kmsKeyId: kmsKeyId, validTo: validTo)
            if let params {
                let d = try Outputs.read(params, what: "parameters file")
                if d.starts(with: [0x50, 0x4B, 0x03, 0x04]) { input.zip = d.base64EncodedString() } else { input.awsJSON = d.base64EncodedString() }
            } else if let publicKey, let importToken {
                input.publicKey = try Outputs.read(publicKey, what: "wrapping public key file").base64EncodedString()
                input.importToken = try Outputs.read(importToken, what: "import token file").base64EncodedString()
                input.importTokenEncoding = importTokenEncoding
            }
            let r = try options.client().call("POST", "/v1/wrap", WrapRequest(key: key, parameters: input, wrappingAlgorithm: wrappingAlgorithm),
                                              as: WrapResponse.self, onPending: announcePending)
            guard let blob = Data(base64Encoded: r.encryptedKeyMaterial), let token = Data(base64Encoded: r.importToken) else {
                throw ByokError(.internal, "byokd's answer carried damaged base64")
            }
            let enc = JSONEncoder()
            enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            try Outputs.create(directory: out)
            try Outputs.writeAtomically(blob, directory: out, name: Outputs.encryptedKeyMaterial)
            try Outputs.writeAtomically(token, directory: out, name: Outputs.importToken)
            try Outputs.writeAtomically(try enc.encode(r.manifest) + Data("\n".utf8), directory: out, name: Outputs.manifest)
            let command = Outputs.awsCommand(manifest: r.manifest, directory: out)
            if options.json {
                struct Result: Encodable { let manifest: Manifest; let files: [String]; let awsCommand: String }
                options.printJSON(Result(manifest: r.manifest, files: Outputs.all.map { out + "/" + $0 }, awsCommand: command))
                return
            }
            let m = r.manifest
            print("wrapped \(m.key.spec) key \"\(m.key.label)\" (id \(m.key.id)\(m.key.kcv.map { ", KCV \($0)" } ?? "")) on token \"\(m.token.label)\"")
            if let none = m.key.noFingerprint { print("  \(none)") }
            print("  with \(m.wrappingAlgorithm) under the \(m.wrappingKeySpec) wrapping key \(m.wrappingPublicKeySha256.prefix(16))…")
            if let v = m.parametersValidTo { print("  import parameters valid until \(v)") }
            print("wrote \(out)/\(Outputs.encryptedKeyMaterial), \(Outputs.importToken), \(Outputs.manifest)")
            print("")
            print("Next, upload the key material to AWS KMS:")
            print("")
            print(command)
            if m.kmsKeyId == nil { print("\n(replace <KMS_KEY_ID> with the KeyId you requested the parameters for)") }
        }
    }
}
