import ByokAPI
import ByokDaemon
import Foundation

/// Where byokd keeps its state and listens when nothing says, and the check, before the token is
/// touched, that it can write both: root gets the system paths of the units, systemd's
/// `$STATE_DIRECTORY` wins, any other user gets XDG paths (DefaultPaths), and a place byokd cannot
/// use is a sentence naming the flag to give, with STATE_DIR_UNUSABLE or SOCKET_UNAVAILABLE.
enum Startup {
    static func prepare(_ settings: Configuration, environment env: [String: String] = ProcessInfo.processInfo.environment,
                        euid: uid_t = geteuid()) throws -> Configuration {
        var c = settings
        let passed = env["LISTEN_PID"].flatMap(Int32.init) == getpid() && (env["LISTEN_FDS"].flatMap(Int.init) ?? 0) >= 1
        if c.stateDir == nil {
            if let dir = env["STATE_DIRECTORY"]?.split(separator: ":").first.map(String.init), dir.hasPrefix("/") {
                c.stateDir = dir
            } else if euid != 0 {
                guard let dir = DefaultPaths.userStateDir(env) else {
                    throw ByokError(.stateDirUnusable, "neither XDG_STATE_HOME nor HOME says where a user's byokd keeps its state; \(StartupFailure.hint("--state-dir DIR"))")
                }
                c.stateDir = dir
            }
        }
        if c.socket == nil && !passed && euid != 0 {
            guard let path = DefaultPaths.userSocket(env) else {
                throw ByokError(.socketUnavailable, "XDG_RUNTIME_DIR is not set, so there is no per-user place for the socket and \(DefaultPaths.systemSocket) is root's; \(StartupFailure.hint("--socket PATH")), and give byokctl the same (--socket PATH or BYOKD_SOCKET=PATH)")
            }
            c.socket = path
        }
        let dir = c.resolvedStateDir
        if let why = makeDirectory(dir, mode: 0o700) ?? writable(dir) {
            throw ByokError(.stateDirUnusable, "cannot use the state directory \(dir): \(why); \(StartupFailure.hint("--state-dir DIR"))")
        }
        if !passed {
            let socketDir = PathName.parent(c.resolvedSocket)
            if let why = makeDirectory(socketDir, mode: 0o755) ?? writable(socketDir) {
                throw ByokError(.socketUnavailable, "cannot create the socket \(c.resolvedSocket): \(why); \(StartupFailure.hint("--socket PATH"))")
            }
        }
        return c
    }

    /// mkdir -p; nil when done, else why not.
    static func makeDirectory(_ path: String, mode: mode_t) -> String? {
        var missing: [String] = []
        var d = path
        while !d.isEmpty, d != "/", d != ".", access(d, F_OK) != 0 {
            missing.append(d)
            d = PathName.parent(d)
        }
        for m in missing.reversed() where mkdir(m, mode) != 0 && errno != EEXIST {
            return "cannot create \(m): \(String(cString: strerror(errno)))"
        }
        return nil
    }

    static func writable(_ dir: String) -> String? {
        access(dir, W_OK | X_OK) == 0 ? nil : "\(dir) is not writable (\(String(cString: strerror(errno))))"
    }
}
