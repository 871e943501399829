import CPKCS11
import Foundation
import Posix

/// A user PIN. It never prints, is never logged, and is wiped after use (`Session.login` wipes it).
///
/// PINs come from a file or from systemd's credential directory (`$CREDENTIALS_DIRECTORY/pin`,
/// from `LoadCredential=pin:...`) — never from argv or an environment variable. The file holds
/// the PIN and at most one trailing newline (`\n` or `\r\n`), which is dropped. Anything else
/// around it (a second newline, a trailing space or tab, a line break or NUL inside) is refused
/// when the file is read, before any `C_Login`: sent to the token, it would be a wrong PIN and
/// spend one of the token's login attempts.
public final class PIN: CustomStringConvertible, CustomDebugStringConvertible, @unchecked Sendable {  // a raw buffer it owns and wipes; used by one login at a time
    private var buffer: UnsafeMutableBufferPointer<UInt8>
    private var length: Int

    public enum LoadError: Error, CustomStringConvertible {
        case unreadable(path: String, errno: Int32)
        case empty(path: String)
        case tooLong(path: String)
        /// Bytes other than one trailing newline around the PIN; `what` says which, never the PIN.
        case malformed(path: String, what: String)
        public var description: String {
            switch self {
            case .unreadable(let p, let e): return "cannot read PIN file \(p): \(String(cString: strerror(e)))"
            case .empty(let p): return "PIN file \(p) is empty"
            case .tooLong(let p): return "PIN file \(p) is longer than 256 bytes; is it the right file?"
            case .malformed(let p, let what):
                return "PIN file \(p) \(what); byokd takes the PIN followed by at most one newline and refuses anything else before trying it, so no login attempt is spent on it: fix the file"
            }
        }
    }

    /// Takes the bytes and wipes the caller's copy.
    public init(wiping bytes: inout [UInt8]) {
        buffer = .allocate(capacity: max(bytes.count, 1))
        _ = buffer.initialize(from: bytes)
        length = bytes.count
        bytes.withUnsafeMutableBytes { byok_secure_zero($0.baseAddress, $0.count) }
    }

    /// Reads a PIN file with `open`/`read` (no intermediate String copies).
    public convenience init(file path: String) throws {
        var raw = [UInt8](repeating: 0, count: 258)
        defer { raw.withUnsafeMutableBytes { byok_secure_zero($0.baseAddress, $0.count) } }
        var n: Int
        do throws(Errno) {
            let fd = try Posix.retrying("open") { open(path, O_RDONLY | O_CLOEXEC) }
            defer { close(fd) }
            n = try Posix.readAll(fd, into: &raw)
        } catch {
            throw LoadError.unreadable(path: path, errno: error.code)
        }
        if n > 257 { throw LoadError.tooLong(path: path) }
        if n > 0 && raw[n - 1] == 0x0A {
            n -= 1
            if n > 0 && raw[n - 1] == 0x0D { n -= 1 }
        }
        if n == 0 { throw LoadError.empty(path: path) }
        if let what = Self.problem(raw[0..<n]) { throw LoadError.malformed(path: path, what: what) }
        var bytes = Array(raw.prefix(n))
        self.init(wiping: &bytes)
    }

    /// What is wrong with the bytes left once one trailing newline is dropped, if anything. Names
    /// the kind of byte and where, never the PIN.
    static func problem(_ pin: ArraySlice<UInt8>) -> String? {
        let last = pin[pin.index(before: pin.endIndex)]
        if last == 0x0A || last == 0x0D { return "ends with a line break beyond the one newline byokd drops (e.g. two newlines)" }
        if last == 0x20 || last == 0x09 { return "ends with a space or tab after the PIN" }
        if pin.contains(where: { $0 == 0x0A || $0 == 0x0D }) { return "has a line break inside the PIN (several lines)" }
        if pin.contains(0) { return "holds a NUL byte" }
        return nil
    }

    /// `$CREDENTIALS_DIRECTORY/pin`, when systemd passed one.
    public static func fromCredentials(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> PIN? {
        guard let dir = environment["CREDENTIALS_DIRECTORY"], !dir.isEmpty else { return nil }
        let path = dir + "/pin"
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        return try PIN(file: path)
    }

    func withBytes<R>(_ body: (UnsafeMutablePointer<CK_UTF8CHAR>, Int) throws -> R) rethrows -> R {
        try body(buffer.baseAddress!, length)
    }

    /// Zeroes the PIN. Further logins with it fail with the token's PIN error.
    public func wipe() {
        byok_secure_zero(buffer.baseAddress, buffer.count)
        length = 0
    }

    public var isWiped: Bool { length == 0 }

    deinit {
        wipe()
        buffer.deallocate()
    }

    public var description: String { "PIN(redacted)" }
    public var debugDescription: String { "PIN(redacted)" }
}
