/// An error from the PKCS#11 layer. Every error from a call names the C function it came from.
public enum PKCS11Error: Error, CustomStringConvertible, Sendable {
    /// A C function returned something other than `CKR_OK`, or the module does not provide it
    /// (a NULL entry in its function list: `CKR_FUNCTION_NOT_SUPPORTED`).
    case call(function: Function, rv: ReturnValue)
    /// The module could not be loaded (dlopen, C_GetFunctionList, p11-kit lookup).
    case moduleLoad(String)
    /// No token matched the selector.
    case tokenNotFound(String)

    public var description: String {
        switch self {
        case .call(let f, let rv): return "\(f): PKCS11 error: \(rv)"
        case .moduleLoad(let s): return "cannot load PKCS#11 module: \(s)"
        case .tokenNotFound(let s): return "no token matches \(s)"
        }
    }

    public var returnValue: ReturnValue? {
        if case .call(_, let rv) = self { return rv }
        return nil
    }

    /// The C function that failed, for `.call`.
    public var function: Function? {
        if case .call(let f, _) = self { return f }
        return nil
    }
}
