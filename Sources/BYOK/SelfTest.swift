import ByokAPI
import Foundation
import PKCS11

/// What the mechanism self-test found for one wrapping algorithm.
public struct AlgorithmStatus: Sendable {
    public enum State: String, Sendable { case passed, failed, unsupported }
    public let algorithm: WrappingAlgorithm
    public let state: State
    public let route: WrapRoute?
    public let reason: String?
}

/// The mechanism self-test: for each wrapping algorithm, a throwaway RSA key pair made in software
/// plays AWS, a throwaway key on the token is wrapped with each route the token offers, the blob is
/// unwrapped in software with exactly the algorithm's OAEP and MGF1 hashes, and the result must be
/// exactly what AWS expects:
/// - RSAES_OAEP_*: a throwaway AES-256 key made on the token; the unwrapped key is exactly 32
///   bytes and its check value equals the one the token computes.
/// - RSA_AES_KEY_WRAP_*: throwaway RSA-2048 and EC P-256 private keys made in software (PKCS#8
///   lengths not a multiple of 8) and unwrapped onto the token; the unwrapped material is exactly
///   one DER PKCS#8 with nothing after it, holding the same key. A token that pads the key before
///   the RFC 5649 wrap (SoftHSM 2.6.1's CKM_AES_KEY_WRAP_PAD) fails here.
/// A token that accepts the parameters but computes something else (SoftHSM 2.7.0's
/// CKM_RSA_AES_KEY_WRAP uses SHA-1 whatever it is told) fails too. Before any attempt, the module's
/// function list and each mechanism's flags (CKF_WRAP, CKF_GENERATE, ...) are checked, and a
/// verdict names what is missing. No customer key is used, and no key's CKA_VALUE is read.
public struct SelfTest {
    public let session: Session
    public let token: TokenInfo

    public init(session: Session, token: TokenInfo) {
        self.session = session
        self.token = token
    }

    public func run(algorithms: [WrappingAlgorithm] = WrappingAlgorithm.usable) throws -> [AlgorithmStatus] {
        let probe = try Capabilities(session: session)
        if let missing = probe.missingFunctions([.wrapKey, .createObject]) {
            return algorithms.map { AlgorithmStatus(algorithm: $0, state: .unsupported, route: nil, reason: "\(missing), so it cannot wrap keys at all") }
        }
        let aws = try SoftwareRSAKeyPair(bits: 2048)
        let wrapper = OnTokenWrap(session: session, token: token)
        let pub = try wrapper.createWrappingKey(aws.publicKey)
        defer { try? session.destroyObject(pub) }
        var placed: Result<ThrowawayPrivateKeys, ByokSelfTestError>?
        defer { if case .success(let keys)? = placed { keys.destroy() } }
        return algorithms.map { algorithm in
            if let problem = probe.mechanismProblem(.rsaPkcsOaep, [.wrap]) {
                return AlgorithmStatus(algorithm: algorithm, state: .unsupported, route: nil, reason: problem)
            }
            if !algorithm.isHybrid {
                if let problem = probe.missingFunctions([.generateKey, .encryptInit, .encrypt]) ?? probe.mechanismProblem(.aesKeyGen, [.generate])
                    ?? probe.mechanismProblem(.aesEcb, [.encrypt]) {
                    return AlgorithmStatus(algorithm: algorithm, state: .unsupported, route: nil,
                                           reason: "\(WrapRoute.oaep.description): cannot make and check a throwaway AES key: \(problem)")
                }
                return attemptSecret(algorithm, aws: aws, wrappingKey: pub)
            }
            var tried: [AlgorithmStatus] = []
            var candidates: [(WrapRoute, String?)] = []
            if probe.lists(.rsaAesKeyWrap) {
                candidates.append((.nativeRsaAes, probe.mechanismProblem(.rsaAesKeyWrap, [.wrap])))
            }
            for (mechanism, route) in [(MechanismType.aesKeyWrapKwp, WrapRoute.stepsKWP), (.aesKeyWrapPad, .steps)] where probe.lists(mechanism) {
                candidates.append((route, probe.missingFunctions([.generateKey]) ?? probe.mechanismProblem(mechanism, [.wrap])
                                   ?? probe.mechanismProblem(.aesKeyGen, [.generate])))
            }
            if candidates.isEmpty {
                return AlgorithmStatus(algorithm: algorithm, state: .unsupported, route: nil,
                                       reason: "the token lists neither CKM_RSA_AES_KEY_WRAP nor CKM_AES_KEY_WRAP_KWP/_PAD")
            }
            for (route, problem) in candidates {
                if let problem {
                    tried.append(AlgorithmStatus(algorithm: algorithm, state: .unsupported, route: nil, reason: "\(route.description): \(problem)"))
                    continue
                }
                if placed == nil { placed = Result { try ThrowawayPrivateKeys.place(session: session, probe: probe) }.mapError { $0 as? ByokSelfTestError ?? ByokSelfTestError("\($0)") } }
                let keys: ThrowawayPrivateKeys
                switch placed! {
                case .success(let k): keys = k
                case .failure(let e):
                    tried.append(AlgorithmStatus(algorithm: algorithm, state: .unsupported, route: nil,
                                                 reason: "\(route.description): cannot place a throwaway private key on the token to test the route with (\(e))"))
                    continue
                }
                let attempt = attemptPrivate(algorithm, route: route, keys: keys, aws: aws, wrappingKey: pub)
                if attempt.state == .passed { return attempt }
                tried.append(attempt)
            }
            return AlgorithmStatus(algorithm: algorithm, state: tried.contains { $0.state == .failed } ? .failed : .unsupported,
                                   route: nil, reason: tried.compactMap(\.reason).joined(separator: "; "))
        }
    }

    private func status(_ algorithm: WrappingAlgorithm, _ route: WrapRoute, _ s: AlgorithmStatus.State, _ why: String?) -> AlgorithmStatus {
        AlgorithmStatus(algorithm: algorithm, state: s, route: s == .passed ? route : nil, reason: why.map { "\(route.description): \($0)" })
    }

    /// RSAES_OAEP_*: a throwaway AES-256 key made on the token, wrapped, unwrapped in software:
    /// exactly 32 bytes, with the token's check value.
    func attemptSecret(_ algorithm: WrappingAlgorithm, aws: SoftwareRSAKeyPair, wrappingKey: ObjectHandle) -> AlgorithmStatus {
        let hash = algorithm.hash!
        let target: ObjectHandle
        do {
            target = try session.generateKey(.aesKeyGen, [.class(.secretKey), .keyType(.aes), .valueLen(32), .token(false), .private(true),
                                                          .sensitive(true), .extractable(true), .encrypt(true), .label("byokd-selftest")])
        } catch {
            return status(algorithm, .oaep, .unsupported, "cannot make a throwaway AES key (\(error))")
        }
        defer { try? session.destroyObject(target) }
        let blob: [UInt8]
        do {
            blob = try OnTokenWrap(session: session, token: token).wrap(key: target, with: algorithm, route: .oaep, wrappingKey: wrappingKey)
        } catch {
            return status(algorithm, .oaep, .unsupported, "the token refused it (\(error))")
        }
        let kcvToken: [UInt8]
        do {
            kcvToken = Array(try session.encrypt(.aesEcb, key: target, data: [UInt8](repeating: 0, count: 16)).prefix(3))
        } catch {
            return status(algorithm, .oaep, .failed, "cannot compute the check value on the token (\(error))")
        }
        guard var key = aws.decryptOAEP(blob, hash: hash, mgf: hash) else {
            return status(algorithm, .oaep, .failed, "the blob does not decrypt with \(algorithm.rawValue)'s OAEP and MGF1 hashes (\(hash.rawValue)); the token wraps with something else")
        }
        defer { for i in key.indices { key[i] = 0 } }
        guard key.count == 32 else {
            return status(algorithm, .oaep, .failed, "the unwrapped AES-256 key is \(key.count) bytes, not 32 (AWS would reject it)")
        }
        guard let kcvSoft = SoftwareCrypto.aesECB(key: key, data: [UInt8](repeating: 0, count: 16)).map({ Array($0.prefix(3)) }),
              kcvSoft == kcvToken else {
            return status(algorithm, .oaep, .failed, "the unwrapped key's check value differs from the token's")
        }
        return status(algorithm, .oaep, .passed, nil)
    }

    /// RSA_AES_KEY_WRAP_*: each throwaway private key wrapped through `route`, unwrapped in
    /// software (OAEP, then RFC 5649), and checked byte-exact against its known PKCS#8.
    func attemptPrivate(_ algorithm: WrappingAlgorithm, route: WrapRoute, keys: ThrowawayPrivateKeys,
                        aws: SoftwareRSAKeyPair, wrappingKey: ObjectHandle) -> AlgorithmStatus {
        let hash = algorithm.hash!
        let k = aws.publicKey.bits / 8
        for (handle, known) in keys.all {
            let blob: [UInt8]
            do {
                blob = try OnTokenWrap(session: session, token: token).wrap(key: handle, with: algorithm, route: route, wrappingKey: wrappingKey)
            } catch {
                return status(algorithm, route, .unsupported, "the token refused to wrap the throwaway \(known.kind) private key (\(error))")
            }
            guard blob.count > k, var kek = aws.decryptOAEP(Array(blob.prefix(k)), hash: hash, mgf: hash) else {
                return status(algorithm, route, .failed, "the blob does not decrypt with \(algorithm.rawValue)'s OAEP and MGF1 hashes (\(hash.rawValue)); the token wraps with something else")
            }
            defer { for i in kek.indices { kek[i] = 0 } }
            guard kek.count == 32 else {
                return status(algorithm, route, .failed, "the ephemeral AES key is \(kek.count) bytes, not 32")
            }
            guard var material = SoftwareCrypto.aesUnwrapPad(kek: kek, wrapped: Array(blob.dropFirst(k))) else {
                return status(algorithm, route, .failed, "the AES part is not an RFC 5649 key wrap with padding (AWS would reject it)")
            }
            defer { for i in material.indices { material[i] = 0 } }
            if let why = known.mismatch(material) {
                return status(algorithm, route, .failed, "\(why); AWS would reject it")
            }
        }
        return status(algorithm, route, .passed, nil)
    }
}

/// What the module and the token say they can do: the module's function list, the token's
/// mechanisms and each mechanism's flags, in words a verdict can carry.
struct Capabilities {
    let session: Session
    let mechanisms: Set<MechanismType>

    init(session: Session) throws {
        self.session = session
        mechanisms = Set(try session.slot.mechanisms())
    }

    func lists(_ m: MechanismType) -> Bool { mechanisms.contains(m) }

    /// "the module does not implement C_WrapKey (...)", or nil when it has every one.
    func missingFunctions(_ functions: [Function]) -> String? {
        let missing = functions.filter { !session.module.provides($0) }
        guard !missing.isEmpty else { return nil }
        return "the module does not implement \(missing.map(\.rawValue).joined(separator: ", ")) (its function list has no entry for \(missing.count == 1 ? "it" : "them"))"
    }

    /// Why `m` cannot be used for `operations` on this token (not listed, or listed without the
    /// flag), or nil.
    func mechanismProblem(_ m: MechanismType, _ operations: [MechanismInfo.Operation]) -> String? {
        guard mechanisms.contains(m) else { return "the token does not list \(m)" }
        let info: MechanismInfo
        do { info = try session.slot.mechanismInfo(m) } catch { return "the token does not describe \(m) (\(error))" }
        let lacking = operations.filter { !info.allows($0) }
        guard !lacking.isEmpty else { return nil }
        return "the token lists \(m) without \(lacking.map(\.rawValue).joined(separator: " and ")) (C_GetMechanismInfo), so it may not be used for that"
    }
}

/// Throwaway RSA and EC private keys, made in software and unwrapped onto the token as session
/// objects: RSA-OAEP of a random transport AES key under an RSA key pair generated on the token,
/// then RFC 5649 of each PKCS#8 under that AES key. Their PKCS#8 is known, so what a wrap of
/// them unwraps to can be compared byte for byte. The transport keys are destroyed at once.
struct ThrowawayPrivateKeys {
    let session: Session
    let all: [(ObjectHandle, SoftwarePrivateKey)]

    func destroy() { for (h, _) in all { try? session.destroyObject(h) } }

    static func place(session: Session, probe: Capabilities) throws -> ThrowawayPrivateKeys {
        if let missing = probe.missingFunctions([.generateKeyPair, .unwrapKey, .getAttributeValue]) { throw ByokSelfTestError(missing) }
        if let problem = probe.mechanismProblem(.rsaPkcsKeyPairGen, [.generateKeyPair]) ?? probe.mechanismProblem(.rsaPkcsOaep, [.unwrap]) {
            throw ByokSelfTestError(problem)
        }
        let unwrapMechanisms: [Mechanism] = [(MechanismType.aesKeyWrapKwp, Mechanism.aesKeyWrapKwp), (.aesKeyWrapPad, .aesKeyWrapPad)]
            .filter { probe.mechanismProblem($0.0, [.unwrap]) == nil }.map(\.1)
        guard !unwrapMechanisms.isEmpty else { throw ByokSelfTestError("the token can unwrap with neither CKM_AES_KEY_WRAP_KWP nor CKM_AES_KEY_WRAP_PAD (CKF_UNWRAP)") }

        let (transportPublic, transportPrivate) = try session.generateKeyPair(.rsaPkcsKeyPairGen,
            publicTemplate: [.class(.publicKey), .keyType(.rsa), .token(false), .private(false), .modulusBits(2048), .publicExponent([1, 0, 1]),
                             .encrypt(true), .wrap(true), .label("byokd-selftest-transport")],
            privateTemplate: [.class(.privateKey), .keyType(.rsa), .token(false), .private(true), .sensitive(true), .extractable(false),
                              .decrypt(true), .unwrap(true), .label("byokd-selftest-transport")])
        defer { try? session.destroyObject(transportPublic); try? session.destroyObject(transportPrivate) }
        let v = try session.attributes(transportPublic, [.modulus, .publicExponent])
        guard let n = v[.modulus], let e = v[.publicExponent] else { throw ByokSelfTestError("the token did not give the transport key's modulus") }
        let transportKey = try RSAPublicKey(spki: DER.rsaSPKI(modulus: Array(n.drop { $0 == 0 }), exponent: Array(e.drop { $0 == 0 })))

        guard var secret = SoftwareCrypto.randomBytes(32) else { throw ByokSelfTestError("OpenSSL gave no random bytes") }
        defer { for i in secret.indices { secret[i] = 0 } }
        var transport: ObjectHandle?
        var failures: [String] = []
        for hash in [HashAlgorithm.sha256, .sha1] {
            guard let wrapped = SoftwareCrypto.encryptOAEP(secret, to: transportKey, hash: hash) else { continue }
            do {
                transport = try session.unwrapKey(.rsaPkcsOaep(hash: hash, mgf: hash), unwrappingKey: transportPrivate, wrapped: wrapped,
                                                  [.class(.secretKey), .keyType(.aes), .token(false), .private(true), .sensitive(true),
                                                   .extractable(false), .unwrap(true), .label("byokd-selftest-transport")])
                break
            } catch { failures.append("OAEP \(hash.rawValue): \(error)") }
        }
        guard let transport else { throw ByokSelfTestError("the token would not unwrap a transport AES key (\(failures.joined(separator: "; ")))") }
        defer { try? session.destroyObject(transport) }

        var placed: [(ObjectHandle, SoftwarePrivateKey)] = []
        do {
            for (kind, keyType) in [(SoftwarePrivateKey.Kind.rsa(bits: 2048), KeyType.rsa), (.ec(curve: "P-256"), .ec)] {
                let known = try SoftwarePrivateKey(kind)
                guard let wrapped = SoftwareCrypto.aesWrapPad(kek: secret, plaintext: known.pkcs8) else { throw ByokSelfTestError("OpenSSL could not wrap the throwaway key") }
                var handle: ObjectHandle?
                var why: [String] = []
                let template: [Attribute] = [.class(.privateKey), .keyType(keyType), .token(false), .private(true), .sensitive(true),
                                             .extractable(true), .sign(true), .label("byokd-selftest")]
                // NSS softokn 3.87 unwraps an EC key only with its vendor CKA_NSS_DB (the public point)
                // in the template; other tokens would refuse that attribute, so it is the second try.
                let vendor: [[RawAttribute]] = [[]] + (known.publicPoint.map { [[RawAttribute.nssDB($0)]] } ?? [])
                attempts: for mechanism in unwrapMechanisms {
                    for raw in vendor {
                        do {
                            handle = try session.unwrapKey(mechanism, unwrappingKey: transport, wrapped: wrapped, template, raw: raw)
                            break attempts
                        } catch { why.append("\(mechanism)\(raw.isEmpty ? "" : " with CKA_NSS_DB"): \(error)") }
                    }
                }
                guard let handle else { throw ByokSelfTestError("the token would not unwrap the throwaway \(kind) private key (\(why.joined(separator: "; ")))") }
                placed.append((handle, known))
            }
        } catch {
            for (h, _) in placed { try? session.destroyObject(h) }
            throw error
        }
        return ThrowawayPrivateKeys(session: session, all: placed)
    }
}
