import Foundation

/// Latency samples and their summary.
struct Samples {
    var values: [Double] = []  // seconds
    mutating func add(_ v: Double) { values.append(v) }
    var sorted: [Double] { values.sorted() }
    func percentile(_ p: Double) -> Double {
        let s = sorted
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

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

func makeTempDir(_ prefix: String) -> String {
    var t = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
    return t.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)) }
}

/// Resident set size of a process, from /proc (kB → bytes): current and peak.
func rss(pid: Int32) -> (current: Int, peak: Int, anon: Int) {
    guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return (0, 0, 0) }
    func field(_ name: String) -> Int {
        for line in s.split(separator: "\n") where line.hasPrefix(name) {
            return (Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "0") ?? 0) * 1024
        }
        return 0
    }
    return (field("VmRSS:"), field("VmHWM:"), field("RssAnon:"))
}

func ms(_ s: Double) -> String { String(format: "%.3f", s * 1000) }
