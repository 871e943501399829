import Foundation
import Synchronization

/// Fresh token directories for the two real PKCS#11 modules the tests use.
public enum SoftHSM {
    public static let module: String = ["/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"]
        .first { FileManager.default.fileExists(atPath: $0) } ?? "/usr/lib/softhsm/libsofthsm2.so"
    public static var available: Bool { FileManager.default.fileExists(atPath: module) }

    public struct Token: Sendable {
        public let conf: String
        public let label: String
        public let pinFile: String
        public let pin: String
        public var environment: [String: String] {
            var e = ProcessInfo.processInfo.environment
            e["SOFTHSM2_CONF"] = conf
            return e
        }
    }

    /// A new SoftHSM token in `dir`, initialised with softhsm2-util (test PINs only).
    public static func makeToken(in dir: TempDir, label: String = "test-token", pin: String = "123456", pinFileContents: String? = nil) throws -> Token {
        try FileManager.default.createDirectory(atPath: dir.file("tokens"), withIntermediateDirectories: true)
        let conf = dir.write("softhsm2.conf", "directories.tokendir = \(dir.file("tokens"))\nobjectstore.backend = file\nlog.level = ERROR\n")
        var env = ProcessInfo.processInfo.environment
        env["SOFTHSM2_CONF"] = conf
        try Tools.check("softhsm2-util", ["--init-token", "--free", "--label", label, "--so-pin", "12345678", "--pin", pin], environment: env)
        let pinFile = dir.write("pin", pinFileContents ?? pin + "\n")
        return Token(conf: conf, label: label, pinFile: pinFile, pin: pin)
    }
}

public enum NSSSoftokn {
    public static let module = "/usr/lib/x86_64-linux-gnu/libsoftokn3.so"
    public static var available: Bool { FileManager.default.fileExists(atPath: module) }
    /// The token of the key database slot (persistent keys; needs the password).
    public static let tokenLabel = "NSS Certificate DB"
    /// The same database's token in FIPS mode, reached only through `FC_GetFunctionList`.
    public static let fipsTokenLabel = "NSS FIPS 140-2 Certificate DB"

    public struct Database: Sendable {
        public let directory: String
        public let passwordFile: String
        public var initArgs: String { "configdir='sql:\(directory)' certPrefix='' keyPrefix='' secmod='secmod.db' flags=" }
    }

    /// A new NSS database with a password (certutil reads it from a file, not argv); with `fips`,
    /// marked FIPS by `modutil -fips true` (its pkcs11.txt then says Flags=internal,FIPS,critical).
    public static func makeDatabase(in dir: TempDir, password: String = "nss-test-pass", fips: Bool = false) throws -> Database {
        let db = dir.file("nssdb")
        try FileManager.default.createDirectory(atPath: db, withIntermediateDirectories: true)
        let pw = dir.write("nss-password", password + "\n")
        try Tools.check("certutil", ["-N", "-d", "sql:\(db)", "-f", pw])
        if fips { try Tools.check("modutil", ["-fips", "true", "-dbdir", "sql:\(db)", "-force"]) }
        return Database(directory: db, passwordFile: pw)
    }
}

/// The forwarding PKCS#11 module of Tests/modules (C, built here with cc): forwards to a real
/// module, and on command lies about OAEP hashes or fails calls.
public enum ForwardingModule {
    /// The built module's path; held while it is built, so it is built once.
    private static let built = Mutex<String?>(nil)
    private static let buildDir = TempDir("byokd-modules")

    /// Builds the module once per test run and returns the path of the shared object.
    public static func path() throws -> String {
        try built.withLock { built in
            if let built { return built }
            let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("modules/forwarding_module.c").path
            let out = buildDir.file("libbyok_forwarding.so")
            let cflags = try Tools.check("pkg-config", ["--cflags", "p11-kit-1"]).out.split(separator: " ").map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
            try Tools.check("cc", ["-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o", out, source] + cflags + ["-ldl", "-lpthread"])
            built = out
            return out
        }
    }

    /// Environment for a process loading the module: forward to `realModule`, optionally lie,
    /// optionally read faults from `faultFile`.
    /// `extra` sets the module's other variables (BYOK_TEST_NULL_FUNCTIONS, BYOK_TEST_HIDE_MECHANISMS,
    /// BYOK_TEST_CLEAR_MECHANISM_FLAGS, BYOK_TEST_INITIALIZE_RV; see forwarding_module.c).
    public static func environment(forwardingTo realModule: String, lieOAEPSHA1: Bool = false, faultFile: String? = nil,
                                   lieFile: String? = nil, base: [String: String] = ProcessInfo.processInfo.environment,
                                   extra: [String: String] = [:]) -> [String: String] {
        var e = base.merging(extra) { $1 }
        e["BYOK_TEST_FORWARD_TO"] = realModule
        if lieOAEPSHA1 { e["BYOK_TEST_LIE_OAEP_SHA1"] = "1" }
        if let lieFile { e["BYOK_TEST_LIE_FILE"] = lieFile }
        if let faultFile { e["BYOK_TEST_FAULT_FILE"] = faultFile }
        return e
    }

    /// Writes the fault file atomically (the module reads it on every call).
    public static func setFaults(_ lines: [String], file: String) throws {
        let tmp = file + ".new"
        try (lines.joined(separator: "\n") + "\n").write(toFile: tmp, atomically: false, encoding: .utf8)
        guard rename(tmp, file) == 0 else { throw FixtureError("cannot rename \(tmp)") }
    }
}
