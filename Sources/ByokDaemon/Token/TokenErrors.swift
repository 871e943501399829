import ByokAPI
import PKCS11

/// Token errors as operator sentences with stable codes.
enum TokenErrors {
    /// Runs `body`, turning PKCS#11 errors into ByokErrors; ByokErrors pass through.
    static func guarded<R>(_ what: String, _ body: () throws -> R) throws -> R {
        do { return try body() } catch let e as ByokError { throw e } catch let e as PKCS11Error {
            let rv = e.returnValue
            if rv == .keyUnextractable || rv == .keyNotWrappable {
                throw ByokError(.keyNotExtractable, "the token will not wrap this key (\(explain(e)))")
            }
            if let rv, rv.meansSessionLost {
                throw ByokError(.tokenUnavailable, "the token went away during \(what) (\(explain(e))); byokd reconnects on the next request")
            }
            throw ByokError(.tokenError, "the token failed during \(what): \(explain(e))")
        } catch {
            throw ByokError(.internal, "\(what) failed: \(error)")
        }
    }

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
            .functionNotSupported: "the module does not implement this function",
        ]
        return "\(f) returned \(rv)" + (meaning[rv].map { " (\($0))" } ?? "")
    }
}
