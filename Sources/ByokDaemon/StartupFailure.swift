import ByokAPI
import Foundation

/// Start-up failures as an operator reads them: a sentence that names the place and what to do,
/// and a stable code. A place byokd cannot write is the environment's doing, never INTERNAL.
public enum StartupFailure {
    /// The state directory could not be made or written.
    public static func stateDir(_ error: Error, _ dir: String) -> ByokError {
        if let e = error as? ByokError, e.code != .internal { return e }
        return ByokError(.stateDirUnusable, "cannot use the state directory \(dir): \(reason(error)); \(hint("--state-dir DIR"))")
    }

    /// The socket could not be made (bind, or its directory).
    public static func socket(_ error: Error, _ path: String) -> ByokError {
        if let e = error as? ByokError, e.code != .internal { return e }
        return ByokError(.socketUnavailable, "cannot listen on \(path): \(reason(error)); \(hint("--socket PATH"))")
    }

    /// What to add, said for the user byokd runs as.
    public static func hint(_ flag: String) -> String {
        let user = getpwuid(geteuid()).flatMap { $0.pointee.pw_name.map { String(cString: $0) } } ?? "uid \(geteuid())"
        return geteuid() == 0 ? "give \(flag) somewhere root may write"
            : "byokd runs as \(user), not root: give \(flag) in a directory \(user) may write (by default a user's byokd keeps its state in $XDG_STATE_HOME/byokd and its socket in $XDG_RUNTIME_DIR/byokd)"
    }

    static func reason(_ error: Error) -> String {
        if let e = error as? ByokError { return e.message }
        let ns = error as NSError
        if let posix = (ns.userInfo[NSUnderlyingErrorKey] as? NSError), posix.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(posix.code)))
        }
        if ns.domain == NSCocoaErrorDomain {
            switch CocoaError.Code(rawValue: ns.code) {
            case .fileWriteNoPermission, .fileReadNoPermission: return "permission denied"
            case .fileWriteOutOfSpace: return "no space left on the device"
            case .fileWriteVolumeReadOnly: return "the file system is read-only"
            default: break
            }
        }
        return ns.localizedDescription
    }
}
