import Foundation

/// Runs external programs (openssl, softhsm2-util, certutil, curl, byokctl) the way a user would.
public enum Tools {
    public struct Result: Sendable {
        public let code: Int32
        public let stdout: Data
        public let stderr: Data
        public var out: String { String(decoding: stdout, as: UTF8.self) }
        public var err: String { String(decoding: stderr, as: UTF8.self) }
        /// stdout parsed as a JSON object.
        public var json: [String: Any]? { (try? JSONSerialization.jsonObject(with: stdout)) as? [String: Any] }
    }

    /// Runs `executable` (a path, or a name looked up in PATH) and waits. Output goes through files,
    /// so large outputs cannot deadlock a pipe.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String]? = nil,
                           stdin: Data? = nil, cwd: String? = nil) throws -> Result {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("byokd-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let outURL = dir.appendingPathComponent("out"), errURL = dir.appendingPathComponent("err")
        FileManager.default.createFile(atPath: outURL.path, contents: nil)
        FileManager.default.createFile(atPath: errURL.path, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: resolve(executable))
        p.arguments = arguments
        if let environment { p.environment = environment }
        if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let outH = try FileHandle(forWritingTo: outURL), errH = try FileHandle(forWritingTo: errURL)
        p.standardOutput = outH
        p.standardError = errH
        let inPipe = Pipe()
        p.standardInput = stdin == nil ? FileHandle.nullDevice : inPipe
        try p.run()
        if let stdin {
            inPipe.fileHandleForWriting.write(stdin)
            try? inPipe.fileHandleForWriting.close()
        }
        p.waitUntilExit()
        try? outH.close(); try? errH.close()
        return Result(code: p.terminationStatus, stdout: (try? Data(contentsOf: outURL)) ?? Data(),
                      stderr: (try? Data(contentsOf: errURL)) ?? Data())
    }

    public static func resolve(_ name: String) -> String {
        if name.contains("/") { return name }
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(name)"
            if FileManager.default.isExecutableFile(atPath: p) { return p }
        }
        for dir in ["/usr/bin", "/usr/sbin", "/bin", "/usr/local/bin"] where FileManager.default.isExecutableFile(atPath: "\(dir)/\(name)") {
            return "\(dir)/\(name)"
        }
        return name
    }

    /// Runs and fails loudly if the program does not exit 0.
    @discardableResult
    public static func check(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, stdin: Data? = nil) throws -> Result {
        let r = try run(executable, arguments, environment: environment, stdin: stdin)
        guard r.code == 0 else { throw FixtureError("\(executable) \(arguments.joined(separator: " ")) exited \(r.code): \(r.err)") }
        return r
    }
}

public struct FixtureError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// A temporary directory removed when released.
public final class TempDir: Sendable {
    public let path: String
    public init(_ prefix: String = "byokd-test") {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        path = p.map { String(cString: $0) } ?? "/tmp/\(prefix)-\(UUID().uuidString)"
        if p == nil { try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    public func file(_ name: String) -> String { "\(path)/\(name)" }
    @discardableResult
    public func write(_ name: String, _ data: Data) -> String {
        FileManager.default.createFile(atPath: file(name), contents: data)
        return file(name)
    }
    @discardableResult
    public func write(_ name: String, _ text: String) -> String { write(name, Data(text.utf8)) }
}

/// Where `swift build` put byokd and byokctl: next to the test bundle, or `$BYOKD_TEST_BINARIES`
/// (to run the same tests against another build, e.g. the one before a change).
public enum Binaries {
    public static let directory: String = {
        if let dir = ProcessInfo.processInfo.environment["BYOKD_TEST_BINARIES"], !dir.isEmpty { return dir }
        var url = URL(fileURLWithPath: CommandLine.arguments.first ?? ".").resolvingSymlinksInPath()
        for _ in 0..<6 {
            url = url.deletingLastPathComponent()
            if FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("byokd").path) { return url.path }
        }
        return FileManager.default.currentDirectoryPath + "/.build/debug"
    }()
    public static var byokd: String { directory + "/byokd" }
    public static var byokctl: String { directory + "/byokctl" }
}
