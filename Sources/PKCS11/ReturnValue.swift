import CPKCS11

/// A PKCS#11 return code (`CK_RV`).
///
/// Open like swift-system's `Errno`: vendor and unknown codes keep their raw value, and
/// `description` gives the `CKR_` name, e.g. `CKR_PIN_INCORRECT`.
public struct ReturnValue: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt
    public init(rawValue: UInt) { self.rawValue = rawValue }
    init(_ rv: CK_RV) { self.rawValue = UInt(rv) }

    public var description: String {
        if let name = Self.knownNames[CK_RV(rawValue)] { return name }
        if rawValue & Self.vendorDefined != 0 {
            return "CKR_VENDOR_DEFINED+0x" + String(rawValue & ~Self.vendorDefined, radix: 16)
        }
        return "CKR_0x" + String(rawValue, radix: 16)
    }

    static let vendorDefined: UInt = 1 << 31
    public static let ok = ReturnValue(CKR_OK)
    public static let argumentsBad = ReturnValue(CKR_ARGUMENTS_BAD)
    public static let attributeSensitive = ReturnValue(CKR_ATTRIBUTE_SENSITIVE)
    public static let attributeTypeInvalid = ReturnValue(CKR_ATTRIBUTE_TYPE_INVALID)
    public static let bufferTooSmall = ReturnValue(CKR_BUFFER_TOO_SMALL)
    public static let cryptokiAlreadyInitialized = ReturnValue(CKR_CRYPTOKI_ALREADY_INITIALIZED)
    public static let deviceRemoved = ReturnValue(CKR_DEVICE_REMOVED)
    public static let deviceError = ReturnValue(CKR_DEVICE_ERROR)
    public static let functionNotSupported = ReturnValue(CKR_FUNCTION_NOT_SUPPORTED)
    public static let keyUnextractable = ReturnValue(CKR_KEY_UNEXTRACTABLE)
    public static let keyNotWrappable = ReturnValue(CKR_KEY_NOT_WRAPPABLE)
    public static let mechanismInvalid = ReturnValue(CKR_MECHANISM_INVALID)
    public static let mechanismParamInvalid = ReturnValue(CKR_MECHANISM_PARAM_INVALID)
    public static let pinIncorrect = ReturnValue(CKR_PIN_INCORRECT)
    public static let pinLocked = ReturnValue(CKR_PIN_LOCKED)
    public static let sessionClosed = ReturnValue(CKR_SESSION_CLOSED)
    public static let sessionHandleInvalid = ReturnValue(CKR_SESSION_HANDLE_INVALID)
    public static let tokenNotPresent = ReturnValue(CKR_TOKEN_NOT_PRESENT)
    public static let userAlreadyLoggedIn = ReturnValue(CKR_USER_ALREADY_LOGGED_IN)
    public static let userNotLoggedIn = ReturnValue(CKR_USER_NOT_LOGGED_IN)
    public static let wrappingKeySizeRange = ReturnValue(CKR_WRAPPING_KEY_SIZE_RANGE)
    public static let keySizeRange = ReturnValue(CKR_KEY_SIZE_RANGE)
    public static let curveNotSupported = ReturnValue(CKR_CURVE_NOT_SUPPORTED)
    public static let templateInconsistent = ReturnValue(CKR_TEMPLATE_INCONSISTENT)
    public static let keyHandleInvalid = ReturnValue(CKR_KEY_HANDLE_INVALID)
    public static let objectHandleInvalid = ReturnValue(CKR_OBJECT_HANDLE_INVALID)
    public static let wrappingKeyHandleInvalid = ReturnValue(CKR_WRAPPING_KEY_HANDLE_INVALID)
    public static let domainParamsInvalid = ReturnValue(CKR_DOMAIN_PARAMS_INVALID)
    public static let attributeValueInvalid = ReturnValue(CKR_ATTRIBUTE_VALUE_INVALID)
    public static let attributeReadOnly = ReturnValue(CKR_ATTRIBUTE_READ_ONLY)
    public static let templateIncomplete = ReturnValue(CKR_TEMPLATE_INCOMPLETE)
    public static let generalError = ReturnValue(CKR_GENERAL_ERROR)
    public static let functionFailed = ReturnValue(CKR_FUNCTION_FAILED)
    public static let hostMemory = ReturnValue(CKR_HOST_MEMORY)
    public static let deviceMemory = ReturnValue(CKR_DEVICE_MEMORY)
    public static let pinLenRange = ReturnValue(CKR_PIN_LEN_RANGE)
    public static let pinExpired = ReturnValue(CKR_PIN_EXPIRED)
    public static let pinInvalid = ReturnValue(CKR_PIN_INVALID)
    public static let tokenWriteProtected = ReturnValue(CKR_TOKEN_WRITE_PROTECTED)
    public static let tokenNotRecognized = ReturnValue(CKR_TOKEN_NOT_RECOGNIZED)
    public static let userTypeInvalid = ReturnValue(CKR_USER_TYPE_INVALID)
    public static let userPinNotInitialized = ReturnValue(CKR_USER_PIN_NOT_INITIALIZED)
    public static let cryptokiNotInitialized = ReturnValue(CKR_CRYPTOKI_NOT_INITIALIZED)
    public static let sessionCount = ReturnValue(CKR_SESSION_COUNT)
    public static let sessionReadOnly = ReturnValue(CKR_SESSION_READ_ONLY)
    public static let keyTypeInconsistent = ReturnValue(CKR_KEY_TYPE_INCONSISTENT)
    public static let keyFunctionNotPermitted = ReturnValue(CKR_KEY_FUNCTION_NOT_PERMITTED)
    public static let wrappingKeyTypeInconsistent = ReturnValue(CKR_WRAPPING_KEY_TYPE_INCONSISTENT)
    public static let needToCreateThreads = ReturnValue(CKR_NEED_TO_CREATE_THREADS)
    public static let canNotLock = ReturnValue(CKR_CANT_LOCK)

    /// Codes after which a session or login is gone and must be re-established.
    public var meansSessionLost: Bool {
        [Self.deviceRemoved, .tokenNotPresent, .sessionHandleInvalid, .sessionClosed, .userNotLoggedIn]
            .contains(self)
    }
}
