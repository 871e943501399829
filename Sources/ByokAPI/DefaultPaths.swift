import Foundation

/// Where byokd and byokctl look when no flag, setting or variable names a place: the systemd units'
/// system paths for root, per-user XDG paths for anyone else, so that a first `byokd --dev` needs
/// no root. One table for both programs and the docs (README, docs/CONFIGURATION.md).
public enum DefaultPaths {
    public static let systemSocket = ByokSocket.defaultPath
    public static let systemStateDir = "/var/lib/byokd"

    /// `$XDG_RUNTIME_DIR/byokd/byokd.sock`, when XDG_RUNTIME_DIR names an absolute path.
    public static func userSocket(_ env: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        guard let run = env["XDG_RUNTIME_DIR"], run.hasPrefix("/") else { return nil }
        return run + "/byokd/byokd.sock"
    }

    /// `$XDG_STATE_HOME/byokd`, else `$HOME/.local/state/byokd` (the XDG Base Directory default).
    public static func userStateDir(_ env: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        if let state = env["XDG_STATE_HOME"], state.hasPrefix("/") { return state + "/byokd" }
        if let home = env["HOME"], home.hasPrefix("/"), home != "/" { return home + "/.local/state/byokd" }
        return nil
    }

    /// The socket byokctl talks to without --socket or $BYOKD_SOCKET: the system daemon's if it
    /// exists, else a byokd the user runs themselves, else the system path (whose error then says
    /// what to do).
    public static func clientSocket(_ env: [String: String] = ProcessInfo.processInfo.environment,
                                    exists: (String) -> Bool = { FileManager.default.fileExists(atPath: $0) }) -> String {
        if exists(systemSocket) { return systemSocket }
        if let user = userSocket(env), exists(user) { return user }
        return systemSocket
    }
}
