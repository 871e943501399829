import ByokAPI
import Foundation

/// A batch's answer: one `BatchResult` JSON line per entry (NDJSON, chunked), in entry order. Each
/// group of wraps is audited (one sync for the group) before its lines go out; a client that goes
/// away stops the batch after the group in progress. One write-ahead record for the whole batch
/// is durable before the first wrap; each entry's record names it.
struct BatchStream: Sendable {
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

    private struct ClientGone: Error {}

    private func run(_ write: ([UInt8]) -> Bool) {
        let entries = batch.entries
        do {
            var intent = AuditRecords.start(Operation.wrapBatch.rawValue, requestId: requestId, peer: caller)
            AuditRecords.describe(.wrapBatch(batch), into: &intent)
            let intentSeq = try audit.intent(intent)
            try service.wrapBatch(entries.map(WrapRequest.init)) { group in
                let records = group.map { i, result in
                    var r = AuditRecords.record(for: .wrap(WrapRequest(entries[i])), result: result.map(Outcome.wrapped),
                                                requestId: requestId, peer: caller)
                    r.intent = intentSeq
                    r.batchIndex = i
                    r.batchSize = entries.count
                    return r
                }
                try audit.append(records)
                var out: [UInt8] = []
                for (i, result) in group {
                    let line: BatchResult
                    switch result {
                    case .success(let w): line = BatchResult(index: i, name: entries[i].name, result: w, error: nil)
                    case .failure(let e): line = BatchResult(index: i, name: entries[i].name, result: nil, error: ErrorBody(e).error)
                    }
                    out += JSONCoding.encode(line) + [10]
                }
                guard write(out) else { throw ClientGone() }
            }
        } catch is ClientGone {
            return
        } catch {
            let e = (error as? ByokError) ?? ByokError(.internal, "\(error)")
            _ = write(JSONCoding.encode(BatchResult(index: -1, name: "", result: nil, error: ErrorBody(e).error)) + [10])
        }
    }
}
