import CPKCS11
import Foundation

/// A loaded and initialised PKCS#11 module (`C_GetInterface` or `C_GetFunctionList`, then `C_Initialize`).
///
/// The module is finalised (`C_Finalize`) and unloaded when the last reference goes away.
/// It is initialised with `CKF_OS_LOCKING_OK`, so it may be used from several threads; sessions
/// are not shared between threads (see `Session`).
public final class Module: @unchecked Sendable {  // a C function list fixed at load; the module is initialised with CKF_OS_LOCKING_OK
    /// Where the module came from: a file path or the name p11-kit registers it under.
    public let source: String
    /// The shared object actually loaded.
    public let path: String
    /// The entry point the function list came from.
    public let entryPoint: EntryPoint
    let functions: UnsafeMutablePointer<CK_FUNCTION_LIST>
    private let handle: UnsafeMutableRawPointer?
    private var initString: UnsafeMutablePointer<CChar>?

    /// How the function list was obtained: PKCS#11 3.0's `C_GetInterface` ("PKCS 11" interface),
    /// `C_GetFunctionList`, or an alternative symbol the configuration names (NSS softokn reaches
    /// its FIPS token only through `FC_GetFunctionList` / `FC_GetInterface`).
    public struct EntryPoint: Sendable, Equatable, CustomStringConvertible {
        /// The symbol called, e.g. `C_GetInterface`, `FC_GetFunctionList`.
        public let symbol: String
        /// The function list's `version` (2.40, 3.0, ...).
        public let version: String
        /// Whether `symbol` is an interface getter (PKCS#11 3.0 style).
        public let isInterface: Bool
        /// Whether the symbol is one of the two standard ones.
        public var isStandard: Bool { symbol == "C_GetInterface" || symbol == "C_GetFunctionList" }
        public var description: String {
            isInterface ? "\(symbol) (interface \"PKCS 11\", version \(version))" : "\(symbol) (function list version \(version))"
        }
    }

    /// Loads a module by file path (anything containing `/` or ending in `.so`) or by the
    /// name p11-kit registers it under (`softhsm2`, `opensc-pkcs11`, ...), then calls
    /// `C_Initialize` with `CKF_OS_LOCKING_OK` and, when given, `initArgs` as `pReserved`
    /// (NSS's softokn takes its `configdir=...` string there).
    ///
    /// The function list comes from `functionListSymbol` when given (an interface getter if its
    /// name ends in `GetInterface`, else a `C_GetFunctionList`-style function); otherwise from
    /// PKCS#11 3.0's `C_GetInterface` where the module exports it, else from `C_GetFunctionList`.
    public init(_ source: String, initArgs: String? = nil, functionListSymbol: String? = nil) throws {
        self.source = source
        let path = try Module.resolve(source)
        self.path = path
        guard let h = byok_p11_dlopen(path) else {
            let why = dlerror().map { String(cString: $0) } ?? "dlopen failed"
            throw PKCS11Error.moduleLoad("\(path): \(why)")
        }
        let list: UnsafeMutablePointer<CK_FUNCTION_LIST>
        do {
            (list, entryPoint) = try Module.functionList(handle: h, path: path, symbol: functionListSymbol)
        } catch {
            dlclose(h)
            throw error
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

    /// The entry points byokd knows by name, for messages about what a module exports.
    static let knownEntryPoints = ["C_GetInterface", "C_GetFunctionList", "FC_GetInterface", "FC_GetFunctionList"]

    /// Finds the function list through the configured symbol, or C_GetInterface, or C_GetFunctionList.
    private static func functionList(handle: UnsafeMutableRawPointer, path: String, symbol: String?)
        throws -> (UnsafeMutablePointer<CK_FUNCTION_LIST>, EntryPoint) {
        func exported() -> String {
            let names = knownEntryPoints.filter { byok_p11_function_list_symbol(handle, $0) != nil }
            return names.isEmpty ? "none of \(knownEntryPoints.joined(separator: ", "))" : names.joined(separator: ", ")
        }
        if let symbol {
            guard !symbol.isEmpty, symbol.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                throw PKCS11Error.moduleLoad("\"\(symbol)\" is not a C symbol name (functionListSymbol)")
            }
            if symbol.hasSuffix("GetInterface") {
                guard let get = byok_p11_interface_symbol(handle, symbol) else {
                    throw PKCS11Error.moduleLoad("\(path) has no symbol \(symbol) (functionListSymbol); it exports \(exported())")
                }
                return try viaInterface(get, symbol: symbol, path: path)
            }
            guard let get = byok_p11_function_list_symbol(handle, symbol) else {
                throw PKCS11Error.moduleLoad("\(path) has no symbol \(symbol) (functionListSymbol); it exports \(exported())")
            }
            return try viaFunctionList(get, symbol: symbol, path: path)
        }
        if let get = byok_p11_interface_symbol(handle, "C_GetInterface"),
           let found = try? viaInterface(get, symbol: "C_GetInterface", path: path) {
            return found
        }
        guard let get = byok_p11_function_list_symbol(handle, "C_GetFunctionList") else {
            throw PKCS11Error.moduleLoad("\(path) is no PKCS#11 module: it exports neither C_GetInterface nor C_GetFunctionList")
        }
        return try viaFunctionList(get, symbol: "C_GetFunctionList", path: path)
    }

    /// `C_GetFunctionList` (or an alternative with its signature), through the one helper.
    private static func viaFunctionList(_ get: CK_C_GetFunctionList, symbol: String, path: String)
        throws -> (UnsafeMutablePointer<CK_FUNCTION_LIST>, EntryPoint) {
        var list: UnsafeMutablePointer<CK_FUNCTION_LIST>?
        do { try check(.getFunctionList, invoke(.getFunctionList, get) { $0(&list) }) } catch {
            throw PKCS11Error.moduleLoad("\(path): \(symbol) failed (\(error))")
        }
        guard let list else { throw PKCS11Error.moduleLoad("\(path): \(symbol) returned no function list") }
        return (list, EntryPoint(symbol: symbol, version: versionString(list.pointee.version), isInterface: false))
    }

    /// PKCS#11 3.0 `C_GetInterface("PKCS 11", NULL, &interface, 0)`: the module's default version
    /// of the standard interface.
    private static func viaInterface(_ get: BYOK_C_GetInterface, symbol: String, path: String)
        throws -> (UnsafeMutablePointer<CK_FUNCTION_LIST>, EntryPoint) {
        var name = Array("PKCS 11".utf8) + [0]
        var interface: UnsafeMutablePointer<BYOK_CK_INTERFACE>?
        do {
            try check(.getInterface, invoke(.getInterface, get) { f in name.withUnsafeMutableBufferPointer { f($0.baseAddress, nil, &interface, 0) } })
        } catch {
            throw PKCS11Error.moduleLoad("\(path): \(symbol)(\"PKCS 11\") failed (\(error))")
        }
        guard let raw = interface?.pointee.pFunctionList else {
            throw PKCS11Error.moduleLoad("\(path): \(symbol) returned no function list")
        }
        // Every version of the standard interface's list begins with CK_VERSION and the v2.40 entries.
        let list = raw.assumingMemoryBound(to: CK_FUNCTION_LIST.self)
        guard list.pointee.version.major >= 2 else {
            throw PKCS11Error.moduleLoad("\(path): \(symbol) returned a function list of version \(versionString(list.pointee.version))")
        }
        return (list, EntryPoint(symbol: symbol, version: versionString(list.pointee.version), isInterface: true))
    }

    static func versionString(_ v: CK_VERSION) -> String { "\(v.major).\(v.minor)" }

    /// Whether the module's shared object exports `symbol` (e.g. `FC_GetFunctionList`).
    public func exports(_ symbol: String) -> Bool {
        guard let handle else { return false }
        return byok_p11_function_list_symbol(handle, symbol) != nil
    }

    private var initialized = false
    private let finalizeLock = NSLock()

    /// `C_Finalize` now rather than at release (once; a failure is ignored). Calls made afterwards
    /// fail with the module's CKR_CRYPTOKI_NOT_INITIALIZED. A daemon finalizes on its main thread
    /// before it exits, so the module is never finalized on another thread while the process ends.
    public func finalize() {
        finalizeLock.lock()
        defer { finalizeLock.unlock() }
        guard initialized else { return }
        initialized = false
        try? call(.finalize, \.C_Finalize) { $0(nil) }
    }

    deinit {
        if initialized { try? call(.finalize, \.C_Finalize) { $0(nil) } }
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

    /// Whether the module's function list has an entry for `function` (a NULL entry means the
    /// module does not implement it; calling it fails with `CKR_FUNCTION_NOT_SUPPORTED`).
    public func provides(_ function: Function) -> Bool {
        let l = functions.pointee
        switch function {
        case .getFunctionList, .getInterface: return true
        case .initialize: return l.C_Initialize != nil
        case .finalize: return l.C_Finalize != nil
        case .getInfo: return l.C_GetInfo != nil
        case .getSlotList: return l.C_GetSlotList != nil
        case .getSlotInfo: return l.C_GetSlotInfo != nil
        case .getTokenInfo: return l.C_GetTokenInfo != nil
        case .getMechanismList: return l.C_GetMechanismList != nil
        case .getMechanismInfo: return l.C_GetMechanismInfo != nil
        case .initToken: return l.C_InitToken != nil
        case .initPIN: return l.C_InitPIN != nil
        case .openSession: return l.C_OpenSession != nil
        case .closeSession: return l.C_CloseSession != nil
        case .getSessionInfo: return l.C_GetSessionInfo != nil
        case .login: return l.C_Login != nil
        case .logout: return l.C_Logout != nil
        case .createObject: return l.C_CreateObject != nil
        case .destroyObject: return l.C_DestroyObject != nil
        case .getAttributeValue: return l.C_GetAttributeValue != nil
        case .findObjectsInit: return l.C_FindObjectsInit != nil
        case .findObjects: return l.C_FindObjects != nil
        case .findObjectsFinal: return l.C_FindObjectsFinal != nil
        case .encryptInit: return l.C_EncryptInit != nil
        case .encrypt: return l.C_Encrypt != nil
        case .signInit: return l.C_SignInit != nil
        case .sign: return l.C_Sign != nil
        case .generateKey: return l.C_GenerateKey != nil
        case .generateKeyPair: return l.C_GenerateKeyPair != nil
        case .wrapKey: return l.C_WrapKey != nil
        case .unwrapKey: return l.C_UnwrapKey != nil
        case .generateRandom: return l.C_GenerateRandom != nil
        }
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
