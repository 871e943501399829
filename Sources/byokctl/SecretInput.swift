import ByokAPI
import Foundation

/// Secrets byokctl reads: from the terminal without echo, or from a file. Never from argv or the
/// environment. The caller wipes the bytes.
enum SecretInput {
    static func file(_ path: String) throws -> [UInt8] {
        guard var data = FileManager.default.contents(atPath: path).map([UInt8].init) else {
            throw ByokError(.inputUnreadable, "cannot read \(path)")
        }
        if data.last == 10 { data.removeLast(); if data.last == 13 { data.removeLast() } }
        guard !data.isEmpty, !data.contains(10), !data.contains(13) else {
            throw ByokError(.badRequest, "\(path) must hold the PIN on one line")
        }
        return data
    }

    static func terminal(prompt: String) throws -> [UInt8] {
        let fd = open("/dev/tty", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw ByokError(.badRequest, "no terminal to read the PIN from; give --so-pin-file FILE") }
        defer { close(fd) }
        var old = termios()
        tcgetattr(fd, &old)
        var quiet = old
        quiet.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(fd, TCSAFLUSH, &quiet)
        defer { tcsetattr(fd, TCSAFLUSH, &old); _ = write(fd, "\n", 1) }
        _ = prompt.withCString { write(fd, $0, strlen($0)) }
        var out: [UInt8] = []
        var c: UInt8 = 0
        while read(fd, &c, 1) == 1, c != 10, c != 13 { out.append(c) }
        c = 0
        guard !out.isEmpty else { throw ByokError(.badRequest, "no PIN was entered") }
        return out
    }
}
