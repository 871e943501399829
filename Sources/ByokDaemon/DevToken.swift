import ByokAPI
import Foundation
import Logging
import PKCS11
import Posix

/// The embedded default: a SoftHSM2 token kept in `<state dir>/dev-token`, made on first start,
/// with a random user PIN in `<state dir>/dev-token/pin` (mode 0600). For trying byokd and for
/// development; a ceremony uses a real HSM.
enum DevToken {
    static let label = "byokd-dev"
    static let modulePaths = ["/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so", "/usr/local/lib/softhsm/libsofthsm2.so"]

    /// Prepares the token directory and returns the configuration that uses it.
    static func prepare(_ config: Configuration, logger: Logger) throws -> Configuration {
        let dir = config.resolvedStateDir + "/dev-token"
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/tokens", withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let conf = dir + "/softhsm2.conf"
        try "directories.tokendir = \(dir)/tokens\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n"
            .write(toFile: conf, atomically: true, encoding: .utf8)
        setenv("SOFTHSM2_CONF", conf, 1)
        let pinPath = dir + "/pin"
        if !fm.fileExists(atPath: pinPath) {
            var pin = Array(randomDigits(16).utf8)
            defer { for i in pin.indices { pin[i] = 0 } }
            let fd: Int32
            do { fd = try Posix.retrying("open") { open(pinPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600) } } catch {
                throw ByokError(.tokenError, "cannot create the dev token PIN file \(pinPath): \(error.message)")
            }
            defer { close(fd) }
            do throws(Errno) {
                try Posix.writeAll(fd, pin)
                try Posix.retrying("fsync") { fsync(fd) }
            } catch {
                unlink(pinPath)  // a partial PIN file would be taken for the PIN on the next start
                throw ByokError(.tokenError, "cannot write the dev token PIN file \(pinPath): \(error.message)")
            }
        }
        guard let module = config.module ?? modulePaths.first(where: { fm.fileExists(atPath: $0) }) else {
            throw ByokError(.tokenUnavailable, "the dev token needs SoftHSM2 (`apt-get install softhsm2`); no libsofthsm2.so found in \(modulePaths.joined(separator: ", "))")
        }
        var c = config
        c.module = module
        c.token = label
        c.pinFile = pinPath
        c.initArgs = nil
        try initializeIfNeeded(module: module, pinPath: pinPath, logger: logger)
        return c
    }

    static func initializeIfNeeded(module path: String, pinPath: String, logger: Logger) throws {
        let module = try Module(path)
        let slots = try module.slots()
        if try slots.contains(where: { try $0.tokenInfo().label == label && $0.tokenInfo().initialized }) { return }
        guard let free = try slots.first(where: { try !$0.tokenInfo().initialized }) else {
            throw ByokError(.tokenUnavailable, "SoftHSM offers no free slot to make the dev token in")
        }
        // The SO PIN is used twice (C_InitToken, then C_Login as SO for C_InitPIN) and never stored.
        let soText = randomDigits(24)
        var forInit = Array(soText.utf8), forLogin = Array(soText.utf8)
        try free.initToken(soPIN: PIN(wiping: &forInit), label: label)
        // SoftHSM renumbers its slots after C_InitToken: look the token up again.
        guard let slot = try module.slots().first(where: { try $0.tokenInfo().label == label }) else {
            throw ByokError(.tokenUnavailable, "SoftHSM did not show the dev token after initialising it")
        }
        let session = try slot.openSession()
        defer { session.close() }
        try session.loginSecurityOfficer(PIN(wiping: &forLogin))
        try session.initUserPIN(PIN(file: pinPath))
        try? session.logout()
        logger.info("made a SoftHSM dev token", metadata: ["label": "\(label)"])
    }

    static func randomDigits(_ n: Int) -> String {
        var bytes = [UInt8](repeating: 0, count: n)
        if let fd = try? Posix.retrying("open", { open("/dev/urandom", O_RDONLY | O_CLOEXEC) }) {
            _ = try? Posix.readAll(fd, into: &bytes)
            close(fd)
        }
        return String(bytes.map { Character(String($0 % 10)) })
    }
}
