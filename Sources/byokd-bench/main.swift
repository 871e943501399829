import BYOK
import ByokAPI
import ByokClient
import Foundation
import PKCS11
import Posix

// byokd-bench: byokd against a raw C_WrapKey loop on the same token, all figures from one run.
// Usage: byokd-bench [softhsm|nss|all] [--quick] [--json FILE]   (see README, "Performance")

setvbuf(stdout, nil, _IOLBF, 0)
let args = CommandLine.arguments.dropFirst()
let quick = args.contains("--quick")
let which = args.first { !$0.hasPrefix("--") && !$0.hasSuffix(".json") } ?? "all"
let jsonOut = args.firstIndex(of: "--json").flatMap { i in args.index(after: i) < args.endIndex ? args[args.index(after: i)] : nil } ?? "bench-results.json"
let binDir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
let byokdPath = binDir + "/byokd"
let scale = quick ? 0.1 : 1.0
func n(_ x: Int) -> Int { max(20, Int(Double(x) * scale)) }

struct TokenSetup {
    let name: String
    let module: String
    let initArgs: String?
    let tokenLabel: String
    let pinFile: String
    let env: [String: String]
}

/// A fresh SoftHSM token: the dev token `byokd --dev` makes (random PIN in a 0600 file, no PIN on
/// any command line), used afterwards by path like any token.
func softHSM(_ dir: String) throws -> TokenSetup {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: byokdPath)
    p.arguments = ["--dev", "--state-dir", dir, "--socket", dir + "/make.sock", "--log-level", "error"]
    p.standardError = FileHandle(forWritingAtPath: "/dev/null")
    try p.run()
    let deadline = now() + 60
    while now() < deadline, (try? DaemonClient(socketPath: dir + "/make.sock").send("GET", "/v1/status"))?.0 != 200 { usleep(10_000) }
    p.terminate()
    p.waitUntilExit()
    let conf = dir + "/dev-token/softhsm2.conf"
    guard FileManager.default.fileExists(atPath: conf) else { throw BenchError("byokd --dev did not make its token") }
    var env = ProcessInfo.processInfo.environment
    env["SOFTHSM2_CONF"] = conf
    setenv("SOFTHSM2_CONF", conf, 1)
    return TokenSetup(name: "SoftHSM2", module: "/usr/lib/softhsm/libsofthsm2.so", initArgs: nil, tokenLabel: "byokd-dev",
                      pinFile: dir + "/dev-token/pin", env: env)
}

func nss(_ dir: String) throws -> TokenSetup {
    try FileManager.default.createDirectory(atPath: dir + "/nssdb", withIntermediateDirectories: true)
    try "bench-pass\n".write(toFile: dir + "/pw", atomically: true, encoding: .utf8)
    _ = try run("certutil", ["-N", "-d", "sql:\(dir)/nssdb", "-f", dir + "/pw"])
    return TokenSetup(name: "NSS softokn", module: "/usr/lib/x86_64-linux-gnu/libsoftokn3.so",
                      initArgs: "configdir='sql:\(dir)/nssdb' certPrefix='' keyPrefix='' secmod='secmod.db' flags=",
                      tokenLabel: "NSS Certificate DB", pinFile: dir + "/pw", env: ProcessInfo.processInfo.environment)
}

struct Row: Codable {
    var metric: String
    var byokd: Double
    var baseline: Double?
    var ratio: Double?
    var unit: String
    var target: String
    var met: Bool?
}

struct Report: Codable {
    var token: String
    var machine: String
    var date: String
    var algorithm: String
    var rows: [Row]
}

// MARK: Baselines, in process

struct Baseline {
    var wrap: Samples
    var genWrapDestroy: Samples
    var fsync: Samples
    var raw1000: Double
    var hash: HashAlgorithm
    var open: Samples
}

func baseline(_ t: TokenSetup, aws: SoftwareRSAKeyPair, stateDir: String) throws -> Baseline {
    let module = try Module(t.module, initArgs: t.initArgs)
    let (slot, info) = try TokenSelector(t.tokenLabel).select(in: module)
    let session = try slot.openSession()
    if info.loginRequired { try session.login(try PIN(file: t.pinFile)) }
    let wrapper = OnTokenWrap(session: session, token: info)
    let pub = try wrapper.createWrappingKey(aws.publicKey)
    // The wrapped key is a token object, as the keys byokd wraps are (tokens may treat them differently).
    let key = try session.generateKey(.aesKeyGen, [.class(.secretKey), .keyType(.aes), .valueLen(32), .token(true), .private(true),
                                                   .sensitive(true), .extractable(true), .encrypt(true), .label("bench-baseline")])
    defer { try? session.destroyObject(key) }
    var hash = HashAlgorithm.sha256
    if (try? session.wrapKey(.rsaPkcsOaep(hash: .sha256, mgf: .sha256), wrappingKey: pub, key: key)) == nil { hash = .sha1 }
    let mech = Mechanism.rsaPkcsOaep(hash: hash, mgf: hash)
    for _ in 0..<20 { _ = try session.wrapKey(mech, wrappingKey: pub, key: key) }
    var wrap = Samples()
    for _ in 0..<n(2000) {
        let t0 = now()
        _ = try session.wrapKey(mech, wrappingKey: pub, key: key)
        wrap.add(now() - t0)
    }
    let r0 = now()
    for _ in 0..<1000 { _ = try session.wrapKey(mech, wrappingKey: pub, key: key) }
    let raw1000 = now() - r0
    var gwd = Samples()
    let tokenTemplate: [Attribute] = [.class(.secretKey), .keyType(.aes), .valueLen(32), .token(true), .private(true),
                                      .sensitive(true), .extractable(true), .encrypt(true), .label("bench-gen")]
    for _ in 0..<n(300) {
        let t0 = now()
        let k = try session.generateKey(.aesKeyGen, tokenTemplate)
        _ = try session.wrapKey(mech, wrappingKey: pub, key: k)
        try session.destroyObject(k)
        gwd.add(now() - t0)
    }
    // One fdatasync of a small append, on the disk the audit log is on.
    let path = stateDir + "/fsync-baseline"
    let fd = try Posix.retrying("open") { open(path, O_WRONLY | O_APPEND | O_CREAT, 0o600) }
    let line = [UInt8](repeating: 0x61, count: 600) + [10]
    var fs = Samples()
    for _ in 0..<n(500) {
        let t0 = now()
        try Posix.writeAll(fd, line)
        try Posix.retrying("fdatasync") { fdatasync(fd) }
        fs.add(now() - t0)
    }
    close(fd)
    unlink(path)
    session.close()
    return Baseline(wrap: wrap, genWrapDestroy: gwd, fsync: fs, raw1000: raw1000, hash: hash, open: Samples())
}

/// What the token itself costs a starting process: load, C_Initialize, open the sessions, C_Login.
func openCost(_ t: TokenSetup) throws -> Samples {
    var open = Samples()
    for _ in 0..<5 {
        let t0 = now()
        let m = try Module(t.module, initArgs: t.initArgs)
        let (s, i) = try TokenSelector(t.tokenLabel).select(in: m)
        let sessions = try (0..<4).map { _ in try s.openSession() }
        if i.loginRequired { try sessions[0].login(try PIN(file: t.pinFile)) }
        open.add(now() - t0)
        sessions.forEach { $0.close() }
    }
    return open
}

// MARK: byokd, over its socket

final class Daemon {
    let process: Process
    let socket: String
    init(_ t: TokenSetup, dir: String) throws {
        socket = dir + "/byokd.sock"
        process = Process()
        process.executableURL = URL(fileURLWithPath: byokdPath)
        process.arguments = ["--module", t.module, "--token", t.tokenLabel, "--pin-file", t.pinFile, "--socket", socket,
                             "--state-dir", dir + "/state", "--log-level", "warning"] + (t.initArgs.map { ["--init-args", $0] } ?? [])
        process.environment = t.env
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        try process.run()
        let deadline = now() + 60
        while now() < deadline {
            if let s = try? DaemonClient(socketPath: socket).call("GET", "/v1/status", as: StatusResponse.self), s.selfTestAt != nil { return }
            usleep(5000)
        }
        throw BenchError("byokd did not start")
    }
    func stop() { process.terminate(); process.waitUntilExit() }
}

func params(_ aws: SoftwareRSAKeyPair) -> ParametersInput {
    let token = (0..<600).map { _ in UInt8.random(in: 0...255) }
    let json: [String: Any] = ["KeyId": "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000",
                               "PublicKey": Data(aws.publicKey.der).base64EncodedString(), "ImportToken": Data(token).base64EncodedString(),
                               "ParametersValidTo": Date().timeIntervalSince1970 + 86000]
    return ParametersInput(awsJSON: try! JSONSerialization.data(withJSONObject: json).base64EncodedString())
}

func measure(_ t: TokenSetup) throws -> Report {
    let dir = makeTempDir("byokd-bench")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let token = t.name.hasPrefix("Soft") ? try softHSM(dir + "/token") : try nss(dir + "/token")
    try FileManager.default.createDirectory(atPath: dir + "/state", withIntermediateDirectories: true)
    let aws = try SoftwareRSAKeyPair(bits: 3072)
    print("[\(t.name)] baseline: in-process C_WrapKey loop …")
    var base = try baseline(token, aws: aws, stateDir: dir + "/state")
    base.open = try openCost(token)
    let algorithm = base.hash == .sha256 ? "RSAES_OAEP_SHA_256" : "RSAES_OAEP_SHA_1"
    print("[\(t.name)] byokd over its socket (\(algorithm)) …")
    let daemon = try Daemon(token, dir: dir)
    defer { daemon.stop() }
    let startRSS = rss(pid: daemon.process.processIdentifier)
    let client = DaemonClient(socketPath: daemon.socket)
    _ = try client.call("POST", "/v1/keys", GenerateRequest(label: "bench", spec: "SYMMETRIC_DEFAULT"), as: KeyInfo.self)
    let request = WrapRequest(key: "bench", parameters: params(aws), wrappingAlgorithm: algorithm)
    let body = try JSONEncoder().encode(request)
    var wraps = 0
    func wrapOnce(_ c: DaemonClient) throws {
        let (status, data) = try c.send("POST", "/v1/wrap", body: body)
        guard status == 200 else { throw BenchError("wrap answered \(status): \(String(decoding: data, as: UTF8.self))") }
    }
    for _ in 0..<20 { try wrapOnce(client); wraps += 1 }
    var single = Samples()
    for _ in 0..<n(2000) {
        let t0 = now()
        try wrapOnce(client)
        single.add(now() - t0)
        wraps += 1
    }
    let singleThroughput = Double(single.values.count) / single.total

    // 8 concurrent clients, each with its own kept-alive connection.
    let perClient = n(500)
    let lock = NSLock()
    var multi = Samples()
    var failures = 0
    let m0 = now()
    DispatchQueue.concurrentPerform(iterations: 8) { _ in
        let c = DaemonClient(socketPath: daemon.socket)
        var local = Samples()
        for _ in 0..<perClient {
            let t0 = now()
            do { try wrapOnce(c) } catch { lock.lock(); failures += 1; lock.unlock() }
            local.add(now() - t0)
        }
        lock.lock(); multi.values += local.values; lock.unlock()
    }
    let multiThroughput = Double(8 * perClient) / (now() - m0)
    wraps += 8 * perClient
    if failures > 0 { throw BenchError("\(failures) concurrent wraps failed") }

    // generate + wrap over the API.
    var genWrap = Samples()
    for i in 0..<n(300) {
        let t0 = now()
        _ = try client.call("POST", "/v1/keys", GenerateRequest(label: "gw-\(i)", spec: "SYMMETRIC_DEFAULT"), as: KeyInfo.self)
        var r = request
        r.key = "gw-\(i)"
        let (status, _) = try client.send("POST", "/v1/wrap", body: try JSONEncoder().encode(r))
        guard status == 200 else { throw BenchError("generate+wrap answered \(status)") }
        genWrap.add(now() - t0)
        wraps += 1
    }

    // A batch of 1,000 wraps in one request.
    var batchSeconds: Double?
    let batch = BatchWrapRequest(entries: (0..<1000).map { i in BatchWrapRequest.Entry(name: "e\(i)", key: "bench", parameters: request.parameters, wrappingAlgorithm: algorithm) })
    let b0 = now()
    if let results = try? client.batch(batch, onResult: { _ in }), results.count == 1000, results.allSatisfy({ $0.error == nil }) {
        batchSeconds = now() - b0
        wraps += 1000
    }

    // Memory: peak RSS once 5,000 and 10,000 wraps were served.
    var rss5k = (0, 0, 0), rss10k = (0, 0, 0)
    while wraps < 10_000 {
        try wrapOnce(client)
        wraps += 1
        if wraps == 5_000 { rss5k = rss(pid: daemon.process.processIdentifier) }
    }
    if rss5k.0 == 0 { rss5k = rss(pid: daemon.process.processIdentifier) }
    let rssStart = startRSS
    rss10k = rss(pid: daemon.process.processIdentifier)
    daemon.stop()

    // Cold start: process start to the first answered status, own socket and socket activation.
    var cold = Samples(), coldActivated = Samples()
    for i in 0..<5 {
        cold.add(try coldStart(token, dir: dir, activated: false, run: i))
        coldActivated.add(try coldStart(token, dir: dir, activated: true, run: i))
    }

    let wrapBase = base.wrap.median + base.fsync.median
    var rows: [Row] = []
    func row(_ m: String, _ v: Double, _ b: Double?, _ unit: String, _ target: String, _ ok: ((Double, Double?) -> Bool)?) {
        let ratio = b.map { v / $0 }
        rows.append(Row(metric: m, byokd: v, baseline: b, ratio: ratio, unit: unit, target: target, met: ok.map { $0(v, ratio) }))
    }
    row("wrap latency, 1 client, median", single.median * 1000, wrapBase * 1000, "ms", "≤ 1.3× (C_WrapKey + fdatasync)", { _, r in r! <= 1.3 })
    row("wrap latency, 1 client, p99", single.p99 * 1000, (base.wrap.p99 + base.fsync.p99) * 1000, "ms", "", nil)
    row("  baseline parts: C_WrapKey median / fdatasync median", base.wrap.median * 1000, base.fsync.median * 1000, "ms", "", nil)
    row("wrap throughput, 1 client", singleThroughput, 1 / wrapBase, "wraps/s", "", nil)
    row("wrap throughput, 8 clients", multiThroughput, singleThroughput, "wraps/s", "≥ 1.6× 1 client", { _, r in r! >= 1.6 })
    row("wrap latency, 8 clients, median / p99", multi.median * 1000, multi.p99 * 1000, "ms", "", nil)
    row("generate + wrap, median", genWrap.median * 1000, (base.genWrapDestroy.median + 2 * base.fsync.median) * 1000, "ms", "(baseline: token-object generate+wrap+destroy + 2 fdatasync)", nil)
    if let batchSeconds {
        row("batch of 1,000 wraps, total", batchSeconds * 1000, base.raw1000 * 1000, "ms", "≤ 1.2× 1,000 raw wraps", { _, r in r! <= 1.2 })
    } else {
        rows.append(Row(metric: "batch of 1,000 wraps", byokd: -1, baseline: base.raw1000 * 1000, ratio: nil, unit: "ms", target: "not available", met: false))
    }
    row("cold start to first status, median (own socket)", cold.median * 1000, base.open.median * 1000, "ms", "< 150 ms (baseline: load + C_Initialize + 4 sessions + C_Login)", { v, _ in v < 150 })
    row("cold start to first status, median (socket activation)", coldActivated.median * 1000, base.open.median * 1000, "ms", "< 150 ms", { v, _ in v < 150 })
    row("peak RSS after 10,000 wraps (incl. the batch)", Double(rss10k.1) / 1_048_576, Double(rssStart.0) / 1_048_576, "MiB", "< 40 MiB (baseline: RSS at start)", { v, _ in v < 40 })
    row("  of which anonymous (heap, stacks), now", Double(rss10k.2) / 1_048_576, Double(rssStart.2) / 1_048_576, "MiB", "(the rest is shared library text)", nil)
    row("RSS growth, 5,000th → 10,000th wrap", Double(rss10k.0 - rss5k.0) / 1_048_576, nil, "MiB", "≈ 0 (< 1 MiB)", { v, _ in v < 1 })

    var u = utsname()
    uname(&u)
    let machine = "\(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory >> 30) GiB, " +
        withUnsafeBytes(of: u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    return Report(token: t.name, machine: machine, date: Timestamp.string(Date()), algorithm: algorithm, rows: rows)
}

/// Spawns byokd and polls until it answers status. With `activated`, the socket is bound here and
/// passed as fd 3 with LISTEN_FDS/LISTEN_PID, as systemd does.
func coldStart(_ t: TokenSetup, dir: String, activated: Bool, run i: Int) throws -> Double {
    let sock = dir + "/cold-\(activated ? "a" : "o")-\(i).sock"
    var argv = [byokdPath, "--module", t.module, "--token", t.tokenLabel, "--pin-file", t.pinFile, "--socket", sock,
                "--state-dir", dir + "/state", "--log-level", "warning"] + (t.initArgs.map { ["--init-args", $0] } ?? [])
    var env = t.env
    var listenFD: Int32 = -1
    if activated {
        listenFD = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        _ = UnixSocketAddress.with(sock) { bind(listenFD, $0, $1) }
        listen(listenFD, 16)
        env["LISTEN_FDS"] = "1"
        // LISTEN_PID must be byokd's pid: a shell sets it to its own and execs byokd in its place.
        argv = ["/bin/sh", "-c", "LISTEN_PID=$$ exec \"$@\"", "sh"] + argv
    }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    if activated { posix_spawn_file_actions_adddup2(&actions, listenFD, 3) }
    var pid: pid_t = 0
    let cargs = argv.map { strdup($0) } + [nil]
    let cenv = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { cargs.forEach { free($0) }; cenv.forEach { free($0) } }
    let t0 = now()
    guard posix_spawn(&pid, argv[0], &actions, nil, cargs, cenv) == 0 else { throw BenchError("posix_spawn failed") }
    if activated { close(listenFD) }
    var elapsed = 0.0
    while true {
        if (try? DaemonClient(socketPath: sock, timeout: 5).send("GET", "/v1/status"))?.0 == 200 { elapsed = now() - t0; break }
        if now() - t0 > 30 { kill(pid, SIGKILL); throw BenchError("cold start did not answer") }
        usleep(500)
    }
    kill(pid, SIGTERM)
    var status: Int32 = 0
    waitpid(pid, &status, 0)
    unlink(sock)
    return elapsed
}

func printTable(_ r: Report) {
    print("\n\(r.token) — \(r.algorithm), RSA-3072 wrapping key, AES-256 key — \(r.machine) — \(r.date)")
    func f(_ v: Double?) -> String { v.map { $0.isNaN ? "-" : String(format: "%.3f", $0) } ?? "" }
    let header = ["metric", "byokd", "baseline", "ratio", "unit", "target", "met"]
    let rows = r.rows.map { [$0.metric, f($0.byokd), f($0.baseline), $0.ratio.map { String(format: "%.2f×", $0) } ?? "", $0.unit, $0.target, $0.met.map { $0 ? "yes" : "NO" } ?? ""] }
    var w = header.map(\.count)
    for row in rows { for (i, c) in row.enumerated() { w[i] = max(w[i], c.count) } }
    for row in [header] + rows { print(row.enumerated().map { $1.padding(toLength: w[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")) }
}

var reports: [Report] = []
do {
    for t in which == "all" ? ["softhsm", "nss"] : [which] {
        let setup = TokenSetup(name: t == "nss" ? "NSS softokn" : "SoftHSM2", module: "", initArgs: nil, tokenLabel: "", pinFile: "", env: [:])
        let r = try measure(setup)
        printTable(r)
        reports.append(r)
    }
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    try enc.encode(reports).write(to: URL(fileURLWithPath: jsonOut))
    print("\nwrote \(jsonOut)")
} catch {
    FileHandle.standardError.write(Data("byokd-bench: \(error)\n".utf8))
    exit(1)
}
