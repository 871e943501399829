import CPKCS11

/// A slot of a module (`CK_SLOT_ID`) and the token in it.
public struct Slot: @unchecked Sendable {
    public let module: Module
    public let id: UInt

    init(module: Module, id: CK_SLOT_ID) {
        self.module = module
        self.id = UInt(id)
    }

    /// `C_GetTokenInfo`.
    public func tokenInfo() throws -> TokenInfo {
        var info = CK_TOKEN_INFO()
        try module.call(.getTokenInfo, \.C_GetTokenInfo) { $0(CK_SLOT_ID(id), &info) }
        return TokenInfo(info)
    }

    /// `C_GetMechanismList`.
    public func mechanisms() throws -> [MechanismType] {
        var count: CK_ULONG = 0
        try module.call(.getMechanismList, \.C_GetMechanismList) { $0(CK_SLOT_ID(id), nil, &count) }
        var list = [CK_MECHANISM_TYPE](repeating: 0, count: Int(count))
        try module.call(.getMechanismList, \.C_GetMechanismList) { $0(CK_SLOT_ID(id), &list, &count) }
        return list.prefix(Int(count)).map { MechanismType(rawValue: UInt($0)) }
    }

    /// `C_GetMechanismInfo`: key size range and the operations (`CKF_WRAP`, ...) a mechanism allows.
    public func mechanismInfo(_ type: MechanismType) throws -> MechanismInfo {
        var info = CK_MECHANISM_INFO()
        try module.call(.getMechanismInfo, \.C_GetMechanismInfo) {
            $0(CK_SLOT_ID(id), CK_MECHANISM_TYPE(type.rawValue), &info)
        }
        return MechanismInfo(minKeySize: UInt(info.ulMinKeySize), maxKeySize: UInt(info.ulMaxKeySize),
                             flags: UInt(info.flags))
    }

    /// `C_OpenSession` (serial, read-write unless asked otherwise).
    public func openSession(readWrite: Bool = true) throws -> Session {
        var flags = CK_FLAGS(CKF_SERIAL_SESSION)
        if readWrite { flags |= CK_FLAGS(CKF_RW_SESSION) }
        var handle: CK_SESSION_HANDLE = 0
        try module.call(.openSession, \.C_OpenSession) { $0(CK_SLOT_ID(id), flags, nil, nil, &handle) }
        return Session(module: module, slot: self, handle: handle)
    }
}

/// What `C_GetTokenInfo` says about a token.
public struct TokenInfo: Sendable, Equatable {
    public let label: String
    public let manufacturer: String
    public let model: String
    public let serial: String
    public let flags: UInt
    let raw: CK_TOKEN_INFO

    init(_ info: CK_TOKEN_INFO) {
        raw = info
        label = padded(info.label)
        manufacturer = padded(info.manufacturerID)
        model = padded(info.model)
        serial = padded(info.serialNumber)
        flags = UInt(info.flags)
    }

    public var loginRequired: Bool { flags & UInt(CKF_LOGIN_REQUIRED) != 0 }
    public var initialized: Bool { flags & UInt(CKF_TOKEN_INITIALIZED) != 0 }

    public static func == (a: TokenInfo, b: TokenInfo) -> Bool {
        a.label == b.label && a.serial == b.serial && a.model == b.model && a.manufacturer == b.manufacturer
    }
}

/// What `C_GetMechanismInfo` says about a mechanism.
public struct MechanismInfo: Sendable {
    public let minKeySize: UInt
    public let maxKeySize: UInt
    public let flags: UInt
    public var canWrap: Bool { flags & UInt(CKF_WRAP) != 0 }
    public var canEncrypt: Bool { flags & UInt(CKF_ENCRYPT) != 0 }
    public var canGenerate: Bool { flags & UInt(CKF_GENERATE) != 0 || flags & UInt(CKF_GENERATE_KEY_PAIR) != 0 }
}
