import BYOK
import ByokAPI
import Foundation
import Synchronization

/// Import parameters parsed and checked once per distinct request parameters: a ceremony wraps
/// many keys under one set of AWS parameters, and parsing them (base64, JSON, DER, the wrapping
/// key's checks) costs more than hashing them. Keyed by the SHA-256 of the whole input (encoded
/// with sorted keys); the expiry is checked again on every use.
final class ParametersCache: Sendable {
    private struct Entry: Sendable {
        let resolved: ImportParameters.Resolved
        var lastUsed: UInt64
    }

    private let entries = Mutex<(map: [[UInt8]: Entry], clock: UInt64)>(([:], 0))
    let capacity: Int

    init(capacity: Int = 64) { self.capacity = capacity }

    func resolve(_ input: ParametersInput, algorithm: String?, now: Date = Date()) throws -> ImportParameters.Resolved {
        let key = Self.key(input, algorithm)
        if let hit = entries.withLock({ state -> ImportParameters.Resolved? in
            guard let e = state.map[key] else { return nil }
            state.clock += 1
            state.map[key]?.lastUsed = state.clock
            return e.resolved
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

    /// Everything the request's parameters say, and the algorithm: all of `ParametersInput`, so a
    /// field added later cannot be left out of the key.
    private static func key(_ input: ParametersInput, _ algorithm: String?) -> [UInt8] {
        struct Key: Encodable { let input: ParametersInput; let algorithm: String? }
        return Digest.sha256(Array(JSONCoding.encode(Key(input: input, algorithm: algorithm))))
    }
}
