import ByokAPI
import Foundation
import Logging
import Posix

/// byokd's log lines: one line per event on stderr (journald under systemd), with every message
/// and metadata value escaped (`Display.escaped`), so a key label or KMS key id holding a newline
/// or an escape sequence cannot forge a line or repaint a terminal.
///
/// On a terminal or into a file a line is `TIME LEVEL LABEL: MESSAGE k=v`. When stderr is
/// journald's stream (systemd sets `JOURNAL_STREAM` to that stream's device:inode), a line is
/// `<PRIORITY>MESSAGE k=v` (sd-daemon(3)): journald takes the syslog priority from the prefix,
/// so `journalctl -p warning` works, and stamps the time itself.
public struct SafeLogHandler: LogHandler {
    public enum Format: Sendable { case plain, journald }

    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    let label: String
    let format: Format
    private let write: @Sendable (String) -> Void

    public init(label: String, level: Logger.Level, format: Format = Format.detect(),
                write: @escaping @Sendable (String) -> Void = { try? Posix.writeAll(2, Array($0.utf8)) }) {
        self.label = label
        self.logLevel = level
        self.format = format
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?, source: String,
                    file: String, function: String, line: UInt) {
        let all = extra.map { metadata.merging($0) { $1 } } ?? metadata
        var text: String
        switch format {
        case .plain: text = "\(Timestamp.string(Date())) \(level) \(label): "
        case .journald: text = "<\(Self.priority(level))>" + (label == "byokd" ? "" : "\(label): ")
        }
        text += Display.escaped(message.description)
        for (k, v) in all.sorted(by: { $0.key < $1.key }) { text += " \(Display.escaped(k))=\(Display.escaped("\(v)"))" }
        write(text + "\n")
    }

    /// The syslog priority journald files a level under (sd-daemon(3), syslog(3)).
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }
}

extension SafeLogHandler.Format {
    /// `.journald` when fd 2 is the stream `JOURNAL_STREAM` names (systemd.exec(5): compare its
    /// device and inode, since the variable is inherited by children whose stderr may differ).
    public static func detect(environment: [String: String] = ProcessInfo.processInfo.environment, fd: Int32 = 2) -> Self {
        guard let stream = environment["JOURNAL_STREAM"] else { return .plain }
        let parts = stream.split(separator: ":")
        guard parts.count == 2, let dev = UInt64(parts[0]), let ino = UInt64(parts[1]) else { return .plain }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return .plain }
        return UInt64(st.st_dev) == dev && UInt64(st.st_ino) == ino ? .journald : .plain
    }
}
