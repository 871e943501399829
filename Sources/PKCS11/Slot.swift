import CPKCS11

/// A slot of a module (`CK_SLOT_ID`) and the token in it.
public struct Slot: Sendable {
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

    /// `C_GetSlotInfo`: the slot's description and manufacturer.
    public func slotInfo() throws -> SlotInfo {
        var info = CK_SLOT_INFO()
        try module.call(.getSlotInfo, \.C_GetSlotInfo) { $0(CK_SLOT_ID(id), &info) }
        return SlotInfo(description: padded(info.slotDescription), manufacturer: padded(info.manufacturerID), flags: UInt(info.flags))
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
    /// CKF_WRITE_PROTECTED: no token objects can be made (NSS's "Generic Crypto Services").
    public var writeProtected: Bool { flags & UInt(CKF_WRITE_PROTECTED) != 0 }
    /// CKF_USER_PIN_COUNT_LOW: a wrong user PIN was entered since the last good login.
    public var userPINCountLow: Bool { flags & UInt(CKF_USER_PIN_COUNT_LOW) != 0 }
    /// CKF_USER_PIN_FINAL_TRY: one more wrong user PIN locks the PIN.
    public var userPINFinalTry: Bool { flags & UInt(CKF_USER_PIN_FINAL_TRY) != 0 }
    /// CKF_USER_PIN_LOCKED: the user PIN is locked.
    public var userPINLocked: Bool { flags & UInt(CKF_USER_PIN_LOCKED) != 0 }
    /// CKF_USER_PIN_TO_BE_CHANGED: the user PIN must be changed before use.
    public var userPINToBeChanged: Bool { flags & UInt(CKF_USER_PIN_TO_BE_CHANGED) != 0 }

    /// The flags an operator should see, by their PKCS#11 names, in a fixed order.
    public var flagNames: [String] {
        let known: [(CK_FLAGS, String)] = [
            (CK_FLAGS(CKF_LOGIN_REQUIRED), "CKF_LOGIN_REQUIRED"), (CK_FLAGS(CKF_WRITE_PROTECTED), "CKF_WRITE_PROTECTED"),
            (CK_FLAGS(CKF_TOKEN_INITIALIZED), "CKF_TOKEN_INITIALIZED"), (CK_FLAGS(CKF_USER_PIN_INITIALIZED), "CKF_USER_PIN_INITIALIZED"),
            (CK_FLAGS(CKF_USER_PIN_COUNT_LOW), "CKF_USER_PIN_COUNT_LOW"), (CK_FLAGS(CKF_USER_PIN_FINAL_TRY), "CKF_USER_PIN_FINAL_TRY"),
            (CK_FLAGS(CKF_USER_PIN_LOCKED), "CKF_USER_PIN_LOCKED"), (CK_FLAGS(CKF_USER_PIN_TO_BE_CHANGED), "CKF_USER_PIN_TO_BE_CHANGED"),
            (CK_FLAGS(CKF_SO_PIN_LOCKED), "CKF_SO_PIN_LOCKED"), (CK_FLAGS(CKF_PROTECTED_AUTHENTICATION_PATH), "CKF_PROTECTED_AUTHENTICATION_PATH"),
        ]
        return known.filter { flags & UInt($0.0) != 0 }.map(\.1)
    }

    public static func == (a: TokenInfo, b: TokenInfo) -> Bool {
        a.label == b.label && a.serial == b.serial && a.model == b.model && a.manufacturer == b.manufacturer
    }
}

/// What `C_GetSlotInfo` says about a slot.
public struct SlotInfo: Sendable, Equatable {
    public let description: String
    public let manufacturer: String
    public let flags: UInt
}

/// What `C_GetMechanismInfo` says about a mechanism.
public struct MechanismInfo: Sendable {
    public let minKeySize: UInt
    public let maxKeySize: UInt
    public let flags: UInt
    public init(minKeySize: UInt, maxKeySize: UInt, flags: UInt) {
        self.minKeySize = minKeySize; self.maxKeySize = maxKeySize; self.flags = flags
    }
    public var canWrap: Bool { flags & UInt(CKF_WRAP) != 0 }
    public var canUnwrap: Bool { flags & UInt(CKF_UNWRAP) != 0 }
    public var canEncrypt: Bool { flags & UInt(CKF_ENCRYPT) != 0 }
    public var canSign: Bool { flags & UInt(CKF_SIGN) != 0 }
    public var canGenerate: Bool { flags & UInt(CKF_GENERATE) != 0 || flags & UInt(CKF_GENERATE_KEY_PAIR) != 0 }

    /// The operation flags a mechanism needs for a use, by name: `CKF_WRAP`, `CKF_UNWRAP`,
    /// `CKF_ENCRYPT`, `CKF_SIGN`, `CKF_GENERATE`, `CKF_GENERATE_KEY_PAIR`.
    public enum Operation: String, Sendable {
        case wrap = "CKF_WRAP", unwrap = "CKF_UNWRAP", encrypt = "CKF_ENCRYPT", sign = "CKF_SIGN"
        case generate = "CKF_GENERATE", generateKeyPair = "CKF_GENERATE_KEY_PAIR"
        var flag: UInt {
            switch self {
            case .wrap: UInt(CKF_WRAP)
            case .unwrap: UInt(CKF_UNWRAP)
            case .encrypt: UInt(CKF_ENCRYPT)
            case .sign: UInt(CKF_SIGN)
            case .generate: UInt(CKF_GENERATE)
            case .generateKeyPair: UInt(CKF_GENERATE_KEY_PAIR)
            }
        }
    }

    public func allows(_ operation: Operation) -> Bool { flags & operation.flag != 0 }
}
