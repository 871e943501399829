import Foundation
import PKCS11
import TestSupport
import XCTest

/// What the mechanism self-test decided, read from byokd (`status --json`), and what the token
/// says when the test asks it directly: tests assert byokd's behaviour against these, never
/// against one SoftHSM version's abilities written down.
enum Verdicts {
    /// Algorithm name → "passed", "failed" or "unsupported", as byokd reports them.
    static func of(_ daemon: DaemonFixture) throws -> [String: String] {
        let status = try XCTUnwrap(try daemon.ctl(["status", "--json"]).json, "status --json")
        let list = try XCTUnwrap(status["algorithms"] as? [[String: Any]], "status lists the self-test's algorithms")
        return Dictionary(uniqueKeysWithValues: list.map { ($0["name"] as? String ?? "?", $0["state"] as? String ?? "?") })
    }

    static func passed(_ daemon: DaemonFixture) throws -> Set<String> {
        Set(try of(daemon).filter { $0.value == "passed" }.keys)
    }

    /// The self-test's reason for an algorithm that did not pass.
    static func reason(_ daemon: DaemonFixture, _ algorithm: String) throws -> String? {
        let list = try daemon.ctl(["status", "--json"]).json?["algorithms"] as? [[String: Any]]
        return list?.first { $0["name"] as? String == algorithm }?["reason"] as? String
    }

    /// The algorithms the token can do, found without byokd: for each OAEP hash the test wraps a
    /// fresh AES key under an OpenSSL RSA key with C_WrapKey and has the openssl command unwrap it
    /// with that hash; RSA_AES_KEY_WRAP_* also needs the construction to be byte-exact for key
    /// material whose length is not a multiple of 8 (a private key's PKCS#8 rarely is): the test
    /// wraps a 20-byte secret with the token's AES key wrap with padding under an ephemeral AES key,
    /// that key under the OpenSSL RSA key, unwraps both with openssl and wants exactly 20 bytes.
    static func expected(_ token: LoadedToken) throws -> Set<String> {
        let session = try token.openSession()
        let aws = try AWSSide.keyPair(bits: 2048)
        let (n, e) = try AWSSide.rsaComponents(aws.publicDER)
        let pub = try session.createObject([.class(.publicKey), .keyType(.rsa), .token(false), .wrap(true), .encrypt(true),
                                            .modulus(n), .publicExponent(e)])
        defer { try? session.destroyObject(pub) }
        func oaepWorks(_ hash: HashAlgorithm, _ name: String) throws -> Bool {
            let key = try session.generateKey(.aesKeyGen, [.class(.secretKey), .keyType(.aes), .valueLen(32), .token(false),
                                                           .sensitive(true), .extractable(true), .encrypt(true)])
            defer { try? session.destroyObject(key) }
            guard let blob = try? session.wrapKey(.rsaPkcsOaep(hash: hash, mgf: hash), wrappingKey: pub, key: key),
                  let unwrapped = try? AWSSide.decryptOAEP(Data(blob), with: aws, hash: name) else { return false }
            let kcv = try session.encrypt(.aesEcb, key: key, data: [UInt8](repeating: 0, count: 16)).prefix(3)
            return try AWSSide.aesKCV(unwrapped) == Data(kcv).hex.uppercased()
        }
        let mechanisms = Set(try token.slot.mechanisms())
        func wraps(_ m: MechanismType) -> Bool { mechanisms.contains(m) && ((try? token.slot.mechanismInfo(m).canWrap) ?? false) }
        func stepsExact(_ hash: HashAlgorithm, _ name: String) throws -> Bool {
            guard mechanisms.contains(.aesKeyGen), wraps(.aesKeyWrapKwp) || wraps(.aesKeyWrapPad) else { return false }
            let ephemeral = try session.generateKey(.aesKeyGen, [.class(.secretKey), .keyType(.aes), .valueLen(32), .token(false),
                                                                 .sensitive(true), .extractable(true), .wrap(true)])
            defer { try? session.destroyObject(ephemeral) }
            let secret = try session.generateKey(.genericSecretKeyGen, [.class(.secretKey), .keyType(.genericSecret), .valueLen(20), .token(false),
                                                                        .sensitive(true), .extractable(true), .sign(true)])
            defer { try? session.destroyObject(secret) }
            let inner: Mechanism = wraps(.aesKeyWrapKwp) ? .aesKeyWrapKwp : .aesKeyWrapPad
            guard let wrappedSecret = try? session.wrapKey(inner, wrappingKey: ephemeral, key: secret),
                  let wrappedEphemeral = try? session.wrapKey(.rsaPkcsOaep(hash: hash, mgf: hash), wrappingKey: pub, key: ephemeral),
                  let material = try? AWSSide.unwrapRsaAes(Data(wrappedEphemeral + wrappedSecret), with: aws, hash: name) else { return false }
            return material.count == 20
        }
        var can: Set<String> = []
        for (hash, name, suffix) in [(HashAlgorithm.sha1, "sha1", "SHA_1"), (.sha256, "sha256", "SHA_256")] {
            guard try oaepWorks(hash, name) else { continue }
            can.insert("RSAES_OAEP_\(suffix)")
            if try wraps(.rsaAesKeyWrap) || stepsExact(hash, name) { can.insert("RSA_AES_KEY_WRAP_\(suffix)") }
        }
        return can
    }

    /// `expected(token)` for the SoftHSM token a daemon fixture made.
    static func expected(softHSM token: SoftHSM.Token) throws -> Set<String> {
        try expected(try LoadedToken(module: SoftHSM.module, softHSMConf: token.conf, token: token.label, pinFile: token.pinFile))
    }

    /// `expected(token)` for an NSS database a daemon fixture made.
    static func expected(nss db: NSSSoftokn.Database) throws -> Set<String> {
        try expected(try LoadedToken(module: NSSSoftokn.module, initArgs: db.initArgs, token: NSSSoftokn.tokenLabel, pinFile: db.passwordFile))
    }
}
