import BYOK
import ByokAPI
import Foundation
import PKCS11

/// Online mode: byokd fetches the import parameters, wraps on the token and imports, with the
/// AWS credentials held by the service (its environment or the shared files).
extension TokenService {
    /// `POST /v1/kms/create-key`: a KMS key with origin EXTERNAL, waiting for key material.
    public func kmsCreateKey(_ r: KMSCreateKeyRequest) throws -> KMSKeyInfo {
        let spec = try KeySpec(named: r.spec)
        let usage = r.usage ?? {
            switch spec.kind { case .aes256: "ENCRYPT_DECRYPT"; case .hmac: "GENERATE_VERIFY_MAC"; case .rsa, .ec: "SIGN_VERIFY" }
        }()
        return try kmsClients.call {
            try $0.createKey(spec: spec.rawValue, usage: usage, multiRegion: r.multiRegion ?? false, description: r.description, tags: r.tags ?? [:])
        }
    }

    /// `POST /v1/kms/import`: GetParametersForImport → on-token wrap → ImportKeyMaterial → DescribeKey.
    public func kmsImport(_ r: KMSImportRequest) throws -> KMSImportResponse {
        // What the token key is decides the algorithm: the best AWS allows for it that passed the self-test.
        let spec = try TokenErrors.guarded("kms import") {
            try withSession(retry: true) { session, token -> KeySpec in
                // Through the key cache, so the wrap below does not search the token again.
                let (key, _) = try keys.key(r.key, store: KeyStore(session: session, token: token))
                try auditMacKey?.refuseToRelease(key)
                guard let spec = key.spec else { throw ByokError(.keyNotImportable, "key \"\(key.label)\" is \(key.typeDescription), which is no AWS KMS key spec") }
                return spec
            }
        }
        let algorithm: WrappingAlgorithm
        if let name = r.wrappingAlgorithm {
            guard let a = WrappingAlgorithm(name: name) else { throw ByokError(.algorithmUnknown, "unknown wrapping algorithm \"\(name)\"") }
            algorithm = a
        } else {
            let passed = passedAlgorithms
            guard let best = ImportRules.preferred(for: spec).first(where: passed.contains) else {
                throw ByokError(.tokenLacksAlgorithm, "no wrapping algorithm AWS accepts for \(spec.rawValue) passed this token's self-test")
            }
            algorithm = best
        }
        let wrappingKeySpecName = r.wrappingKeySpec ?? "RSA_4096"
        guard let wrappingKeySpec = WrappingKeySpec(rawValue: wrappingKeySpecName) else {
            throw ByokError(.badRequest, "wrapping key spec \(wrappingKeySpecName) is not RSA_2048, RSA_3072 or RSA_4096")
        }
        var validTo: Date?
        if let v = r.validTo {
            guard let d = Timestamp.parse(v) else { throw ByokError(.badRequest, "--valid-to \"\(v)\" is not an ISO 8601 time") }
            validTo = d
        }
        let answer = try kmsClients.call {
            try $0.getParametersForImport(keyId: r.kmsKeyId, wrappingAlgorithm: algorithm.rawValue, wrappingKeySpec: wrappingKeySpec.rawValue)
        }
        let params = ImportParameters(publicKeyDER: answer.publicKey, importToken: answer.importToken, kmsKeyId: answer.keyId,
                                      validTo: answer.validTo, wrappingAlgorithm: algorithm, wrappingKeySpec: wrappingKeySpec,
                                      source: "GetParametersForImport")
        let wrapped = try wrap(key: r.key, try params.resolve(requested: algorithm.rawValue))
        try kmsClients.call {
            try $0.importKeyMaterial(keyId: r.kmsKeyId, encryptedKeyMaterial: Array(Data(base64Encoded: wrapped.encryptedKeyMaterial)!),
                                     importToken: answer.importToken, validTo: validTo, importType: r.importType,
                                     keyMaterialDescription: r.keyMaterialDescription)
        }
        let described = try kmsClients.call { try $0.describeKey(keyId: r.kmsKeyId) }
        logger.info("imported into AWS KMS", metadata: ["kmsKeyId": "\(described.arn)", "state": "\(described.keyState)", "label": "\(wrapped.manifest.key.label)"])
        return KMSImportResponse(wrap: wrapped, kms: described)
    }
}
