import ByokAPI
import Foundation

/// The command an operator runs next, for each cloud, shell-quoted, naming the files written.
public enum NextCommand {
    static func q(_ s: String) -> String {
        s.allSatisfy { $0.isLetter || $0.isNumber || "-_./:=@%+,".contains($0) } ? s : "'" + s.replacing("'", with: "'\\''") + "'"
    }

    static func absolute(_ directory: String) -> String { Outputs.absolute(directory) }

    public static func command(for manifest: Manifest, directory: String) -> String {
        switch manifest.provider ?? .aws {
        case .aws: Outputs.awsCommand(manifest: manifest, directory: directory)
        case .azure: azure(manifest, directory)
        case .gcp: gcp(manifest, directory)
        }
    }

    /// A name the cloud accepts for the new key, from the token label (letters, digits, dashes).
    static func cloudName(_ label: String) -> String {
        let n = String(label.map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "-" })
        return n.isEmpty ? "imported-key" : n
    }

    /// `az keyvault key import` for a vault (`https://VAULT.vault.azure.net/keys/…`) or a Managed HSM
    /// (`https://HSM.managedhsm.azure.net/keys/…`), with the key type the target needs.
    static func azure(_ m: Manifest, _ directory: String) -> String {
        let host = URL(string: m.azureKid ?? "")?.host ?? "<VAULT>.vault.azure.net"
        let name = String(host.prefix { $0 != "." })
        let where_ = host.firstRange(of: ".managedhsm.") != nil ? "--hsm-name \(q(name))" : "--vault-name \(q(name))"
        let type: String
        switch m.key.spec {
        case "RSA_2048", "RSA_3072", "RSA_4096": type = "--kty RSA-HSM"
        case "ECC_NIST_P256": type = "--kty EC-HSM --curve P-256"
        case "ECC_NIST_P384": type = "--kty EC-HSM --curve P-384"
        case "ECC_NIST_P521": type = "--kty EC-HSM --curve P-521"
        case "ECC_SECG_P256K1": type = "--kty EC-HSM --curve P-256K"
        default: type = "--kty oct-HSM"
        }
        return """
        az keyvault key import \(where_) --name \(q(cloudName(m.key.label))) \(type) \\
            --byok-file \(q(absolute(directory) + "/" + Outputs.azureBYOK))
        """
    }

    /// `gcloud kms keys versions import` into the import job's key ring, with the algorithm of the
    /// key version (the usual one for the key type; for RSA keys choose the padding you need).
    static func gcp(_ m: Manifest, _ directory: String) -> String {
        let parts = (m.gcpImportJob ?? "").split(separator: "/").map(String.init)
        func after(_ word: String) -> String { parts.firstIndex(of: word).flatMap { $0 + 1 < parts.count ? parts[$0 + 1] : nil } ?? "<\(word.uppercased())>" }
        let algorithm = [
            "SYMMETRIC_DEFAULT": "google-symmetric-encryption", "HMAC_224": "hmac-sha224", "HMAC_256": "hmac-sha256",
            "HMAC_384": "hmac-sha384", "HMAC_512": "hmac-sha512", "RSA_2048": "rsa-sign-pkcs1-2048-sha256",
            "RSA_3072": "rsa-sign-pkcs1-3072-sha256", "RSA_4096": "rsa-sign-pkcs1-4096-sha256", "ECC_NIST_P256": "ec-sign-p256-sha256",
            "ECC_NIST_P384": "ec-sign-p384-sha384", "ECC_SECG_P256K1": "ec-sign-secp256k1-sha256",
        ][m.key.spec] ?? "<ALGORITHM>"
        return """
        gcloud kms keys versions import --project \(q(after("projects"))) --location \(q(after("locations"))) \\
            --keyring \(q(after("keyRings"))) --key \(q(cloudName(m.key.label))) --import-job \(q(after("importJobs"))) \\
            --algorithm \(algorithm) --wrapped-key-file \(q(absolute(directory) + "/" + Outputs.gcpWrappedKey))
        """
    }
}
