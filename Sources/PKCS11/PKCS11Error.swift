/// An error from the PKCS#11 layer. Every error names the C function it came from.
public enum PKCS11Error: Error, CustomStringConvertible, Sendable {
    /// A C function returned something other than `CKR_OK`.
    case call(function: String, rv: ReturnValue)
    /// The module could not be loaded (dlopen, C_GetFunctionList, p11-kit lookup).
    case moduleLoad(String)
    /// No token matched the selector.
    case tokenNotFound(String)
    /// A value came back from the token in a shape the spec does not allow.
    case malformed(function: String, detail: String)

    public var description: String {
        switch self {
        case .call(let f, let rv): return "\(f): PKCS11 error: \(rv)"
        case .moduleLoad(let s): return "cannot load PKCS#11 module: \(s)"
        case .tokenNotFound(let s): return "no token matches \(s)"
        case .malformed(let f, let d): return "\(f): \(d)"
        }
    }

    public var returnValue: ReturnValue? {
        if case .call(_, let rv) = self { return rv }
        return nil
    }
}
