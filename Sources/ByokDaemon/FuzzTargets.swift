import BYOK
import ByokAPI
import Foundation

/// What runs under libFuzzer (scripts/fuzz): the request decoder and the import-parameter parsers,
/// on arbitrary bytes. The first byte picks the target. Nothing here may crash, hang or trap; the
/// DER reader must agree with OpenSSL on every RSA key it accepts. Each run says what became of
/// its input, so replayed corpus files can be held to an expected outcome (FuzzRegressionTests).
public enum FuzzTargets {
    static let now = Date(timeIntervalSince1970: 1_700_000_000)

    /// What became of one input: the target that ran, and for each thing it parsed `ok …` with
    /// what it found, or `rejected …` with the error code (or the HTTP framing error).
    public struct Outcome: Equatable, Sendable, CustomStringConvertible {
        public let target: String
        public let steps: [String]
        public var description: String { "\(target): \(steps.joined(separator: "; "))" }
    }

    @discardableResult
    public static func run(_ data: [UInt8]) -> Outcome {
        guard let selector = data.first else { return Outcome(target: "none", steps: ["empty input"]) }
        let input = Array(data.dropFirst())
        switch selector % 6 {
        case 0: return Outcome(target: "http", steps: request(input))
        case 1: return Outcome(target: "aws-json", steps: [resolved { try ImportParameters.parse(awsJSON: input).resolve(requested: nil, now: now) }])
        case 2: return Outcome(target: "console-zip", steps: [resolved { try ImportParameters.parse(zip: input).resolve(requested: "RSAES_OAEP_SHA_256", now: now) }])
        case 3:
            let cut = input.firstIndex(of: 0xFF) ?? input.count / 2
            return Outcome(target: "files", steps: [resolved {
                try ImportParameters.parse(publicKey: Array(input[..<cut]), importToken: Array(input[min(cut + 1, input.count)...]))
                    .resolve(requested: "RSAES_OAEP_SHA_1", now: now)
            }])
        case 4: return Outcome(target: "spki", steps: spki(input))
        default:
            let t = Timestamp.parse(String(decoding: input, as: UTF8.self))
            return Outcome(target: "time", steps: [t.map { "ok \(Timestamp.string($0))" } ?? "rejected"])
        }
    }

    /// `ok <wrapping key spec> <algorithm>`, or `rejected <error code>`.
    static func resolved(_ body: () throws -> ImportParameters.Resolved) -> String {
        do {
            let r = try body()
            return "ok \(r.wrappingKeySpec.rawValue) \(r.algorithm.rawValue)"
        } catch let e as ByokError {
            return "rejected \(e.code.rawValue)"
        } catch {
            return "rejected \(type(of: error))"
        }
    }

    /// HTTP framing, then every body type the API decodes, then the parameters a wrap carries.
    static func request(_ input: [UInt8]) -> [String] {
        var buffer = input
        var steps: [String] = []
        for _ in 0..<8 {
            let r: HTTPRequest
            do {
                guard let next = try HTTPReader.parse(&buffer, maxHeaderBytes: 16 * 1024, maxBodyBytes: 1 << 20) else {
                    if !buffer.isEmpty { steps.append("incomplete (\(buffer.count) bytes)") }
                    return steps
                }
                r = next
            } catch {
                steps.append("rejected \(error)")
                return steps
            }
            var step = "\(r.method) \(r.path)"
            do {
                let (endpoint, id) = try Endpoint.match(r.method, r.path)
                step += " -> " + endpoint.operation.rawValue + (id.map { "(\($0))" } ?? "")
            } catch {
                step += " -> rejected \((error as? ByokError)?.code.rawValue ?? "\(error)")"
            }
            var bodies: [String] = []
            if (try? JSONCoding.decode(GenerateRequest.self, r.body)) != nil { bodies.append("GenerateRequest") }
            if (try? JSONCoding.decode(BatchWrapRequest.self, r.body)) != nil { bodies.append("BatchWrapRequest") }
            if let w = try? JSONCoding.decode(WrapRequest.self, r.body) {
                bodies.append("WrapRequest")
                step += ", parameters " + resolved { try ImportParameters(w.parameters).resolve(requested: w.wrappingAlgorithm, now: now) }
            }
            step += ", body \(bodies.isEmpty ? "none" : bodies.joined(separator: "+")), \(r.keepAlive ? "keep-alive" : "close")"
            steps.append(step)
        }
        if !buffer.isEmpty { steps.append("not read (\(buffer.count) bytes)") }
        return steps
    }

    /// Differential: the DER reader alone against OpenSSL. A key the reader accepts must be the
    /// same key to OpenSSL; anything else traps, which libFuzzer reports.
    static func spki(_ input: [UInt8]) -> [String] {
        func text(_ r: Result<RSAPublicKey, Error>) -> String {
            switch r {
            case .success(let k): return "ok RSA-\(k.bits) e=\(k.publicExponent.hex)"
            case .failure(let e): return "rejected \(e)"
            }
        }
        let reader = Result { try RSAPublicKey(derReader: input) }
        let openSSL = Result { try RSAPublicKey(openSSL: input) }
        if case .success(let fast) = reader {
            guard case .success(let slow) = openSSL else { fatalError("the DER reader accepted a key OpenSSL rejects: \(input.hex)") }
            precondition(fast.modulus == slow.modulus && fast.publicExponent == slow.publicExponent && fast.bits == slow.bits,
                         "the DER reader and OpenSSL disagree on \(input.hex)")
        }
        return ["reader " + text(reader), "openssl " + text(openSSL)]
    }
}
