#if canImport(Glibc)
@preconcurrency import Glibc  // stdio's `stdout` and `stderr` are C globals; this file touches them on the main thread only
#endif
import BYOK
import ByokAPI
import ByokClient
import Foundation

// byokd-bench: byokd against the floor of what it does, on the same token and disk, all figures
// from one run, each measurement alternating byokd with its baseline (README, "Performance").
// Usage: byokd-bench [softhsm|nss|all] [--quick] [--log-level LEVEL] [--json FILE]

setvbuf(stdout, nil, _IOLBF, 0)
let args = Array(CommandLine.arguments.dropFirst())
func option(_ name: String) -> String? { args.firstIndex(of: name).flatMap { $0 + 1 < args.count ? args[$0 + 1] : nil } }
let quick = args.contains("--quick")
let jsonOut = option("--json") ?? "bench-results.json"
/// byokd's default level, as a ceremony host runs it.
let logLevel = option("--log-level") ?? "info"
let which = args.first { !$0.hasPrefix("--") && $0 != jsonOut && $0 != logLevel } ?? "all"
let binDir = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent().path
let byokdPath = binDir + "/byokd", byokctlPath = binDir + "/byokctl"
func n(_ full: Int, quick q: Int) -> Int { quick ? q : full }

/// The AWS CLI JSON of `get-parameters-for-import`, for a wrapping key made here (this process plays AWS).
func awsParameters(_ aws: SoftwareRSAKeyPair) throws -> Data {
    let token = (0..<600).map { _ in UInt8.random(in: 0...255) }
    let json: [String: Any] = ["KeyId": "arn:aws:kms:us-east-1:111122223333:key/00000000-0000-0000-0000-000000000000",
                               "PublicKey": Data(aws.publicKey.der).base64EncodedString(), "ImportToken": Data(token).base64EncodedString(),
                               "ParametersValidTo": Date().timeIntervalSince1970 + 86_000]
    return try JSONSerialization.data(withJSONObject: json)
}

/// Everything measured while byokd runs, in this order; the floor lives as long as this call.
func measureDaemon(_ token: TokenSetup, dir: String) throws -> Results {
    let aws = try SoftwareRSAKeyPair(bits: 3072)
    let daemon = try Daemon(token, dir: dir)
    defer { daemon.stop() }
    _ = try DaemonClient(socketPath: daemon.socket).call("POST", "/v1/keys", GenerateRequest(label: "bench", spec: "SYMMETRIC_DEFAULT"), as: KeyInfo.self)
    let floor = try Floor(token, keyLabel: "bench", wrappingKey: aws.publicKey, sessions: Daemon.sessions, auditDir: daemon.stateDir)
    let algorithm = floor.hash == .sha256 ? "RSAES_OAEP_SHA_256" : "RSAES_OAEP_SHA_1"
    let params = try awsParameters(aws)
    try params.write(to: URL(fileURLWithPath: dir + "/params.json"))
    try Data(aws.publicKey.der).write(to: URL(fileURLWithPath: dir + "/WrappingPublicKey.bin"))
    let body = try JSONEncoder().encode(WrapRequest(key: "bench", parameters: ParametersInput(awsJSON: params.base64EncodedString()), wrappingAlgorithm: algorithm))
    let b = Bench(token: token, dir: dir, daemon: daemon, floor: floor, counter: WrapCounter(pid: daemon.pid), wrapBody: body,
                  algorithm: algorithm, paramsFile: dir + "/params.json", publicKeyDER: dir + "/WrappingPublicKey.bin")
    let warm = DaemonClient(socketPath: daemon.socket)
    for _ in 0..<20 { try b.wrap(warm); _ = try floor.wrapAndSync() }
    // The floor appends what byokd appends: a record of the size of byokd's last one.
    floor.record = [UInt8](repeating: 0x61, count: try daemon.lastRecordBytes() - 1) + [10]

    print("[\(token.name)] 1 client against the floor …")
    let one = try singleClient(b, rounds: n(2000, quick: 200))
    print("[\(token.name)] memory at the 5,000th and 10,000th wrap …")
    let memory = try memory(b)
    print("[\(token.name)] 8 clients against 1 …")
    let many = try clients(b, rounds: n(6, quick: 2), perClient: n(100, quick: 25))
    print("[\(token.name)] batch of 1,000 against the floor's batch …")
    let batches = try batch(b, rounds: n(3, quick: 1))
    print("[\(token.name)] byokctl wrap against openssl rand + pkeyutl …")
    let processes = try processes(b, rounds: n(40, quick: 10))
    return Results(algorithm: algorithm, modulusBytes: floor.modulusBytes, recordBytes: floor.record.count, one: one, at5k: memory.at5k,
                   at10k: memory.at10k, peak: RSS(pid: daemon.pid), many: many, batches: batches, processes: processes)
}

func measure(_ name: String) throws -> Report {
    let dir = makeTempDir("byokd-bench")
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let token = name == "nss" ? try nss(dir + "/token") : try softHSM(dir + "/token")
    var results = try measureDaemon(token, dir: dir)
    print("[\(token.name)] cold starts against opening the token …")
    results.cold = try coldStarts(token, dir: dir, rounds: n(10, quick: 3))
    return Report(token: token.name, machine: machine(), date: Timestamp.string(Date()), algorithm: results.algorithm, logLevel: logLevel,
                  floor: results.floorText, rows: results.rows)
}

var reports: [Report] = []
do {
    for t in which == "all" ? ["softhsm", "nss"] : [which] {
        let r = try measure(t)
        printTable(r)
        reports.append(r)
    }
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    try enc.encode(reports).write(to: URL(fileURLWithPath: jsonOut))
    print("\nwrote \(jsonOut)")
} catch {
    fputs("byokd-bench: \(error)\n", stderr)
    exit(1)
}
