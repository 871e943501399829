import ByokAPI
import PKCS11

/// Token errors as operator sentences with stable codes.
///
/// One table decides the code: the first rule whose functions include the failing call (or that
/// applies to any call) and whose return values include the code wins; the rule's hint names the
/// common cause. README ("Token errors, by PKCS#11 return code") shows the same table.
enum TokenErrors {
    struct Rule: Sendable {
        /// The calls the rule applies to; nil for any call.
        let functions: Set<Function>?
        /// The return values it applies to; nil for any (a catch-all for `functions`).
        let returnValues: Set<ReturnValue>?
        let code: ErrorCode
        /// The likely cause and the next step, in an operator's words.
        let hint: String?

        init(_ functions: Set<Function>?, _ returnValues: Set<ReturnValue>?, _ code: ErrorCode, _ hint: String?) {
            self.functions = functions; self.returnValues = returnValues; self.code = code; self.hint = hint
        }

        func matches(_ function: Function, _ rv: ReturnValue) -> Bool {
            (functions?.contains(function) ?? true) && (returnValues?.contains(rv) ?? true)
        }
    }

    static let generating: Set<Function> = [.generateKey, .generateKeyPair]

    /// The classification table, most specific rules first.
    static let table: [Rule] = [
        // The token or the session went away: byokd reconnects (and retries a side-effect-free request once).
        Rule(nil, [.deviceRemoved, .tokenNotPresent, .sessionHandleInvalid, .sessionClosed, .userNotLoggedIn], .tokenUnavailable,
             "the token went away; byokd reconnects on the next request"),
        // Loading the module.
        Rule([.initialize], [.hostMemory], .tokenUnavailable,
             "the module could not start; modules that talk to a service (a vendor's client or slot daemon, pcscd for smart cards) answer this when the service is not running or cannot be reached — check that it runs and that the module's configuration points at it"),
        Rule([.initialize], [.argumentsBad], .tokenUnavailable,
             "the module wants initialization arguments; NSS softokn needs initArgs \"configdir='sql:DIR' certPrefix='' keyPrefix='' secmod='secmod.db' flags=\""),
        Rule([.initialize], [.needToCreateThreads, .canNotLock], .tokenUnavailable,
             "the module cannot work with the operating system's locking (CKF_OS_LOCKING_OK), which byokd needs to use it from several threads"),
        Rule([.initialize], nil, .tokenUnavailable, "the module failed to start; check its configuration and its own log"),
        // Logging in: only a PIN problem is TOKEN_LOGIN_FAILED.
        Rule([.login], [.pinIncorrect], .tokenLoginFailed, "the PIN is wrong; check the PIN file (a wrong PIN uses up one of the token's login attempts)"),
        Rule([.login], [.pinLocked], .tokenLoginFailed, "the user PIN is locked; the token's security officer must unlock or reset it"),
        Rule([.login], [.pinLenRange, .pinInvalid], .tokenLoginFailed, "the PIN has a length or characters this token does not accept; check the PIN file"),
        Rule([.login], [.pinExpired], .tokenLoginFailed, "the PIN has expired; set a new one with the token's own tools"),
        Rule([.login], [.userPinNotInitialized], .tokenLoginFailed, "the token has no user PIN yet; set one (C_InitPIN) with the token's own tools"),
        Rule([.login], nil, .tokenError, "the token failed while logging in, which is not a wrong PIN; check the token and the service behind it"),
        // Making keys.
        Rule(generating, [.functionNotSupported, .mechanismInvalid, .keySizeRange, .curveNotSupported, .domainParamsInvalid], .tokenLacksAlgorithm,
             "the token cannot make this kind of key"),
        Rule(generating, [.attributeValueInvalid, .attributeTypeInvalid, .templateInconsistent, .templateIncomplete], .tokenError,
             "the token refuses byokd's key template: byokd makes every key CKA_SENSITIVE=true with CKA_EXTRACTABLE=true (it may leave the token only wrapped), and some tokens, or their FIPS or high-security policies, forbid extractable keys — allow them in the token's policy, or use another token"),
        Rule(nil, [.tokenWriteProtected], .tokenError,
             "the token is write-protected (CKF_WRITE_PROTECTED), so no key can be made on it; choose another token with --token"),
        // Wrapping.
        Rule([.wrapKey], [.keyUnextractable, .keyNotWrappable], .keyNotExtractable, "the token will not wrap this key"),
        Rule([.wrapKey], [.functionNotSupported], .tokenLacksAlgorithm, "the module does not implement C_WrapKey"),
        // Anything else.
        Rule(nil, [.functionNotSupported], .tokenError, "the module does not implement this function"),
        Rule(nil, [.hostMemory, .deviceMemory], .tokenError, "the token or the module ran out of memory"),
    ]

    /// The rule for a PKCS#11 error (nil for errors that are no call's: module loading, token choice).
    static func rule(for e: PKCS11Error) -> Rule? {
        guard case .call(let f, let rv) = e else { return nil }
        return table.first { $0.matches(f, rv) }
    }

    /// The code a PKCS#11 error gets: the table's, else TOKEN_ERROR.
    static func code(for e: PKCS11Error) -> ErrorCode {
        if case .call = e { return rule(for: e)?.code ?? .tokenError }
        return .tokenUnavailable
    }

    /// A PKCS#11 error as a ByokError, its message led by `context` ("the token failed during wrap").
    static func byokError(_ e: PKCS11Error, context: String) -> ByokError {
        ByokError(code(for: e), "\(context): \(explain(e))")
    }

    /// Runs `body`, turning PKCS#11 errors into ByokErrors; ByokErrors pass through.
    static func guarded<R>(_ what: String, _ body: () throws -> R) throws -> R {
        do { return try body() } catch let e as ByokError { throw e } catch let e as PKCS11Error {
            switch code(for: e) {
            case .keyNotExtractable: throw ByokError(.keyNotExtractable, "the token will not wrap this key (\(explain(e)))")
            case .tokenUnavailable: throw ByokError(.tokenUnavailable, "the token went away during \(what) (\(explain(e)))")
            case let c: throw ByokError(c, "the token failed during \(what): \(explain(e))")
            }
        } catch {
            throw ByokError(.internal, "\(what) failed: \(error)")
        }
    }

    /// "C_Login returned CKR_GENERAL_ERROR (…meaning…) — hint".
    static func explain(_ e: PKCS11Error) -> String {
        guard case .call(let f, let rv) = e else { return "\(e)" }
        let meaning: [ReturnValue: String] = [
            .pinIncorrect: "the PIN is wrong", .pinLocked: "the PIN is locked", .deviceRemoved: "the token was removed",
            .tokenNotPresent: "no token is present", .deviceError: "the device reported an error",
            .sessionHandleInvalid: "the session is gone", .sessionClosed: "the session was closed",
            .userNotLoggedIn: "the session is no longer logged in", .argumentsBad: "the token rejected the parameters",
            .mechanismInvalid: "the token lacks this mechanism", .mechanismParamInvalid: "the token rejected the mechanism parameters",
            .keyUnextractable: "the key is not extractable", .keySizeRange: "the token does not support this key size",
            .curveNotSupported: "the token does not support this curve", .templateInconsistent: "the token rejected the key attributes",
            .attributeValueInvalid: "the token rejected an attribute value", .functionNotSupported: "the module does not implement this function",
            .generalError: "the token reported a general error", .hostMemory: "the module ran out of memory or could not start",
            .tokenWriteProtected: "the token is write-protected",
        ]
        var s = "\(f) returned \(rv)" + (meaning[rv].map { " (\($0))" } ?? "")
        if let hint = table.first(where: { $0.matches(f, rv) })?.hint, hint != meaning[rv] { s += " — \(hint)" }
        return s
    }
}
