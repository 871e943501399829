import Foundation
import PKCS11

/// A token loaded in the test process through the PKCS11 layer, logged in: for in-process tests of
/// what sits on sessions (the session pool, the wrapping key cache) and for asking a token directly
/// what it can do, independently of byokd.
public final class LoadedToken {
    public let module: Module
    public let slot: Slot
    public let info: TokenInfo
    /// Logins belong to the application and end with its last session: this one keeps it.
    public let keeper: Session
    /// The SoftHSM token directory, when this is a fresh SoftHSM token.
    public let dir: TempDir?

    /// Loads `module` (SoftHSM reads SOFTHSM2_CONF, so `softHSMConf` is set in this process
    /// first), selects `token` and logs in with the PIN in `pinFile`.
    public init(module path: String, initArgs: String? = nil, softHSMConf: String? = nil, token: String, pinFile: String, dir: TempDir? = nil) throws {
        if let softHSMConf { setenv("SOFTHSM2_CONF", softHSMConf, 1) }
        module = try Module(path, initArgs: initArgs)
        (slot, info) = try TokenSelector(token).select(in: module)
        keeper = try slot.openSession()
        try keeper.login(try PIN(file: pinFile))
        self.dir = dir
    }

    /// A fresh SoftHSM token, loaded and logged in.
    public static func softHSM(label: String = "in-process") throws -> LoadedToken {
        let dir = TempDir("byokd-inproc")
        let t = try SoftHSM.makeToken(in: dir, label: label)
        return try LoadedToken(module: SoftHSM.module, softHSMConf: t.conf, token: label, pinFile: t.pinFile, dir: dir)
    }

    /// Another session of the same application (already logged in).
    public func openSession() throws -> Session { try slot.openSession() }
}
