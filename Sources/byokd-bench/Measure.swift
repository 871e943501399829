import ByokAPI
import ByokClient
import Foundation
import Synchronization

/// What the measurements of one token share. Every measurement alternates byokd with its baseline
/// (A B A B …) in the same run, so both see the same disk, caches and neighbours.
struct Bench: Sendable {
    let token: TokenSetup
    let dir: String
    let daemon: Daemon
    let floor: Floor
    let counter: WrapCounter
    /// The body of `POST /v1/wrap`, and the files `byokctl wrap` reads for the same wrap.
    let wrapBody: Data
    let algorithm: String
    let paramsFile: String
    let publicKeyDER: String

    /// One wrap over `client`'s kept-alive connection.
    func wrap(_ client: DaemonClient) throws {
        let (status, data) = try client.send("POST", "/v1/wrap", body: wrapBody)
        guard status == 200 else { throw BenchError("wrap answered \(status): \(String(decoding: data, as: UTF8.self))") }
        counter.served()
    }
}

/// 1. One client, kept-alive connection: each round one floor wrap (C_WrapKey + append + fdatasync,
/// timed as one) and one byokd wrap.
func singleClient(_ b: Bench, rounds: Int) throws -> (byokd: Samples, floor: Samples, floorWrap: Samples) {
    let client = DaemonClient(socketPath: b.daemon.socket)
    var byokd = Samples(), floor = Samples(), floorWrap = Samples()
    for _ in 0..<rounds {
        let f = try b.floor.wrapAndSync()
        floor.add(f.total)
        floorWrap.add(f.wrap)
        byokd.add(try timed { try b.wrap(client) })
    }
    return (byokd, floor, floorWrap)
}

/// 2. Memory: one client wraps on up to the 10,000th wrap; byokd's memory is read at exactly the
/// 5,000th and the 10,000th (`WrapCounter`), both in the same steady state, so the growth between
/// them is what 5,000 wraps leave behind.
func memory(_ b: Bench) throws -> (at5k: RSS, at10k: RSS) {
    let client = DaemonClient(socketPath: b.daemon.socket)
    while b.counter.count < 10_000 { try b.wrap(client) }
    guard let at5k = b.counter.reading(at: 5_000), let at10k = b.counter.reading(at: 10_000) else {
        throw BenchError("byokd served more than 5,000 wraps before the memory measurement")
    }
    return (at5k, at10k)
}

/// 3. Throughput of 8 clients (8 threads, a connection each) against 1 client, alternating rounds
/// of `perClient` wraps per client.
func clients(_ b: Bench, rounds: Int, perClient: Int) throws -> (one: Double, eight: Double, latency: Samples) {
    let one = DaemonClient(socketPath: b.daemon.socket)
    var oneTime = 0.0, eightTime = 0.0
    let latencies = Mutex<[Double]>([]), failures = Mutex(0)
    for _ in 0..<rounds {
        oneTime += try timed { for _ in 0..<perClient { try b.wrap(one) } }
        eightTime += timed {
            onThreads(8) { _ in
                let c = DaemonClient(socketPath: b.daemon.socket)
                var mine: [Double] = []
                for _ in 0..<perClient {
                    do { mine.append(try timed { try b.wrap(c) }) } catch { failures.withLock { $0 += 1 } }
                }
                latencies.withLock { $0 += mine }
            }
        }
    }
    if failures.withLock({ $0 }) > 0 { throw BenchError("\(failures.withLock { $0 }) concurrent wraps failed") }
    let n = Double(rounds * perClient)
    return (n / oneTime, 8 * n / eightTime, Samples(values: latencies.withLock { $0 }))
}

/// Runs `body(i)` on `count` threads of its own at once (not a pool two cores wide) and waits.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    let done = DispatchGroup()
    for i in 0..<count {
        done.enter()
        Thread { body(i); done.leave() }.start()
    }
    done.wait()
}

/// byokd's batch group: its records are synced together.
let batchGroup = 100

/// 4. A batch of 1,000 wraps in one request, against the floor's batch on as many sessions with as
/// many syncs (one per group of 100); alternating rounds. The answer's lines are counted, not
/// decoded: the client's JSON work is not byokd's (and would share its two cores).
func batch(_ b: Bench, rounds: Int, size: Int = 1000) throws -> (byokd: Samples, floor: Samples) {
    let entry = try JSONDecoder().decode(WrapRequest.self, from: b.wrapBody)
    let request = try JSONEncoder().encode(BatchWrapRequest(entries: (0..<size).map {
        BatchWrapRequest.Entry(name: "e\($0)", key: entry.key, parameters: entry.parameters, wrappingAlgorithm: b.algorithm)
    }))
    let client = DaemonClient(socketPath: b.daemon.socket)
    var byokd = Samples(), floor = Samples()
    for _ in 0..<rounds {
        floor.add(try b.floor.batch(size, group: batchGroup))
        var wrapped = 0
        byokd.add(try timed {
            let (status, _) = try client.send("POST", "/v1/wrap/batch", body: request) { line in
                // Keys are sorted: a failed entry's line starts with its "error", a wrapped one's with "index".
                if line.starts(with: #"{"index":"#.utf8) { wrapped += 1; b.counter.served() }
            }
            guard status == 200 else { throw BenchError("the batch answered \(status)") }
        })
        if wrapped != size { throw BenchError("\(size - wrapped) of \(size) batch entries failed") }
    }
    return (byokd, floor)
}

/// 5. `byokctl wrap` as an operator runs it, one process per key, against the AWS-documented
/// OpenSSL procedure per key (`openssl rand` + `openssl pkeyutl -encrypt … oaep`); alternating.
func processes(_ b: Bench, rounds: Int) throws -> (byokctl: Samples, openssl: Samples) {
    let out = b.dir + "/out", key = b.dir + "/PlaintextKeyMaterial.bin", enc = b.dir + "/EncryptedKeyMaterial.bin"
    let md = b.floor.hash == .sha256 ? "sha256" : "sha1"
    let ctl = [byokctlPath, "wrap", "--socket", b.daemon.socket, "--key", "bench", "--params", b.paramsFile,
               "--wrapping-algorithm", b.algorithm, "--out", out, "--force"]
    let rand = ["/usr/bin/openssl", "rand", "-out", key, "32"]
    let pkeyutl = ["/usr/bin/openssl", "pkeyutl", "-encrypt", "-in", key, "-out", enc, "-inkey", b.publicKeyDER, "-keyform", "DER",
                   "-pubin", "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:\(md)", "-pkeyopt", "rsa_mgf1_md:\(md)"]
    let env = ProcessInfo.processInfo.environment
    var byokctl = Samples(), openssl = Samples()
    for _ in 0..<rounds {
        openssl.add(try timedProcess(rand, env: env) + timedProcess(pkeyutl, env: env))
        byokctl.add(try timedProcess(ctl, env: env))
        b.counter.served()
    }
    return (byokctl, openssl)
}

/// 6. Cold start: process start to the first answered `status`, with its own socket and with a
/// socket passed as systemd does; against opening the token in this process. Alternating.
func coldStarts(_ t: TokenSetup, dir: String, rounds: Int) throws -> (own: Samples, activated: Samples, open: Samples) {
    var own = Samples(), activated = Samples(), open = Samples()
    for i in 0..<rounds {
        open.add(try openToken(t, sessions: Daemon.sessions))
        own.add(try coldStart(t, dir: dir, activated: false, run: i))
        activated.add(try coldStart(t, dir: dir, activated: true, run: i))
    }
    return (own, activated, open)
}

/// Spawns byokd and polls until it answers status. With `activated`, the socket is bound here and
/// passed as fd 3 with LISTEN_FDS/LISTEN_PID, as systemd does.
func coldStart(_ t: TokenSetup, dir: String, activated: Bool, run i: Int) throws -> Double {
    let sock = dir + "/cold-\(activated ? "a" : "o")-\(i).sock"
    var argv = [byokdPath, "--config", dir + "/byokd.json", "--module", t.module, "--token", t.tokenLabel, "--pin-file", t.pinFile,
                "--socket", sock, "--state-dir", dir + "/state", "--log-level", logLevel] + (t.initArgs.map { ["--init-args", $0] } ?? [])
    var env = t.env
    var listenFD: Int32?
    if activated {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        _ = UnixSocketAddress.with(sock) { bind(fd, $0, $1) }
        listen(fd, 16)
        listenFD = fd
        env["LISTEN_FDS"] = "1"
        // LISTEN_PID must be byokd's pid: a shell sets it to its own and execs byokd in its place.
        argv = ["/bin/sh", "-c", "LISTEN_PID=$$ exec \"$@\"", "sh"] + argv
    }
    let t0 = now()
    let pid = try spawn(argv, env: env, fd3: listenFD)
    if let listenFD { close(listenFD) }
    defer {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        unlink(sock)
    }
    while true {
        if (try? DaemonClient(socketPath: sock, timeout: 5).send("GET", "/v1/status"))?.0 == 200 { return now() - t0 }
        if now() - t0 > 30 { throw BenchError("cold start did not answer") }
        usleep(200)
    }
}
