import ByokAPI
import Dispatch
import Synchronization

/// A batch's answer: one `BatchResult` JSON line per entry (NDJSON, chunked), in entry order.
/// Entries are wrapped in groups; each group is audited (one sync for the group) before its lines
/// go out, and while it is, the next group is already wrapping (the serial part of a group, its
/// records, sync and lines, no longer leaves the token idle). One write-ahead record for the whole
/// batch is durable before the first wrap; each entry's record names it.
///
/// A client that goes away, or an audit log that fails, stops the batch after the group being sent;
/// the group wrapped ahead of it is still audited when the log takes its records (they carry a note
/// that their answers were not sent). Nothing of an entry leaves byokd before its record is durable.
struct BatchStream: Sendable {
    static let groupSize = 100

    let batch: BatchWrapRequest
    let caller: PeerCredentials
    let requestId: String
    let service: TokenService
    let audit: AuditLog

    func response() -> HTTPResponse {
        var response = HTTPResponse(status: 200, body: [], contentType: "application/x-ndjson")
        response.stream = { write in run(write) }
        return response
    }

    private typealias Group = (range: Range<Int>, results: [Result<WrapResponse, ByokError>])

    private func run(_ write: ([UInt8]) -> Bool) {
        let entries = batch.entries
        let requests = entries.map(WrapRequest.init)
        let ranges = stride(from: 0, to: requests.count, by: Self.groupSize).map { $0..<min($0 + Self.groupSize, requests.count) }
        do {
            var intent = AuditRecords.start(Operation.wrapBatch.rawValue, requestId: requestId, peer: caller)
            AuditRecords.describe(.wrapBatch(batch), into: &intent)
            let intentSeq = try audit.intent(intent)
            guard let first = ranges.first else { return }
            var group: Group = (first, service.wrapGroup(requests[first]))
            for g in ranges.indices {
                let ahead = ranges.indices.contains(g + 1) ? Ahead { [service] in (ranges[g + 1], service.wrapGroup(requests[ranges[g + 1]])) } : nil
                do {
                    try audit.append(records(group, intent: intentSeq))
                } catch {
                    if let ahead { recordUnsent(ahead.wait(), intent: intentSeq) }
                    throw error
                }
                guard write(lines(group)) else {
                    if let ahead { recordUnsent(ahead.wait(), intent: intentSeq) }
                    return
                }
                if let ahead { group = ahead.wait() }
            }
        } catch {
            let e = (error as? ByokError) ?? ByokError(.internal, "\(error)")
            _ = write(JSONCoding.encode(BatchResult(index: -1, name: "", result: nil, error: ErrorBody(e).error)) + [10])
        }
    }

    /// One record per entry of the group, naming the batch's intent.
    private func records(_ group: Group, intent: UInt64, note: String? = nil) -> [AuditRecord] {
        zip(group.range, group.results).map { i, result in
            var r = AuditRecords.record(for: .wrap(WrapRequest(batch.entries[i])), result: result.map(Outcome.wrapped),
                                        requestId: requestId, peer: caller)
            r.intent = intent
            r.batchIndex = i
            r.batchSize = batch.entries.count
            r.note = note
            return r
        }
    }

    /// The records of a group wrapped ahead whose answer is never sent (the batch stopped).
    private func recordUnsent(_ group: Group, intent: UInt64) {
        _ = try? audit.append(records(group, intent: intent, note: "wrapped ahead, but not sent: the batch stopped before this entry's answer"))
    }

    /// The group's answer lines.
    private func lines(_ group: Group) -> [UInt8] {
        var out: [UInt8] = []
        for (i, result) in zip(group.range, group.results) {
            let name = batch.entries[i].name
            let line = switch result {
            case .success(let w): BatchResult(index: i, name: name, result: w, error: nil)
            case .failure(let e): BatchResult(index: i, name: name, result: nil, error: ErrorBody(e).error)
            }
            out += JSONCoding.encode(line) + [10]
        }
        return out
    }
}

/// Work started now on another thread, its result waited for later.
private final class Ahead<T: Sendable>: Sendable {
    private let result = Mutex<T?>(nil)
    private let done = DispatchSemaphore(value: 0)

    init(_ work: @escaping @Sendable () -> T) {
        DispatchQueue.global().async { [self] in
            let value = work()
            result.withLock { $0 = value }
            done.signal()
        }
    }

    func wait() -> T {
        done.wait()
        return result.withLock { $0! }
    }
}
