import Foundation

/// One line of the table: byokd's figure, the baseline it is read against, the target.
struct Row: Codable {
    var metric: String
    var byokd: Double
    var unit: String
    var baseline: Double?
    /// What the baseline is.
    var against: String = ""
    var ratio: Double?
    var target: String = ""
    var met: Bool?
}

struct Report: Codable {
    var token: String
    var machine: String
    var date: String
    var algorithm: String
    var logLevel: String
    /// The floor of one wrap, in words, with its figures.
    var floor: String
    var rows: [Row]
}

/// What one token's run measured.
struct Results {
    var algorithm: String
    var modulusBytes: Int
    var recordBytes: Int
    var one: (byokd: Samples, floor: Samples, floorWrap: Samples)
    var at5k: RSS, at10k: RSS
    /// byokd's peak memory over the whole run, the batches included.
    var peak: RSS
    var many: (one: Double, eight: Double, latency: Samples)
    var batches: (byokd: Samples, floor: Samples)
    var processes: (byokctl: Samples, openssl: Samples)
    var cold: (own: Samples, activated: Samples, open: Samples)? = nil

    var floorText: String {
        "ONE C_WrapKey into \(modulusBytes) bytes (median \(format(one.floorWrap.median * 1000, "ms"))) + one \(recordBytes)-byte append and fdatasync "
            + "next to byokd's audit log = \(format(one.floor.median * 1000, "ms")) median, \(format(one.floor.p99 * 1000, "ms")) p99 (of per-iteration sums)"
    }

    /// The table: each figure against its baseline and target.
    var rows: [Row] {
        let ms = 1000.0, mib = 1.0 / 1_048_576
        var rows = [
            Row(metric: "wrap, 1 client, median", byokd: one.byokd.median * ms, unit: "ms", baseline: one.floor.median * ms, against: "floor",
                ratio: one.byokd.median / one.floor.median, target: "≤ 1.3×", met: one.byokd.median / one.floor.median <= 1.3),
            Row(metric: "wrap, 1 client, p99", byokd: one.byokd.p99 * ms, unit: "ms", baseline: one.floor.p99 * ms, against: "floor",
                ratio: one.byokd.p99 / one.floor.p99),
            Row(metric: "8 clients vs 1 client, throughput", byokd: many.eight, unit: "wraps/s", baseline: many.one, against: "1 client",
                ratio: many.eight / many.one, target: "≥ 1.8×", met: many.eight / many.one >= 1.8),
            Row(metric: "8 clients, latency p99", byokd: many.latency.p99 * ms, unit: "ms", baseline: many.latency.median * ms, against: "(its median)"),
            Row(metric: "batch of 1,000, median", byokd: batches.byokd.median * ms, unit: "ms", baseline: batches.floor.median * ms,
                against: "floor: \(Daemon.sessions) sessions, \(1000 / batchGroup) syncs", ratio: batches.byokd.median / batches.floor.median,
                target: "≤ 1.2×", met: batches.byokd.median / batches.floor.median <= 1.2),
            Row(metric: "byokctl wrap as a process, median", byokd: processes.byokctl.median * ms, unit: "ms", baseline: processes.openssl.median * ms,
                against: "openssl rand + pkeyutl", ratio: processes.byokctl.median / processes.openssl.median, target: "< 1×",
                met: processes.byokctl.median < processes.openssl.median),
            Row(metric: "anonymous RSS at the 10,000th wrap", byokd: Double(at10k.anon) * mib, unit: "MiB", baseline: Double(at10k.current) * mib,
                against: "(all resident)", target: "< 12 MiB", met: Double(at10k.anon) * mib < 12),
            Row(metric: "RSS growth, 5,000th → 10,000th wrap", byokd: Double(at10k.current - at5k.current) * mib, unit: "MiB",
                baseline: Double(at10k.anon - at5k.anon) * mib, against: "(anonymous)", target: "none (< 0.25 MiB)",
                met: Double(at10k.current - at5k.current) * mib < 0.25),
            Row(metric: "peak RSS, whole run", byokd: Double(peak.peak) * mib, unit: "MiB", against: "(batches included)"),
        ]
        if let cold {
            rows.append(Row(metric: "cold start to first status, median", byokd: cold.own.median * ms, unit: "ms", baseline: cold.open.median * ms,
                            against: "opening the token", target: "< 50 ms", met: cold.own.median < 0.05))
            rows.append(Row(metric: "  the same, socket from systemd", byokd: cold.activated.median * ms, unit: "ms", target: "< 50 ms",
                            met: cold.activated.median < 0.05))
        }
        return rows
    }
}

func format(_ v: Double, _ unit: String) -> String {
    guard v.isFinite else { return "-" }
    let digits = abs(v) >= 100 ? 0 : abs(v) >= 10 ? 1 : abs(v) >= 1 ? 2 : 3
    return String(format: "%.\(digits)f", v) + " " + unit
}

func printTable(_ r: Report) {
    print("\n\(r.token) — \(r.algorithm), RSA-3072 wrapping key, AES-256 key, byokd log level \(r.logLevel) — \(r.machine) — \(r.date)")
    print("floor: \(r.floor)\n")
    let header = ["measurement", "byokd", "baseline", "against", "ratio", "target", "met"]
    let rows = r.rows.map { row in
        [row.metric, format(row.byokd, row.unit), row.baseline.map { format($0, row.unit) } ?? "", row.against,
         row.ratio.map { String(format: "%.2f×", $0) } ?? "", row.target, row.met.map { $0 ? "yes" : "NO" } ?? ""]
    }
    var w = header.map(\.count)
    for row in rows { for (i, c) in row.enumerated() { w[i] = max(w[i], c.count) } }
    for row in [header] + rows {
        print(row.enumerated().map { $1.padding(toLength: w[$0], withPad: " ", startingAt: 0) }.joined(separator: "  "))
    }
}

/// Cores, memory, kernel and the load average when the run ended (the machine is shared).
func machine() -> String {
    var u = utsname()
    uname(&u)
    let kernel = withUnsafeBytes(of: u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    let load = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?"
    return "\(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory >> 30) GiB, kernel \(kernel), load \(load)"
}
