import CPKCS11

/// A handle to an object on the token (`CK_OBJECT_HANDLE`). Valid only within its session's
/// application; session objects vanish when their session closes.
public struct ObjectHandle: RawRepresentable, Hashable, Sendable {
    public let rawValue: UInt
    public init(rawValue: UInt) { self.rawValue = rawValue }
    var ck: CK_OBJECT_HANDLE { CK_OBJECT_HANDLE(rawValue) }
}

/// An open session (`C_OpenSession`), closed (`C_CloseSession`) when released.
///
/// A session is never shared between concurrent tasks: it is owned by a pool or a single caller.
/// Like rust-cryptoki's `Session` (Send, not Sync), it is not `Sendable`: the compiler refuses to
/// hand one to another task; a pool lends it for the length of a closure.
public final class Session {
    public let module: Module
    public let slot: Slot
    let handle: CK_SESSION_HANDLE
    private var closed = false

    init(module: Module, slot: Slot, handle: CK_SESSION_HANDLE) {
        self.module = module
        self.slot = slot
        self.handle = handle
    }

    deinit { if !closed { try? module.call(.closeSession, \.C_CloseSession) { $0(handle) } } }

    /// `C_CloseSession`, now rather than at release. A failure is ignored: the handle is not
    /// used again either way.
    public func close() {
        guard !closed else { return }
        closed = true
        try? module.call(.closeSession, \.C_CloseSession) { $0(handle) }
    }

    /// `C_Login` as the normal user. Logins are per application, so a second session of an
    /// application already logged in is fine (`CKR_USER_ALREADY_LOGGED_IN` is not an error).
    /// The PIN is wiped afterwards, whatever happens.
    public func login(_ pin: PIN) throws {
        defer { pin.wipe() }
        try pin.withBytes { p, n in
            try module.call(.login, \.C_Login, accepting: [CKR_USER_ALREADY_LOGGED_IN]) { $0(handle, CK_USER_TYPE(CKU_USER), p, CK_ULONG(n)) }
        }
    }

    /// `C_Logout`.
    public func logout() throws {
        try module.call(.logout, \.C_Logout) { $0(handle) }
    }

    /// `C_GetSessionInfo`: whether the user is logged in and whether the session is read/write.
    public func state() throws -> (userLoggedIn: Bool, readWrite: Bool) {
        var info = CK_SESSION_INFO()
        try module.call(.getSessionInfo, \.C_GetSessionInfo) { $0(handle, &info) }
        let s = info.state
        return (s == CKS_RW_USER_FUNCTIONS || s == CKS_RO_USER_FUNCTIONS,
                s == CKS_RW_USER_FUNCTIONS || s == CKS_RW_PUBLIC_SESSION || s == CKS_RW_SO_FUNCTIONS)
    }

    /// `C_GenerateRandom`.
    public func generateRandom(_ count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        try module.call(.generateRandom, \.C_GenerateRandom) { $0(handle, &out, CK_ULONG(count)) }
        return out
    }

    /// PKCS#11 output buffers, in one place. With `expectedLength` (what the caller knows the
    /// output will be, at most), one call into a buffer of that size is all it takes; without it, or
    /// if the token answers CKR_BUFFER_TOO_SMALL, the size is asked first (a NULL buffer) and the
    /// call made again with a buffer of that size.
    func fetchBytes(_ function: Function, expectedLength: Int? = nil,
                    _ invoke: (UnsafeMutablePointer<CK_BYTE>?, UnsafeMutablePointer<CK_ULONG>) throws -> CK_RV) throws -> [UInt8] {
        var rv: CK_RV
        if let expectedLength, expectedLength > 0 {
            var out = [UInt8](repeating: 0, count: expectedLength)
            var got = CK_ULONG(expectedLength)
            rv = try out.withUnsafeMutableBufferPointer { try invoke($0.baseAddress, &got) }
            if rv == CKR_OK {
                if Int(got) < out.count { out.removeSubrange(Int(got)...) }
                return out
            }
            guard rv == CKR_BUFFER_TOO_SMALL else { throw PKCS11Error.call(function: function, rv: ReturnValue(rv)) }
        }
        var len: CK_ULONG = 0
        rv = try invoke(nil, &len)
        guard rv == CKR_OK else { throw PKCS11Error.call(function: function, rv: ReturnValue(rv)) }
        var out = [UInt8](repeating: 0, count: Int(len))
        // Some modules under-report the length in the query (NSS's CKM_AES_KEY_WRAP_KWP); on
        // CKR_BUFFER_TOO_SMALL the spec has them say the size needed, so try again with that.
        for _ in 0..<3 {
            var got = CK_ULONG(out.count)
            rv = try out.withUnsafeMutableBufferPointer { try invoke($0.baseAddress, &got) }
            if rv == CKR_BUFFER_TOO_SMALL {
                out = [UInt8](repeating: 0, count: max(Int(got), out.count * 2 + 16))
                continue
            }
            guard rv == CKR_OK else { throw PKCS11Error.call(function: function, rv: ReturnValue(rv)) }
            if Int(got) < out.count { out.removeSubrange(Int(got)...) }
            return out
        }
        throw PKCS11Error.call(function: function, rv: ReturnValue(rv))
    }
}

@available(*, unavailable, message: "a Session is lent by its pool for one closure; it never crosses to another task")
extension Session: Sendable {}
