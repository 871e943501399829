import ByokAPI
import Foundation
import Logging

/// byokd's log lines: one line per event on stderr (journald under systemd), with every message
/// and metadata value escaped (`Display.escaped`), so a key label or KMS key id holding a newline
/// or an escape sequence cannot forge a line or repaint a terminal.
public struct SafeLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    let label: String
    private let write: @Sendable (String) -> Void

    public init(label: String, level: Logger.Level, write: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.label = label
        self.logLevel = level
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?, source: String,
                    file: String, function: String, line: UInt) {
        let all = extra.map { metadata.merging($0) { $1 } } ?? metadata
        var text = "\(Timestamp.string(Date())) \(level) \(label): \(Display.escaped(message.description))"
        for (k, v) in all.sorted(by: { $0.key < $1.key }) { text += " \(Display.escaped(k))=\(Display.escaped("\(v)"))" }
        write(text + "\n")
    }
}
