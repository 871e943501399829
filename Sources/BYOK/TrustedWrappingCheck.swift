import ByokAPI
import PKCS11

/// Whether the token itself enforces CKA_WRAP_WITH_TRUSTED: a throwaway key marked
/// wrap-with-trusted must fail to wrap under an ordinary (untrusted) key with
/// CKR_KEY_NOT_WRAPPABLE. With `trustedWrapping` on, byokd refuses a token that lets it through,
/// because then nothing but byokd's own code stands between a wrap request and the plaintext.
public struct TrustedWrappingCheck: Sendable {
    public let enforced: Bool
    /// What was found, for `status` and the refusal.
    public let finding: String

    public static func run(session: Session) throws -> TrustedWrappingCheck {
        let aws = try SoftwareRSAKeyPair(bits: 2048)
        let untrusted = try session.createObject([.class(.publicKey), .keyType(.rsa), .token(false), .private(false), .wrap(true),
                                                  .modulus(aws.publicKey.modulus), .publicExponent(aws.publicKey.publicExponent),
                                                  .label("byokd-selftest-untrusted")])
        defer { try? session.destroyObject(untrusted) }
        let target: ObjectHandle
        do {
            target = try session.generateKey(.aesKeyGen, [.class(.secretKey), .keyType(.aes), .valueLen(32), .token(false), .private(true),
                                                          .sensitive(true), .extractable(true), .wrapWithTrusted(true),
                                                          .label("byokd-selftest-wrap-with-trusted")])
        } catch let e as PKCS11Error {
            return TrustedWrappingCheck(enforced: false, finding: "the token cannot make a key with CKA_WRAP_WITH_TRUSTED (\(e))")
        }
        defer { try? session.destroyObject(target) }
        guard (try? session.attributes(target, [.wrapWithTrusted]).bool(.wrapWithTrusted)) == true else {
            return TrustedWrappingCheck(enforced: false, finding: "the token does not keep CKA_WRAP_WITH_TRUSTED on its keys")
        }
        do {
            _ = try session.wrapKey(.rsaPkcsOaep(hash: .sha1, mgf: .sha1), wrappingKey: untrusted, key: target)
            return TrustedWrappingCheck(enforced: false, finding: "the token wrapped a CKA_WRAP_WITH_TRUSTED key under an untrusted key")
        } catch let e as PKCS11Error where e.returnValue == .keyNotWrappable {
            return TrustedWrappingCheck(enforced: true, finding: "enforced by the token (a wrap-with-trusted key under an untrusted key: \(e.returnValue!))")
        } catch let e as PKCS11Error {
            return TrustedWrappingCheck(enforced: false, finding: "the token refused the test wrap for another reason (\(e)), so enforcement is unproven")
        }
    }
}
