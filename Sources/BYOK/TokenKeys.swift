import ByokAPI
import Foundation
import PKCS11

/// A key on the token that byokd can describe and wrap.
public struct TokenKey: Sendable {
    public let handle: ObjectHandle
    public let objectClass: ObjectClass
    public let keyType: KeyType
    public let label: String
    public let id: [UInt8]
    /// The AWS key spec it can be imported as, read from its attributes; nil if none fits.
    public let spec: KeySpec?
    public let sensitive: Bool?
    public let extractable: Bool?
    /// CKA_WRAP_WITH_TRUSTED: only a trusted key may wrap it (nil when the token does not say).
    public var wrapWithTrusted: Bool? { values.bool(.wrapWithTrusted) }
    let values: AttributeValues

    /// e.g. "secret/AES-256", "private/RSA-3072", "private/EC-P-384".
    public var typeDescription: String {
        let cls = objectClass == .secretKey ? "secret" : objectClass == .privateKey ? "private" : "public"
        switch keyType {
        case .aes: return "\(cls)/AES-\((values.ulong(.valueLen) ?? 0) * 8)"
        case .rsa: return "\(cls)/RSA-\(values.ulong(.modulusBits) ?? UInt(((values[.modulus]?.count ?? 0) * 8)))"
        case .ec:
            if let s = spec, case .ec(let curve, _) = s.kind { return "\(cls)/EC-\(curve)" }
            return "\(cls)/EC"
        case .genericSecret, .sha1Hmac, .sha224Hmac, .sha256Hmac, .sha384Hmac, .sha512Hmac:
            return "\(cls)/HMAC-\((values.ulong(.valueLen) ?? 0) * 8)"
        default: return "\(cls)/CKK_0x" + String(keyType.rawValue, radix: 16)
        }
    }
}

/// Keys on the token: find, list, describe (KCV, public key hash), generate. Works on one session.
public struct KeyStore {
    public let session: Session
    public let token: TokenInfo

    public init(session: Session, token: TokenInfo) {
        self.session = session
        self.token = token
    }

    static let described: [AttributeType] = [.class, .keyType, .label, .id, .sensitive, .extractable, .valueLen,
                                             .modulusBits, .modulus, .publicExponent, .ecParams, .encrypt, .sign, .wrapWithTrusted]

    public func load(_ handle: ObjectHandle) throws -> TokenKey {
        let v = try session.attributes(handle, Self.described)
        let cls = v.objectClass ?? .secretKey
        let kt = v.keyType ?? KeyType(rawValue: UInt.max)
        let bits = v.ulong(.modulusBits).map { Int($0) } ?? v[.modulus].map { $0.drop { $0 == 0 }.count * 8 }
        return TokenKey(handle: handle, objectClass: cls, keyType: kt, label: v.string(.label) ?? "", id: v[.id] ?? [],
                        spec: KeySpec.from(class: cls, keyType: kt, valueLength: v.ulong(.valueLen).map { Int($0) },
                                           modulusBits: bits, ecParams: v[.ecParams]),
                        sensitive: v.bool(.sensitive), extractable: v.bool(.extractable), values: v)
    }

    /// Secret and private keys on the token, whoever made them.
    public func keys() throws -> [TokenKey] {
        let handles = try session.findObjects([.class(.secretKey), .token(true)]) + session.findObjects([.class(.privateKey), .token(true)])
        return try handles.map(load).sorted { ($0.label, $0.id.hex) < ($1.label, $1.id.hex) }
    }

    /// A key by label or by `pkcs11:` URI (object= and/or id=; token attributes must name this token).
    public func find(_ reference: String) throws -> TokenKey { try load(handle(of: reference)) }

    /// The one secret or private key `reference` names: KEY_NOT_FOUND for none, KEY_AMBIGUOUS for
    /// several. Searched on the token every time it is asked.
    ///
    /// `known`: the secret or private key this reference named last time (a cache's). Then one
    /// search without a class comes first: if the only object with these attributes is that key,
    /// it is still the one key named (one search instead of one per class; a software token's
    /// search costs about a wrap's time). Any other answer gets the full search.
    public func handle(of reference: String, known: ObjectHandle? = nil) throws -> ObjectHandle {
        var template: [Attribute] = [.token(true)]
        if reference.hasPrefix("pkcs11:") {
            let uri: PKCS11URI
            do { uri = try PKCS11URI(reference) } catch { throw ByokError(.keyNotFound, "\(error)") }
            guard uri.matches(token) else {
                throw ByokError(.keyNotFound, "the URI \(reference) names another token; this daemon serves token \"\(token.label)\" (serial \(token.serial))")
            }
            if let l = uri.objectLabel { template.append(.label(l)) }
            if let id = uri.objectID { template.append(.id(id)) }
            guard template.count > 1 else { throw ByokError(.keyNotFound, "the URI \(reference) names no object (object= or id=)") }
        } else {
            guard !reference.isEmpty else { throw ByokError(.badRequest, "no key given") }
            template.append(.label(reference))
        }
        if let known, try session.findObjects(template) == [known] { return known }
        let hits = try session.findObjects(template + [.class(.secretKey)]) + session.findObjects(template + [.class(.privateKey)])
        guard !hits.isEmpty else {
            throw ByokError(.keyNotFound, "no secret or private key \(reference.hasPrefix("pkcs11:") ? "matches \(reference)" : "labelled \"\(reference)\"") on token \"\(token.label)\"; `byokctl keys list` shows the keys there")
        }
        guard hits.count == 1 else {
            throw ByokError(.keyAmbiguous, "\(hits.count) keys match \"\(reference)\" on token \"\(token.label)\"; name one with a pkcs11: URI including its id=")
        }
        return hits[0]
    }

    /// The key as `keys list` shows it, with its check value or public key hash computed on the token,
    /// or — when the token cannot compute either — `noFingerprint` saying why.
    public func info(_ key: TokenKey) -> KeyInfo {
        var failure: Error?
        let kcv: String?
        do { kcv = try checkValue(key) } catch { kcv = nil; failure = error }
        let publicKeySha256: String?
        do { publicKeySha256 = try publicKeyInfo(key).map { Digest.sha256($0).hex } } catch { publicKeySha256 = nil; failure = failure ?? error }
        let missing = kcv == nil && publicKeySha256 == nil ? noFingerprintReason(key, failure: failure) : nil
        return KeyInfo(label: key.label, id: key.id.hex, spec: key.spec?.rawValue, type: key.typeDescription,
                       kcv: kcv, publicKeySha256: publicKeySha256, sensitive: key.sensitive, extractable: key.extractable,
                       uri: uri(key), noFingerprint: missing)
    }

    /// The mechanism and flag the token needs to compute a key's fingerprint: CKM_AES_ECB to encrypt
    /// for an AES key's KCV, the hash's CKM_*_HMAC to sign for an HMAC key's; nil for private keys,
    /// whose fingerprint is the SHA-256 of their public key.
    public static func fingerprintMechanism(for spec: KeySpec) -> (MechanismType, MechanismInfo.Operation)? {
        switch spec.kind {
        case .aes: (.aesEcb, .encrypt)
        case .hmac(let hash, _): (hash.hmacMechanism, .sign)
        case .rsa, .ec: nil
        }
    }

    /// "no fingerprint: the token lacks CKM_SHA224_HMAC", or why else there is none.
    func noFingerprintReason(_ key: TokenKey, failure: Error?) -> String {
        if let spec = key.spec, let (mechanism, operation) = Self.fingerprintMechanism(for: spec) {
            let listed = (try? session.slot.mechanisms()).map { $0.contains(mechanism) }
            if listed == false { return "no fingerprint: the token lacks \(mechanism)" }
            if let info = try? session.slot.mechanismInfo(mechanism), !info.allows(operation) {
                return "no fingerprint: the token lists \(mechanism) without \(operation.rawValue)"
            }
            return "no fingerprint: the token could not compute the check value with \(mechanism)\(failure.map { " (\($0))" } ?? "")"
        }
        if key.objectClass == .privateKey {
            return "no fingerprint: the token gives no public key for this private key (no public key object with its CKA_ID)\(failure.map { " (\($0))" } ?? "")"
        }
        return "no fingerprint: byokd computes none for \(key.typeDescription)"
    }

    func uri(_ key: TokenKey) -> String {
        func pct(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%%%02x", $0) }.joined() }
        func esc(_ s: String) -> String {
            s.utf8.map { b -> String in
                let c = Character(UnicodeScalar(b))
                return (c.isLetter || c.isNumber || "-._~".contains(c)) && b < 128 ? String(c) : String(format: "%%%02X", b)
            }.joined()
        }
        let type = key.objectClass == .privateKey ? "private" : "secret-key"
        return "pkcs11:token=\(esc(token.label));serial=\(esc(token.serial));object=\(esc(key.label));id=\(pct(key.id));type=\(type)"
    }

    /// KCV, computed on the token: AES — first 3 bytes of AES-ECB(key, 16 zero bytes);
    /// HMAC — first 3 bytes of HMAC-<hash>(key, 16 zero bytes). Uppercase hex. Nil for private keys.
    public func checkValue(_ key: TokenKey) throws -> String? {
        guard let spec = key.spec else {
            if key.keyType == .aes { return try session.encrypt(.aesEcb, key: key.handle, data: [UInt8](repeating: 0, count: 16)).prefix(3).hex.uppercased() }
            return nil
        }
        switch spec.kind {
        case .aes:
            return try session.encrypt(.aesEcb, key: key.handle, data: [UInt8](repeating: 0, count: 16)).prefix(3).hex.uppercased()
        case .hmac(let hash, _):
            return try session.sign(.hmac(hash), key: key.handle, data: [UInt8](repeating: 0, count: 16)).prefix(3).hex.uppercased()
        default:
            return nil
        }
    }

    /// DER SubjectPublicKeyInfo of a private key's public half, from the public key object with the
    /// same CKA_ID, or from the private key's own public attributes (RSA).
    public func publicKeyInfo(_ key: TokenKey) throws -> [UInt8]? {
        guard key.objectClass == .privateKey else { return nil }
        let pubs = key.id.isEmpty ? [] : try session.findObjects([.class(.publicKey), .id(key.id)])
        if key.keyType == .rsa {
            var mod = key.values[.modulus], exp = key.values[.publicExponent]
            if (mod == nil || exp == nil), let p = pubs.first {
                let v = try session.attributes(p, [.modulus, .publicExponent])
                mod = v[.modulus]; exp = v[.publicExponent]
            }
            guard let mod, let exp else { return nil }
            return DER.rsaSPKI(modulus: mod, exponent: exp)
        }
        if key.keyType == .ec, let p = pubs.first {
            let v = try session.attributes(p, [.ecParams, .ecPoint])
            guard let params = v[.ecParams] ?? key.values[.ecParams], let point = v[.ecPoint] else { return nil }
            return DER.ecSPKI(params: params, ecPoint: point)
        }
        return nil
    }

    /// Generates byokd's own audit MAC key: an HMAC_256 key (CKK_GENERIC_SECRET, 32 bytes, CKA_SIGN)
    /// that is sensitive and never extractable, so no C_WrapKey can take it out and no one without
    /// the token can forge a MAC. `id` defaults to 8 random bytes.
    public func generateAuditMacKey(label: String, id: [UInt8]? = nil) throws -> TokenKey {
        guard !label.isEmpty, label.utf8.count <= 128 else { throw ByokError(.badRequest, "a key label must be 1 to 128 bytes") }
        let id = try id ?? session.generateRandom(8)
        let handle = try session.generateKey(.genericSecretKeyGen, [
            .class(.secretKey), .keyType(.genericSecret), .valueLen(32), .sign(true), .verify(true),
            .token(true), .private(true), .label(label), .id(id), .sensitive(true), .extractable(false),
        ])
        return try load(handle)
    }

    /// Generates a persistent key of `spec` labelled `label`: sensitive, extractable (C_WrapKey is the
    /// only way out), with a random CKA_ID. Private keys get their public key alongside. With
    /// `wrapWithTrusted`, the token lets only a key the Security Officer trusted wrap it.
    public func generate(label: String, spec: KeySpec, wrapWithTrusted: Bool = false) throws -> TokenKey {
        guard !label.isEmpty, label.utf8.count <= 128 else { throw ByokError(.keyLabelInvalid, "a key label must be 1 to 128 bytes") }
        guard !Display.hasUnsafe(label) else {
            throw ByokError(.keyLabelInvalid, "the key label \"\(Display.escaped(label))\" holds control or direction-changing characters, which could disguise it on an approver's screen or in a log; choose a plain label")
        }
        if try !session.findObjects([.label(label), .token(true)]).isEmpty {
            throw ByokError(.keyExists, "token \"\(token.label)\" already has an object labelled \"\(label)\"; choose another label")
        }
        let id = try session.generateRandom(8)
        let common: [Attribute] = [.token(true), .private(true), .label(label), .id(id), .sensitive(true), .extractable(true)]
            + (wrapWithTrusted ? [.wrapWithTrusted(true)] : [])
        let handle: ObjectHandle
        switch spec.kind {
        case .aes(let bytes):
            handle = try session.generateKey(.aesKeyGen, [.class(.secretKey), .keyType(.aes), .valueLen(bytes), .encrypt(true), .decrypt(true)] + common)
        case .hmac(_, let length):
            handle = try session.generateKey(.genericSecretKeyGen, [.class(.secretKey), .keyType(.genericSecret), .valueLen(length), .sign(true), .verify(true)] + common)
        case .rsa(let bits):
            (_, handle) = try session.generateKeyPair(.rsaPkcsKeyPairGen,
                publicTemplate: [.class(.publicKey), .keyType(.rsa), .token(true), .private(false), .label(label), .id(id), .modulusBits(bits), .publicExponent([1, 0, 1]), .verify(true)],
                privateTemplate: [.class(.privateKey), .keyType(.rsa), .sign(true)] + common)
        case .ec(_, let params):
            (_, handle) = try session.generateKeyPair(.ecKeyPairGen,
                publicTemplate: [.class(.publicKey), .keyType(.ec), .token(true), .private(false), .label(label), .id(id), .ecParams(params), .verify(true)],
                privateTemplate: [.class(.privateKey), .keyType(.ec), .sign(true)] + common)
        }
        return try load(handle)
    }
}
