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
/// plays AWS, a throwaway AES key made on the token is wrapped, the blob is unwrapped in software
/// with exactly the algorithm's OAEP and MGF1 hashes, and the key check values must agree.
/// A token that accepts the parameters but computes something else (SoftHSM 2.7.0's
/// CKM_RSA_AES_KEY_WRAP uses SHA-1 whatever it is told) fails here. No customer key is used.
public struct SelfTest {
    public let session: Session
    public let token: TokenInfo

    public init(session: Session, token: TokenInfo) {
        self.session = session
        self.token = token
    }

    public func run(algorithms: [WrappingAlgorithm] = WrappingAlgorithm.usable) throws -> [AlgorithmStatus] {
        let mechanisms = Set(try session.slot.mechanisms())
        let aws = try SoftwareRSAKeyPair(bits: 2048)
        let wrapper = OnTokenWrap(session: session, token: token)
        let pub = try wrapper.createWrappingKey(aws.publicKey)
        defer { try? session.destroyObject(pub) }
        return algorithms.map { algorithm in
            guard mechanisms.contains(.rsaPkcsOaep) else {
                return AlgorithmStatus(algorithm: algorithm, state: .unsupported, route: nil, reason: "the token has no CKM_RSA_PKCS_OAEP")
            }
            if !algorithm.isHybrid {
                return attempt(algorithm, route: .oaep, aws: aws, wrappingKey: pub)
            }
            var tried: [AlgorithmStatus] = []
            if mechanisms.contains(.rsaAesKeyWrap) {
                let native = attempt(algorithm, route: .nativeRsaAes, aws: aws, wrappingKey: pub)
                if native.state == .passed { return native }
                tried.append(native)
            }
            for (mechanism, route) in [(MechanismType.aesKeyWrapKwp, WrapRoute.stepsKWP), (.aesKeyWrapPad, .steps)]
            where mechanisms.contains(mechanism) && mechanisms.contains(.aesKeyGen) {
                let steps = attempt(algorithm, route: route, aws: aws, wrappingKey: pub)
                if steps.state == .passed { return steps }
                tried.append(steps)
            }
            if tried.isEmpty {
                return AlgorithmStatus(algorithm: algorithm, state: .unsupported, route: nil,
                                       reason: "the token has neither CKM_RSA_AES_KEY_WRAP nor CKM_AES_KEY_WRAP_KWP/_PAD")
            }
            return AlgorithmStatus(algorithm: algorithm, state: tried.contains { $0.state == .failed } ? .failed : .unsupported,
                                   route: nil, reason: tried.compactMap(\.reason).joined(separator: "; "))
        }
    }

    func attempt(_ algorithm: WrappingAlgorithm, route: WrapRoute, aws: SoftwareRSAKeyPair, wrappingKey: ObjectHandle) -> AlgorithmStatus {
        let hash = algorithm.hash!
        func status(_ s: AlgorithmStatus.State, _ why: String?) -> AlgorithmStatus {
            AlgorithmStatus(algorithm: algorithm, state: s, route: s == .passed ? route : nil, reason: why.map { "\(route.description): \($0)" })
        }
        let target: ObjectHandle
        do {
            target = try session.generateKey(.aesKeyGen, [.class(.secretKey), .keyType(.aes), .valueLen(32), .token(false), .private(true),
                                                          .sensitive(true), .extractable(true), .encrypt(true), .label("byokd-selftest")])
        } catch {
            return status(.unsupported, "cannot make a throwaway AES key (\(error))")
        }
        defer { try? session.destroyObject(target) }
        let blob: [UInt8]
        do {
            blob = try OnTokenWrap(session: session, token: token).wrap(key: target, with: algorithm, route: route, wrappingKey: wrappingKey)
        } catch {
            return status(.unsupported, "the token refused it (\(error))")
        }
        let kcvToken: [UInt8]
        do {
            kcvToken = Array(try session.encrypt(.aesEcb, key: target, data: [UInt8](repeating: 0, count: 16)).prefix(3))
        } catch {
            return status(.failed, "cannot compute the check value on the token (\(error))")
        }
        var material: [UInt8]?
        let k = aws.publicKey.bits / 8
        guard let first = aws.decryptOAEP(Array(blob.prefix(route == .oaep ? blob.count : k)), hash: hash, mgf: hash) else {
            return status(.failed, "the blob does not decrypt with \(algorithm.rawValue)'s OAEP and MGF1 hashes (\(hash.rawValue)); the token wraps with something else")
        }
        if route == .oaep {
            material = first
        } else {
            material = SoftwareCrypto.aesUnwrapPad(kek: first, wrapped: Array(blob.dropFirst(k)))
            if material == nil {
                return status(.failed, "the AES part is not an RFC 5649 key wrap with padding (AWS would reject it)")
            }
        }
        guard let key = material else { return status(.failed, "no key material") }
        defer { for i in material!.indices { material![i] = 0 } }
        guard let kcvSoft = SoftwareCrypto.aesECB(key: key, data: [UInt8](repeating: 0, count: 16)).map({ Array($0.prefix(3)) }),
              kcvSoft == kcvToken else {
            return status(.failed, "the unwrapped key's check value differs from the token's")
        }
        return status(.passed, nil)
    }
}
