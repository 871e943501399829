import CPKCS11
import Foundation

/// A loaded and initialised PKCS#11 module (`C_GetFunctionList` + `C_Initialize`).
///
/// The module is finalised (`C_Finalize`) and unloaded when the last reference goes away.
/// It is initialised with `CKF_OS_LOCKING_OK`, so it may be used from several threads; sessions
/// are not shared between threads (see `Session`).
public final class Module: @unchecked Sendable {
    /// Where the module came from: a file path or the name p11-kit registers it under.
    public let source: String
    /// The shared object actually loaded.
    public let path: String
    let functions: UnsafeMutablePointer<CK_FUNCTION_LIST>
    private let handle: UnsafeMutableRawPointer?
    private var initString: UnsafeMutablePointer<CChar>?

    /// Loads a module by file path (anything containing `/` or ending in `.so`) or by the
    /// name p11-kit registers it under (`softhsm2`, `opensc-pkcs11`, ...), then calls
    /// `C_Initialize` with `CKF_OS_LOCKING_OK` and, when given, `initArgs` as `pReserved`
    /// (NSS's softokn takes its `configdir=...` string there).
    public init(_ source: String, initArgs: String? = nil) throws {
        self.source = source
        let path = try Module.resolve(source)
        self.path = path
        var h: UnsafeMutableRawPointer?
        guard let list = byok_p11_load(path, &h) else {
            let why = dlerror().map { String(cString: $0) } ?? "C_GetFunctionList failed"
            if let h { dlclose(h) }
            throw PKCS11Error.moduleLoad("\(path): \(why)")
        }
        self.handle = h
        self.functions = list
        if let initArgs { initString = strdup(initArgs) }
        var args = CK_C_INITIALIZE_ARGS()
        args.flags = CK_FLAGS(CKF_OS_LOCKING_OK)
        args.pReserved = UnsafeMutableRawPointer(initString)
        let rv = withUnsafeMutablePointer(to: &args) { p in
            functions.pointee.C_Initialize(UnsafeMutableRawPointer(p))
        }
        // A throwing init of a fully initialised class still runs deinit: it finalizes only
        // what was initialized, and unloads.
        guard rv == CKR_OK else { throw PKCS11Error.call(function: "C_Initialize", rv: ReturnValue(rv)) }
        initialized = true
    }

    private var initialized = false

    deinit {
        if initialized { _ = functions.pointee.C_Finalize(nil) }
        free(initString)
        if let handle { dlclose(handle) }
    }

    static func resolve(_ source: String) throws -> String {
        if source.contains("/") || source.hasSuffix(".so") { return source }
        guard let list = p11_kit_modules_load(nil, Int32(P11_KIT_MODULE_UNMANAGED)) else {
            throw PKCS11Error.moduleLoad("p11-kit could not list its registered modules")
        }
        defer { p11_kit_modules_release(list) }
        var names: [String] = []
        var i = 0
        while let m = list[i] {
            i += 1
            guard let cname = p11_kit_module_get_name(m) else { continue }
            let name = String(cString: cname)
            free(cname)
            names.append(name)
            if name == source, let cfile = p11_kit_module_get_filename(m) {
                defer { free(cfile) }
                return String(cString: cfile)
            }
        }
        throw PKCS11Error.moduleLoad("p11-kit has no module named \"\(source)\" (registered: \(names.sorted().joined(separator: ", ")))")
    }

    /// Every C call goes through here: the function pointer is fetched, a missing one is
    /// `CKR_FUNCTION_NOT_SUPPORTED`, and any result but `CKR_OK` is thrown with the function name.
    @inline(__always)
    func call<F>(_ name: String, _ fn: KeyPath<CK_FUNCTION_LIST, F?>, _ invoke: (F) -> CK_RV) throws {
        let rv = try callRV(name, fn, invoke)
        if rv != CKR_OK { throw PKCS11Error.call(function: name, rv: ReturnValue(rv)) }
    }

    /// Like `call`, but hands back the return value for callers that accept more than `CKR_OK`.
    @inline(__always)
    func callRV<F>(_ name: String, _ fn: KeyPath<CK_FUNCTION_LIST, F?>, _ invoke: (F) -> CK_RV) throws -> CK_RV {
        guard let f = functions.pointee[keyPath: fn] else {
            throw PKCS11Error.call(function: name, rv: .functionNotSupported)
        }
        return invoke(f)
    }

    /// `C_GetInfo`: the library description and manufacturer.
    public func info() throws -> (description: String, manufacturer: String, version: String) {
        var info = CK_INFO()
        try call("C_GetInfo", \.C_GetInfo) { $0(&info) }
        return (padded(info.libraryDescription), padded(info.manufacturerID),
                "\(info.libraryVersion.major).\(info.libraryVersion.minor)")
    }

    /// `C_GetSlotList`: slots, by default only those with a token present.
    public func slots(tokenPresent: Bool = true) throws -> [Slot] {
        var count: CK_ULONG = 0
        let present = CK_BBOOL(tokenPresent ? CK_TRUE : CK_FALSE)
        try call("C_GetSlotList", \.C_GetSlotList) { $0(present, nil, &count) }
        var ids = [CK_SLOT_ID](repeating: 0, count: Int(count))
        try call("C_GetSlotList", \.C_GetSlotList) { $0(present, &ids, &count) }
        return ids.prefix(Int(count)).map { Slot(module: self, id: $0) }
    }
}

/// Reads a blank-padded fixed-size PKCS#11 string field (labels, serials, models).
func padded<T>(_ tuple: T) -> String {
    withUnsafeBytes(of: tuple) { raw in
        var bytes = Array(raw)
        while let last = bytes.last, last == 0x20 || last == 0 { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }
}
