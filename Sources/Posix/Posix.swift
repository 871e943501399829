import Glibc

/// A system call that failed: its name and the `errno` it left, taken right after the call (before
/// a `close()` or anything else can change it).
public struct Errno: Error, Equatable, Sendable, CustomStringConvertible {
    /// The C error, e.g. `EPIPE`.
    public let code: Int32
    /// The call that failed, e.g. `"write"`.
    public let call: String

    public init(_ code: Int32, call: String) {
        self.code = code
        self.call = call
    }

    /// What strerror(3) says, e.g. "Broken pipe": the text byokd's error messages carry.
    public var message: String { String(cString: strerror(code)) }

    /// `write: Broken pipe`.
    public var description: String { "\(call): \(message)" }
}

/// The one way byokd makes blocking I/O calls: interrupted calls (`EINTR`) are made again, short
/// reads and writes are continued, and a failure is thrown as an `Errno` captured at once.
public enum Posix {
    /// Makes `body`, one system call that returns -1 and sets `errno` on failure, again for as
    /// long as it fails with `EINTR`; any other failure is thrown with `errno` as it was then.
    @discardableResult
    public static func retrying<T: SignedInteger>(_ call: String, _ body: () -> T) throws(Errno) -> T {
        while true {
            let result = body()
            if result != -1 { return result }
            let code = errno
            if code != EINTR { throw Errno(code, call: call) }
        }
    }

    /// read(2) once into `bytes`: the number of bytes read, 0 at end of file.
    public static func read(_ fd: Int32, into bytes: inout [UInt8]) throws(Errno) -> Int {
        try withBytes(&bytes) { (buffer) throws(Errno) in try read(fd, into: buffer) }
    }

    /// recv(2) once into `bytes` (a socket; `flags` such as `MSG_DONTWAIT`): the number of bytes
    /// read, 0 when the peer closed.
    public static func receive(_ fd: Int32, into bytes: inout [UInt8], flags: Int32 = 0) throws(Errno) -> Int {
        try withBytes(&bytes) { (buffer) throws(Errno) in
            try retrying("recv") { recv(fd, buffer.baseAddress, buffer.count, flags) }
        }
    }

    /// Reads until `bytes` is full or the file ends; returns how many bytes were read. With an
    /// `offset`, reads from there (pread(2)) and leaves the file position alone.
    public static func readAll(_ fd: Int32, into bytes: inout [UInt8], at offset: off_t? = nil) throws(Errno) -> Int {
        try withBytes(&bytes) { (buffer) throws(Errno) in
            var done = 0
            while done < buffer.count {
                let rest = UnsafeMutableRawBufferPointer(rebasing: buffer[done...])
                let n: Int
                if let offset {
                    n = try retrying("pread") { pread(fd, rest.baseAddress, rest.count, offset + off_t(done)) }
                } else {
                    n = try read(fd, into: rest)
                }
                if n == 0 { break }
                done += n
            }
            return done
        }
    }

    /// write(2) until every byte is written.
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(Errno) {
        try all("write", bytes) { write(fd, $0, $1) }
    }

    /// send(2) on a socket until every byte is sent, with `MSG_NOSIGNAL`: a peer that went away is
    /// an `EPIPE` error, not a SIGPIPE.
    public static func sendAll(_ fd: Int32, _ bytes: [UInt8]) throws(Errno) {
        try all("send", bytes) { send(fd, $0, $1, Int32(MSG_NOSIGNAL)) }
    }

    private static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int {
        try retrying("read") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    /// Makes `transfer(start, count)` until it has taken every byte, continuing after short counts.
    private static func all(_ call: String, _ bytes: [UInt8], _ transfer: (UnsafeRawPointer, Int) -> Int) throws(Errno) {
        try bytes.withUnsafeBytes { raw in
            Result { () throws(Errno) in
                var done = 0
                while done < raw.count {
                    done += try retrying(call) { transfer(raw.baseAddress! + done, raw.count - done) }
                }
            }
        }.get()
    }

    /// Array's withUnsafe*Bytes only rethrow an untyped error: the Errno is carried out in a Result.
    private static func withBytes<R>(_ bytes: inout [UInt8], _ body: (UnsafeMutableRawBufferPointer) throws(Errno) -> R) throws(Errno) -> R {
        try bytes.withUnsafeMutableBytes { raw in Result { () throws(Errno) in try body(raw) } }.get()
    }
}
