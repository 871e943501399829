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
        guard let getFunctionList = byok_p11_open(path, &h) else {
            let why = dlerror().map { String(cString: $0) } ?? "C_GetFunctionList failed"
            if let h { dlclose(h) }
            throw PKCS11Error.moduleLoad("\(path): \(why)")
        }
        guard let list = Module.functionList(getFunctionList) else {
            if let h { dlclose(h) }
            throw PKCS11Error.moduleLoad("\(path): C_GetFunctionList failed")
        }
        self.handle = h
        self.functions = list
        if let initArgs { initString = strdup(initArgs) }
        var args = CK_C_INITIALIZE_ARGS()
        args.flags = CK_FLAGS(CKF_OS_LOCKING_OK)
        args.pReserved = UnsafeMutableRawPointer(initString)
        // A throwing init of a fully initialised class still runs deinit: it finalizes only
        // what was initialized, and unloads.
        try withUnsafeMutablePointer(to: &args) { p in
            try call(.initialize, \.C_Initialize) { $0(UnsafeMutableRawPointer(p)) }
        }
        initialized = true
    }

    private var initialized = false

    deinit {
        if initialized { try? call(.finalize, \.C_Finalize) { $0(nil) } }
        free(initString)
        if let handle { dlclose(handle) }
    }

    /// `C_GetFunctionList`, through the same helper as every other call; nil if it fails.
    private static func functionList(_ get: CK_C_GetFunctionList) -> UnsafeMutablePointer<CK_FUNCTION_LIST>? {
        var list: UnsafeMutablePointer<CK_FUNCTION_LIST>?
        do { try check(.getFunctionList, invoke(.getFunctionList, get) { $0(&list) }) } catch { return nil }
        return list
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

    /// Every C call goes through here: the function pointer is fetched from the function list,
    /// a missing one is `CKR_FUNCTION_NOT_SUPPORTED`, and any result but `CKR_OK` is thrown with
    /// the function's name (unless it is one of `accepting`). `function` names the field `entry`
    /// reads.
    @inline(__always)
    func call<F>(_ function: Function, _ entry: KeyPath<CK_FUNCTION_LIST, F?>, accepting: Set<CK_RV> = [],
                 _ invoke: (F) -> CK_RV) throws {
        try Module.check(function, callRV(function, entry, invoke), accepting: accepting)
    }

    /// Like `call`, but hands back the return value for callers that accept more than `CKR_OK`.
    @inline(__always)
    func callRV<F>(_ function: Function, _ entry: KeyPath<CK_FUNCTION_LIST, F?>, _ invoke: (F) -> CK_RV) throws -> CK_RV {
        try Module.invoke(function, functions.pointee[keyPath: entry], invoke)
    }

    /// The one place a PKCS#11 function pointer is called (`C_GetFunctionList`, before there is
    /// a function list, comes straight here): NULL is thrown as `CKR_FUNCTION_NOT_SUPPORTED`.
    @inline(__always)
    static func invoke<F>(_ function: Function, _ pointer: F?, _ invoke: (F) -> CK_RV) throws -> CK_RV {
        guard let f = pointer else { throw PKCS11Error.call(function: function, rv: .functionNotSupported) }
        return invoke(f)
    }

    /// Throws `rv` with the function's name unless it is `CKR_OK` or one of `accepting`.
    @inline(__always)
    static func check(_ function: Function, _ rv: CK_RV, accepting: Set<CK_RV> = []) throws {
        if rv != CKR_OK && !accepting.contains(rv) { throw PKCS11Error.call(function: function, rv: ReturnValue(rv)) }
    }

    /// `C_GetInfo`: the library description and manufacturer.
    public func info() throws -> (description: String, manufacturer: String, version: String) {
        var info = CK_INFO()
        try call(.getInfo, \.C_GetInfo) { $0(&info) }
        return (padded(info.libraryDescription), padded(info.manufacturerID),
                "\(info.libraryVersion.major).\(info.libraryVersion.minor)")
    }

    /// `C_GetSlotList`: slots, by default only those with a token present.
    public func slots(tokenPresent: Bool = true) throws -> [Slot] {
        var count: CK_ULONG = 0
        let present = CK_BBOOL(tokenPresent ? CK_TRUE : CK_FALSE)
        try call(.getSlotList, \.C_GetSlotList) { $0(present, nil, &count) }
        var ids = [CK_SLOT_ID](repeating: 0, count: Int(count))
        try call(.getSlotList, \.C_GetSlotList) { $0(present, &ids, &count) }
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
