import BYOK
import ByokAPI
import Foundation

/// What runs under libFuzzer (scripts/fuzz): the request decoder and the import-parameter parsers,
/// on arbitrary bytes. The first byte picks the target. Nothing here may crash, hang or trap; the
/// DER reader must agree with OpenSSL on every RSA key either accepts.
public enum FuzzTargets {
    static let now = Date(timeIntervalSince1970: 1_700_000_000)

    public static func run(_ data: [UInt8]) {
        guard let selector = data.first else { return }
        let input = Array(data.dropFirst())
        switch selector % 6 {
        case 0: request(input)
        case 1: _ = try? ImportParameters.parse(awsJSON: input).resolve(requested: nil, now: now)
        case 2: _ = try? ImportParameters.parse(zip: input).resolve(requested: "RSAES_OAEP_SHA_256", now: now)
        case 3:
            let cut = input.firstIndex(of: 0xFF) ?? input.count / 2
            _ = try? ImportParameters.parse(publicKey: Array(input[..<cut]), importToken: Array(input[min(cut + 1, input.count)...]))
                .resolve(requested: "RSAES_OAEP_SHA_1", now: now)
        case 4: spki(input)
        default: _ = Timestamp.parse(String(decoding: input, as: UTF8.self))
        }
    }

    /// HTTP framing, then every body type the API decodes, then the parameters a wrap carries.
    static func request(_ input: [UInt8]) {
        var buffer = input
        for _ in 0..<8 {
            guard let r = try? HTTPReader.parse(&buffer, maxHeaderBytes: 16 * 1024, maxBodyBytes: 1 << 20) else { return }
            _ = try? Endpoint.match(r.method, r.path)
            _ = try? JSONCoding.decode(GenerateRequest.self, r.body)
            _ = try? JSONCoding.decode(BatchWrapRequest.self, r.body)
            if let w = try? JSONCoding.decode(WrapRequest.self, r.body) {
                _ = try? ImportParameters(w.parameters).resolve(requested: w.wrappingAlgorithm, now: now)
            }
        }
    }

    /// Differential: the fast DER reader against OpenSSL.
    static func spki(_ input: [UInt8]) {
        let fast = try? RSAPublicKey(spki: input)
        let slow = try? RSAPublicKey(openSSL: input)
        if let fast {
            guard let slow else { fatalError("the DER reader accepted a key OpenSSL rejects: \(input.hex)") }
            precondition(fast.modulus == slow.modulus && fast.publicExponent == slow.publicExponent && fast.bits == slow.bits,
                         "the DER reader and OpenSSL disagree on \(input.hex)")
        }
    }
}
