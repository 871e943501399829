import BYOK
import ByokDaemon
import Foundation
import Logging
import Synchronization
import TestSupport
import XCTest

/// Under systemd (JOURNAL_STREAM names byokd's stderr) a log line carries its syslog priority and no
/// timestamp of its own; everywhere else it is the plain line. Escaping is the same in both.
final class JournaldLogTests: XCTestCase {
    final class Sink: Sendable {
        private let lines = Mutex("")
        var text: String { lines.withLock { $0 } }
        func append(_ line: String) { lines.withLock { $0 += line } }
    }

    func testJournaldLinesCarryThePriorityAndNoTimestamp() {
        let sink = Sink()
        let logger = Logger(label: "byokd") { label in SafeLogHandler(label: label, level: .debug, format: .journald) { sink.append($0) } }
        logger.warning("algorithm disabled", metadata: ["label": "k\n<0>forged"])
        logger.critical("cannot start")
        logger.info("listening")
        logger.debug("detail")
        XCTAssertEqual(sink.text, "<4>algorithm disabled label=k\\n<0>forged\n<2>cannot start\n<6>listening\n<7>detail\n")
    }

    func testPlainLinesAreTimestamped() {
        let sink = Sink()
        let logger = Logger(label: "byokd") { label in SafeLogHandler(label: label, level: .info, format: .plain) { sink.append($0) } }
        logger.notice("stopped")
        XCTAssertNotNil(sink.text.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ notice byokd: stopped\n$"#, options: .regularExpression), sink.text)
    }

    func testTheJournalIsRecognisedByTheStreamsDeviceAndInode() throws {
        let dir = TempDir()
        let path = dir.write("stream", "")
        let fd = open(path, O_WRONLY)
        defer { close(fd) }
        var st = stat()
        XCTAssertEqual(fstat(fd, &st), 0)
        let mine = "\(st.st_dev):\(st.st_ino)"
        XCTAssertEqual(SafeLogHandler.Format.detect(environment: ["JOURNAL_STREAM": mine], fd: fd), .journald)
        XCTAssertEqual(SafeLogHandler.Format.detect(environment: ["JOURNAL_STREAM": "\(st.st_dev):\(st.st_ino + 1)"], fd: fd), .plain,
                       "a JOURNAL_STREAM inherited by a process whose stderr goes elsewhere")
        XCTAssertEqual(SafeLogHandler.Format.detect(environment: [:], fd: fd), .plain)
    }
}

/// byokctl's own list of wrapping algorithms (help, completion, checks) is the BYOK layer's.
final class ClientValuesTests: XCTestCase {
    func testByokctlOffersExactlyTheAlgorithmsByokdProduces() throws {
        let help = try Tools.run(Binaries.byokctl, ["wrap", "--help"]).out.replacingOccurrences(of: "\n", with: " ")
            .replacingOccurrences(of: #" +"#, with: " ", options: .regularExpression)
        XCTAssertTrue(help.contains(WrappingAlgorithm.usable.map(\.rawValue).joined(separator: ", ") + " (as given"), help)
    }
}
