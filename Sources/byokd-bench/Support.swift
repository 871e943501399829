import Foundation
import Synchronization

/// Latency samples (seconds) and their summary.
struct Samples {
    var values: [Double] = []
    mutating func add(_ v: Double) { values.append(v) }
    func percentile(_ p: Double) -> Double {
        let s = values.sorted()
        guard !s.isEmpty else { return .nan }
        return s[min(s.count - 1, Int((Double(s.count - 1) * p).rounded()))]
    }
    var median: Double { percentile(0.5) }
    var p99: Double { percentile(0.99) }
    var total: Double { values.reduce(0, +) }
}

@inline(__always) func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

/// Seconds `body` takes.
@inline(__always) func timed(_ body: () throws -> Void) rethrows -> Double {
    let t0 = now()
    try body()
    return now() - t0
}

/// Runs a tool to its end and returns its output; throws if it fails (setup only, never timed).
func run(_ exe: String, _ args: [String], env: [String: String]? = nil) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe.contains("/") ? exe : "/usr/bin/" + exe)
    p.arguments = args
    if let env { p.environment = env }
    let out = Pipe()
    p.standardOutput = out
    p.standardError = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    guard p.terminationStatus == 0 else { throw BenchError("\(exe) \(args.joined(separator: " ")) failed: \(text)") }
    return text
}

/// Starts a process with posix_spawn (stdout and stderr to /dev/null unless `fd3` is passed as 3);
/// returns its pid. The cheapest way to start one, for the process timings.
func spawn(_ argv: [String], env: [String: String], fd3: Int32? = nil) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    if let fd3 { posix_spawn_file_actions_adddup2(&actions, fd3, 3) }
    let cargs = argv.map { strdup($0) } + [nil]
    let cenv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { cargs.forEach { free($0) }; cenv.forEach { free($0) } }
    var pid: pid_t = 0
    guard posix_spawn(&pid, argv[0], &actions, nil, cargs, cenv) == 0 else { throw BenchError("cannot start \(argv[0])") }
    return pid
}

/// Runs a process to its end and returns the seconds from spawn to exit; throws unless it exits 0.
func timedProcess(_ argv: [String], env: [String: String]) throws -> Double {
    let t0 = now()
    let pid = try spawn(argv, env: env)
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    let elapsed = now() - t0
    guard status == 0 else { throw BenchError("\(argv.joined(separator: " ")) failed (wait status \(status))") }
    return elapsed
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

func makeTempDir(_ prefix: String) -> String {
    var t = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
    return t.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
}

/// A process's memory from /proc (bytes): resident, peak resident, and anonymous resident (heap,
/// stacks: what is the process's own, as opposed to mapped library text).
struct RSS {
    var current = 0, peak = 0, anon = 0

    init() {}
    init(pid: Int32) {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return }
        func field(_ name: String) -> Int {
            for line in s.split(separator: "\n") where line.hasPrefix(name) {
                return (Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0) * 1024
            }
            return 0
        }
        current = field("VmRSS:")
        peak = field("VmHWM:")
        anon = field("RssAnon:")
    }
}

/// Counts the wraps byokd answered, in every measurement, and reads its memory at exactly the
/// 5,000th and the 10,000th.
final class WrapCounter: Sendable {
    static let readAt = [5_000, 10_000]
    let pid: Int32
    private let state = Mutex<(count: Int, readings: [Int: RSS])>((0, [:]))

    init(pid: Int32) { self.pid = pid }

    func served() {
        state.withLock { s in
            s.count += 1
            if Self.readAt.contains(s.count) { s.readings[s.count] = RSS(pid: pid) }
        }
    }

    var count: Int { state.withLock { $0.count } }
    func reading(at n: Int) -> RSS? { state.withLock { $0.readings[n] } }
}
