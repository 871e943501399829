/// A PKCS#11 entry point byokd calls, named as the spec names it. Errors carry one, so a message
/// says which call failed (`C_WrapKey: PKCS11 error: CKR_KEY_UNEXTRACTABLE`), and `Module.call`
/// takes one next to the `CK_FUNCTION_LIST` field it invokes.
public enum Function: String, CaseIterable, CustomStringConvertible, Sendable {
    // General purpose, slots and tokens
    case initialize = "C_Initialize"
    case finalize = "C_Finalize"
    case getInfo = "C_GetInfo"
    case getFunctionList = "C_GetFunctionList"
    /// PKCS#11 3.0's entry point; called before there is a function list, like `C_GetFunctionList`.
    case getInterface = "C_GetInterface"
    case getSlotInfo = "C_GetSlotInfo"
    case getSlotList = "C_GetSlotList"
    case getTokenInfo = "C_GetTokenInfo"
    case getMechanismList = "C_GetMechanismList"
    case getMechanismInfo = "C_GetMechanismInfo"
    case initToken = "C_InitToken"
    case initPIN = "C_InitPIN"
    // Sessions
    case openSession = "C_OpenSession"
    case closeSession = "C_CloseSession"
    case getSessionInfo = "C_GetSessionInfo"
    case login = "C_Login"
    case logout = "C_Logout"
    // Objects
    case createObject = "C_CreateObject"
    case destroyObject = "C_DestroyObject"
    case getAttributeValue = "C_GetAttributeValue"
    case findObjectsInit = "C_FindObjectsInit"
    case findObjects = "C_FindObjects"
    case findObjectsFinal = "C_FindObjectsFinal"
    // Cryptographic operations
    case encryptInit = "C_EncryptInit"
    case encrypt = "C_Encrypt"
    case signInit = "C_SignInit"
    case sign = "C_Sign"
    // Key management, random numbers
    case generateKey = "C_GenerateKey"
    case generateKeyPair = "C_GenerateKeyPair"
    case wrapKey = "C_WrapKey"
    case unwrapKey = "C_UnwrapKey"
    case generateRandom = "C_GenerateRandom"

    /// The C name, e.g. `C_WrapKey`.
    public var description: String { rawValue }
}
