import Foundation

/// Azure's Key Transfer Blob (a `.byok` file), from Microsoft's "Bring your own key specification":
/// JSON with `schema_version` "1.0.0", a `header` naming the KEK (`kid`), `alg` "dir" and `enc`
/// "CKM_RSA_AES_KEY_WRAP", the wrapped key as base64url `ciphertext`, and the `generator`.
public enum AzureBYOK {
    public static func file(kid: String, ciphertext: [UInt8], generator: String) -> Data {
        struct Header: Encodable { let kid: String; let alg = "dir"; let enc = "CKM_RSA_AES_KEY_WRAP" }
        struct File: Encodable {
            let schema_version = "1.0.0"
            let header: Header
            let ciphertext: String
            let generator: String
        }
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        let body = File(header: Header(kid: kid), ciphertext: base64URL(ciphertext), generator: generator)
        return ((try? enc.encode(body)) ?? Data()) + Data("\n".utf8)
    }

    /// RFC 4648 §5 base64url without padding.
    public static func base64URL(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacing("+", with: "-").replacing("/", with: "_")
            .replacing("=", with: "")
    }
}
