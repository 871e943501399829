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
        guard spec.isAWS else { throw ByokError(.keySpecUnknown, "AWS KMS has no key spec \(spec.rawValue)") }
        let usage = r.usage ?? {
            switch spec.kind { case .aes: "ENCRYPT_DECRYPT"; case .hmac: "GENERATE_VERIFY_MAC"; case .rsa, .ec: "SIGN_VERIFY" }
        }()
        return try kmsClients.call {
            try $0.createKey(spec: spec.rawValue, usage: usage, multiRegion: r.multiRegion ?? false, description: r.description, tags: r.tags ?? [:])
        }
    }

    /// `POST /v1/kms/import`: GetParametersForImport → on-token wrap → ImportKeyMaterial → DescribeKey.
    public func kmsImport(_ r: KMSImportRequest) throws -> KMSImportResponse {
        let plan = try planKMSImport(r)
        return try finishKMSImport(plan, wrapped: try wrap(plan))
    }

    /// The import checked and its parameters fetched from AWS KMS (the wrapping key's source is
    /// `kms`): what an approver or the Security Officer sees before the wrap.
    func planKMSImport(_ r: KMSImportRequest) throws -> WrapPlan {
        // What the token key is decides the algorithm: the best AWS allows for it that passed the self-test.
        let spec = try TokenErrors.guarded("kms import") {
            try withSession(retry: true) { session, token -> KeySpec in
                // Through the key cache, so the wrap below does not read the key again.
                let (key, _) = try keys.key(r.key, store: KeyStore(session: session, token: token))
                try auditMacKey?.refuseToRelease(key)
                guard let spec = key.spec else {
                    throw ByokError(.keyNotImportable, "key \"\(Display.escaped(key.label))\" is \(key.typeDescription), which is no AWS KMS key spec")
                }
                return spec
            }
        }
        let algorithm: WrappingAlgorithm
        if let name = r.wrappingAlgorithm {
            guard let a = WrappingAlgorithm(name: name) else { throw ByokError(.algorithmUnknown, "unknown wrapping algorithm \"\(Display.escaped(name))\"") }
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
            throw ByokError(.badRequest, "wrapping key spec \(Display.escaped(wrappingKeySpecName)) is not RSA_2048, RSA_3072 or RSA_4096")
        }
        if let v = r.validTo, Timestamp.parse(v) == nil {
            throw ByokError(.badRequest, "--valid-to \"\(Display.escaped(v))\" is not an ISO 8601 time")
        }
        let answer = try kmsClients.call {
            try $0.getParametersForImport(keyId: r.kmsKeyId, wrappingAlgorithm: algorithm.rawValue, wrappingKeySpec: wrappingKeySpec.rawValue)
        }
        let params = ImportParameters(publicKeyDER: answer.publicKey, importToken: answer.importToken, kmsKeyId: answer.keyId,
                                      validTo: answer.validTo, wrappingAlgorithm: algorithm, wrappingKeySpec: wrappingKeySpec,
                                      source: "GetParametersForImport")
        return try plan(key: r.key, try params.resolve(requested: algorithm.rawValue), source: .kms, kmsKeyIdAsGiven: r.kmsKeyId, kmsImport: r)
    }

    /// ImportKeyMaterial with the wrapped material, then DescribeKey.
    func finishKMSImport(_ plan: WrapPlan, wrapped: WrapResponse) throws -> KMSImportResponse {
        guard let r = plan.kmsImport else { throw ByokError(.internal, "not an import") }
        let validTo = r.validTo.flatMap(Timestamp.parse)
        try kmsClients.call {
            try $0.importKeyMaterial(keyId: r.kmsKeyId, encryptedKeyMaterial: Array(Data(base64Encoded: wrapped.encryptedKeyMaterial)!),
                                     importToken: plan.resolved.parameters.importToken, validTo: validTo, importType: r.importType,
                                     keyMaterialDescription: r.keyMaterialDescription)
        }
        let described = try kmsClients.call { try $0.describeKey(keyId: r.kmsKeyId) }
        logger.info("imported into AWS KMS", metadata: ["kmsKeyId": "\(Display.escaped(described.arn))", "state": "\(described.keyState)",
                                                        "label": "\(Display.escaped(wrapped.manifest.key.label))"])
        return KMSImportResponse(wrap: wrapped, kms: described)
    }

    /// `POST /v1/kms/rotate`: the token key's material imported as NEW_KEY_MATERIAL (it waits as
    /// PENDING_ROTATION), then RotateKeyOnDemand makes it current; the key's materials after.
    func kmsRotate(_ plan: WrapPlan, wrapped: WrapResponse) throws -> KMSRotateResponse {
        let imported = try finishKMSImport(plan, wrapped: wrapped)
        let keyId = plan.kmsImport!.kmsKeyId
        try kmsClients.call { try $0.rotateKeyOnDemand(keyId: keyId) }
        return KMSRotateResponse(imported: imported, materials: try kmsClients.call { try $0.listKeyMaterials(keyId: keyId) })
    }

    /// `POST /v1/kms/materials`: every key material of a KMS key, with its state.
    public func kmsMaterials(_ r: KMSMaterialsRequest) throws -> KMSMaterialsResponse {
        KMSMaterialsResponse(kmsKeyId: r.kmsKeyId, materials: try kmsClients.call { try $0.listKeyMaterials(keyId: r.kmsKeyId) })
    }
}
