import BYOK
import ByokAPI
import Foundation
import Synchronization

/// Import parameters parsed and checked once per distinct request parameters: a ceremony wraps
/// many keys under one set of AWS parameters, and parsing them (base64, JSON, DER, the wrapping
/// key's checks) costs more than looking them up. Keyed by the whole input and the algorithm
/// (`ParametersInput`'s synthesized `Hashable` takes every field, so a field added later cannot be
/// left out of the key); the expiry is checked again on every use.
final class ParametersCache: Sendable {
    private struct Key: Hashable, Sendable {
        let input: ParametersInput
        let algorithm: String?
    }

    private struct Entry: Sendable {
        let resolved: ImportParameters.Resolved
        var lastUsed: UInt64
    }

    private let entries = Mutex<(map: [Key: Entry], clock: UInt64)>(([:], 0))
    let capacity: Int

    init(capacity: Int = 64) { self.capacity = capacity }

    func resolve(_ input: ParametersInput, algorithm: String?, now: Date = Date()) throws -> ImportParameters.Resolved {
        let key = Key(input: input, algorithm: algorithm)
        if let hit = entries.withLock({ state -> ImportParameters.Resolved? in
            guard let i = state.map.index(forKey: key) else { return nil }  // the key hashed once
            state.clock += 1
            state.map.values[i].lastUsed = state.clock
            return state.map.values[i].resolved
        }) {
            if let validTo = hit.parameters.validTo, validTo <= now {
                // Expired since: the full check gives the full sentence.
                return try hit.parameters.resolve(requested: algorithm, now: now)
            }
            return hit
        }
        let resolved = try ImportParameters(input).resolve(requested: algorithm, now: now)
        entries.withLock { state in
            state.clock += 1
            if state.map.count >= capacity, let oldest = state.map.min(by: { $0.value.lastUsed < $1.value.lastUsed })?.key {
                state.map[oldest] = nil
            }
            state.map[key] = Entry(resolved: resolved, lastUsed: state.clock)
        }
        return resolved
    }

    var count: Int { entries.withLock { $0.map.count } }
}
