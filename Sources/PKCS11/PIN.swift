import CPKCS11
import Foundation
import Posix

/// A user PIN. It never prints, is never logged, and is wiped after use (`Session.login` wipes it).
///
/// PINs come from a file (one trailing newline is dropped) or from systemd's credential
/// directory (`$CREDENTIALS_DIRECTORY/pin`, from `LoadCredential=pin:...`) — never from argv
/// or an environment variable.
public final class PIN: CustomStringConvertible, CustomDebugStringConvertible, @unchecked Sendable {
    private var buffer: UnsafeMutableBufferPointer<UInt8>
    private var length: Int

    public enum LoadError: Error, CustomStringConvertible {
        case unreadable(path: String, errno: Int32)
        case empty(path: String)
        case tooLong(path: String)
        public var description: String {
            switch self {
            case .unreadable(let p, let e): return "cannot read PIN file \(p): \(String(cString: strerror(e)))"
            case .empty(let p): return "PIN file \(p) is empty"
            case .tooLong(let p): return "PIN file \(p) is longer than 256 bytes; is it the right file?"
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
        if n > 0 && raw[n - 1] == 0x0A { n -= 1 }
        if n > 0 && raw[n - 1] == 0x0D { n -= 1 }
        if n == 0 { throw LoadError.empty(path: path) }
        var bytes = Array(raw.prefix(n))
        self.init(wiping: &bytes)
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
