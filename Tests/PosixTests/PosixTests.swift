import Foundation
import Posix
import Synchronization
import XCTest

/// The I/O helper against real pipes and sockets, with real signals interrupting its calls.
final class PosixTests: XCTestCase {
    /// SIGUSR2 with a handler installed without SA_RESTART: a blocking call it interrupts fails
    /// with EINTR (or, for a write that had started, returns short) instead of being restarted.
    private var previous = sigaction()

    override func setUp() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGUSR2, &action, &previous)
    }

    override func tearDown() { sigaction(SIGUSR2, &previous, nil) }

    /// Sends SIGUSR2 to `thread` every 2 ms until `stop` is set, on a thread of its own.
    final class Interrupter: Sendable {
        private let state = Mutex((stopped: false, count: 0))
        /// How many signals were sent so far.
        var sent: Int { state.withLock { $0.count } }
        private let finished = DispatchSemaphore(value: 0)

        init(_ thread: pthread_t) {
            Thread.detachNewThread { [self] in
                while true {
                    if state.withLock({ $0.stopped }) { break }
                    pthread_kill(thread, SIGUSR2)
                    state.withLock { $0.count += 1 }
                    usleep(2_000)
                }
                finished.signal()
            }
        }

        func stop() {
            state.withLock { $0.stopped = true }
            finished.wait()
        }
    }

    /// Runs `body` on this thread while another thread sends it SIGUSR2 every 2 ms.
    func interrupted<R>(_ body: (Interrupter) throws -> R) rethrows -> R {
        let interrupter = Interrupter(pthread_self())
        defer { interrupter.stop() }
        return try body(interrupter)
    }

    func pipe() -> (read: Int32, write: Int32) {
        var fds: [Int32] = [-1, -1]
        XCTAssertEqual(Glibc.pipe(&fds), 0)
        return (fds[0], fds[1])
    }

    func testAReadInterruptedBySignalsIsMadeAgain() throws {
        let p = pipe()
        defer { close(p.read); close(p.write) }
        var byte: [UInt8] = [0]

        // Without the helper, a signal ends the read with EINTR: the setup does interrupt it.
        let (raw, rawErrno) = interrupted { _ in (Glibc.read(p.read, &byte, 1), errno) }
        XCTAssertEqual(raw, -1)
        XCTAssertEqual(rawErrno, EINTR)

        // With it, the read is made again until the byte, written after ten signals, arrives.
        let n = try interrupted { interrupter in
            Thread.detachNewThread {
                while interrupter.sent < 10 { usleep(1_000) }
                _ = Glibc.write(p.write, "x", 1)
            }
            return try Posix.read(p.read, into: &byte)
        }
        XCTAssertEqual(n, 1)
        XCTAssertEqual(byte, [UInt8(ascii: "x")])
    }

    func testWriteAllWritesEverythingThroughAFullPipeWhileInterrupted() throws {
        let p = pipe()
        defer { close(p.read) }
        let F_SETPIPE_SZ: Int32 = 1031  // Linux's, hidden behind _GNU_SOURCE
        XCTAssertEqual(fcntl(p.write, F_SETPIPE_SZ, 4096), 4096)
        let data = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 11) }

        // A reader that drains the pipe slowly, so the writer blocks often and signals cut its
        // writes short.
        let received = Mutex<(bytes: [UInt8], error: Error?)>(([], nil))
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            var chunk = [UInt8](repeating: 0, count: 4096)
            do {
                while true {
                    let n = try Posix.read(p.read, into: &chunk)
                    if n == 0 { break }
                    received.withLock { $0.bytes += chunk[0..<n] }
                    usleep(100)
                }
            } catch { received.withLock { $0.error = error } }
            done.signal()
        }

        // Without the helper, one write() of it all comes back short (or with EINTR).
        let raw = interrupted { _ in data.withUnsafeBytes { Glibc.write(p.write, $0.baseAddress, $0.count) } }
        XCTAssertLessThan(raw, data.count, "a single write was cut short")

        // With it, every byte arrives, in order, after what the single write got through.
        let written = Result { try interrupted { _ in try Posix.writeAll(p.write, data) } }
        close(p.write)
        done.wait()
        try written.get()
        let (bytes, error) = received.withLock { ($0.bytes, $0.error) }
        XCTAssertNil(error)
        let skip = max(raw, 0)
        XCTAssertEqual(bytes.count, skip + data.count)
        XCTAssertTrue(bytes[skip...].elementsEqual(data), "writeAll delivered every byte in order")
    }

    func testReadAllReadsUntilTheEndOrAFullBuffer() throws {
        let p = pipe()
        defer { close(p.read) }
        // Three writes, so that single reads would see them one at a time.
        let writer = Thread {
            for part in ["ab", "cd", "ef"] { _ = Glibc.write(p.write, part, 2); usleep(10_000) }
            close(p.write)
        }
        writer.start()
        var buffer = [UInt8](repeating: 0, count: 16)
        let n = try Posix.readAll(p.read, into: &buffer)
        XCTAssertEqual(n, 6)
        XCTAssertEqual(String(decoding: buffer.prefix(n), as: UTF8.self), "abcdef")

        // From an offset (pread), and stopping when the buffer is full.
        let path = NSTemporaryDirectory() + "posix-\(getpid())"
        XCTAssertTrue(FileManager.default.createFile(atPath: path, contents: Data("0123456789".utf8)))
        defer { unlink(path) }
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        var four = [UInt8](repeating: 0, count: 4)
        XCTAssertEqual(try Posix.readAll(fd, into: &four, at: 3), 4)
        XCTAssertEqual(String(decoding: four, as: UTF8.self), "3456")
    }

    func testAFailureCarriesTheCallAndItsErrno() {
        // A peer that went away: EPIPE from send (MSG_NOSIGNAL, so no SIGPIPE kills the tests).
        var pair: [Int32] = [-1, -1]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair), 0)
        close(pair[1])
        defer { close(pair[0]) }
        XCTAssertThrowsError(try Posix.sendAll(pair[0], Array("hello".utf8))) { error in
            XCTAssertEqual(error as? Errno, Errno(EPIPE, call: "send"))
            XCTAssertEqual("\(error)", "send: Broken pipe")
            XCTAssertEqual((error as? Errno)?.message, "Broken pipe")
        }
        // The error keeps the failing call's errno: closing the descriptor afterwards (which
        // here fails, setting errno to EBADF) does not change what is reported.
        let dir = open(NSTemporaryDirectory(), O_RDONLY | O_DIRECTORY)
        var b: [UInt8] = [0]
        XCTAssertThrowsError(try Posix.read(dir, into: &b)) { error in
            close(dir)
            close(dir)
            XCTAssertEqual(errno, EBADF)
            XCTAssertEqual(error as? Errno, Errno(EISDIR, call: "read"))
            XCTAssertEqual("\(error)", "read: Is a directory")
        }
        XCTAssertThrowsError(try Posix.retrying("close") { close(-1) }) { error in
            XCTAssertEqual((error as? Errno)?.code, EBADF)
        }
    }
}
