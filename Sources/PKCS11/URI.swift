import CPKCS11

/// An RFC 7512 `pkcs11:` URI, parsed by p11-kit (`p11_kit_uri_parse`).
public final class PKCS11URI: @unchecked Sendable, CustomStringConvertible {  // a p11-kit P11KitUri, only read after parsing
    private let uri: OpaquePointer
    public let description: String

    public struct ParseError: Error, CustomStringConvertible {
        public let uri: String
        public let reason: String
        public var description: String { "not a valid pkcs11: URI (\(reason)): \(uri)" }
    }

    public init(_ string: String) throws {
        guard let u = p11_kit_uri_new() else { throw ParseError(uri: string, reason: "out of memory") }
        let rv = p11_kit_uri_parse(string, P11KitUriType(P11_KIT_URI_FOR_ANY.rawValue), u)
        if rv != P11_KIT_URI_OK.rawValue {
            p11_kit_uri_free(u)
            let why = p11_kit_uri_message(rv).map { String(cString: $0) } ?? "code \(rv)"
            throw ParseError(uri: string, reason: why)
        }
        uri = u
        description = string
    }

    deinit { p11_kit_uri_free(uri) }

    /// Whether the token part of the URI (token=, serial=, model=, manufacturer=) matches.
    public func matches(_ token: TokenInfo) -> Bool {
        var raw = token.raw
        return p11_kit_uri_match_token_info(uri, &raw) == 1
    }

    /// The object label (`object=`), if the URI names one.
    public var objectLabel: String? { attribute(CKA_LABEL).map { String(decoding: $0, as: UTF8.self) } }
    /// The object id (`id=`), if the URI names one.
    public var objectID: [UInt8]? { attribute(CKA_ID) }

    private func attribute(_ type: CK_ATTRIBUTE_TYPE) -> [UInt8]? {
        guard let a = p11_kit_uri_get_attribute(uri, type) else { return nil }
        guard let v = a.pointee.pValue, a.pointee.ulValueLen != CK_ULONG(bitPattern: -1) else { return [] }
        return Array(UnsafeRawBufferPointer(start: v, count: Int(a.pointee.ulValueLen)))
    }
}

/// How the configuration names the token to use.
public enum TokenSelector: Sendable, CustomStringConvertible {
    /// A `pkcs11:` URI: its token attributes must match.
    case uri(PKCS11URI)
    /// A plain string: a token whose label, or else whose serial number, equals it.
    case labelOrSerial(String)
    /// The first slot with a token.
    case first

    public init(_ string: String?) throws {
        guard let s = string, !s.isEmpty else { self = .first; return }
        self = s.hasPrefix("pkcs11:") ? .uri(try PKCS11URI(s)) : .labelOrSerial(s)
    }

    public var description: String {
        switch self {
        case .uri(let u): u.description
        case .labelOrSerial(let s): "label or serial \"\(s)\""
        case .first: "the first token present"
        }
    }

    /// The token chosen, and why, in words for the log and `status`.
    public struct Selection: Sendable {
        public let slot: Slot
        public let token: TokenInfo
        public let reason: String
    }

    /// Picks the slot whose token matches.
    public func select(in module: Module) throws -> (Slot, TokenInfo) {
        let s = try choose(in: module)
        return (s.slot, s.token)
    }

    /// Picks the slot whose token matches, saying why. Without a selector, the first initialised
    /// token that is not write-protected (CKF_WRITE_PROTECTED: no keys can be made on it, as on
    /// NSS's "NSS Generic Crypto Services"); write-protected ones are named as skipped.
    public func choose(in module: Module) throws -> Selection {
        let candidates = try module.slots(tokenPresent: true).compactMap { slot -> (Slot, TokenInfo)? in
            guard let info = try? slot.tokenInfo() else { return nil }
            return (slot, info)
        }
        func name(_ t: TokenInfo) -> String { "\"\(t.label)\" (serial \(t.serial))" }
        let seen = candidates.map { name($0.1) + ($0.1.writeProtected ? " (write-protected)" : "") }.joined(separator: ", ")
        switch self {
        case .first:
            let skipped = candidates.filter { $0.1.writeProtected }
            let usable = candidates.filter { !$0.1.writeProtected }
            guard let pick = usable.first(where: { $0.1.initialized }) ?? usable.first else {
                throw PKCS11Error.tokenNotFound("(no --token given) any token that is not write-protected, as byokd makes keys on its token; tokens present: \(seen.isEmpty ? "none" : seen); name one with --token to use it anyway")
            }
            var reason = "no token was configured: byokd chose the first initialized token that is not write-protected, \(name(pick.1))"
            if !skipped.isEmpty { reason += "; skipped \(skipped.map { name($0.1) }.joined(separator: ", ")) (write-protected)" }
            return Selection(slot: pick.0, token: pick.1, reason: reason)
        case .uri(let u):
            guard let pick = candidates.first(where: { u.matches($0.1) }) else {
                throw PKCS11Error.tokenNotFound("\(self); tokens present: \(seen.isEmpty ? "none" : seen)")
            }
            return Selection(slot: pick.0, token: pick.1, reason: "the configured URI \(u) matches \(name(pick.1))")
        case .labelOrSerial(let s):
            if let pick = candidates.first(where: { $0.1.label == s }) {
                return Selection(slot: pick.0, token: pick.1, reason: "the configured token \"\(s)\" is the label of \(name(pick.1))")
            }
            if let pick = candidates.first(where: { $0.1.serial == s }) {
                return Selection(slot: pick.0, token: pick.1, reason: "the configured token \"\(s)\" is the serial number of \(name(pick.1))")
            }
            throw PKCS11Error.tokenNotFound("\(self); tokens present: \(seen.isEmpty ? "none" : seen)")
        }
    }
}
