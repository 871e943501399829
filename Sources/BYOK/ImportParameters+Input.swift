import ByokAPI
import Foundation

extension ImportParameters {
    /// The parameters a request carries (`ParametersInput`): the AWS CLI JSON, the console ZIP, or
    /// the two files, given exactly one way, with the key id and expiry the files may lack.
    public init(_ input: ParametersInput) throws {
        func bytes(_ b64: String, _ what: String) throws -> [UInt8] {
            guard let d = Data(base64Encoded: b64) else { throw ByokError(.badRequest, "\(what) in the request is not base64") }
            return [UInt8](d)
        }
        let provider = input.provider ?? .aws
        let aws = [input.awsJSON, input.zip, input.importToken, input.kmsKeyId]
        let azure = [input.azureKey, input.kid]
        let gcp = [input.gcpImportJob, input.importJob, input.importMethod]
        for (cloud, fields) in [(CloudProvider.aws, aws), (.azure, azure), (.gcp, gcp)] where cloud != provider && fields.contains(where: { $0 != nil }) {
            throw ByokError(.badRequest, "the request carries \(cloud.rawValue) parameters for a wrap for \(provider.rawValue); give the parameters of the cloud the key goes to")
        }
        switch provider {
        case .aws: break
        case .azure:
            if let j = input.azureKey {
                guard input.publicKey == nil else { throw ByokError(.badRequest, "give the Azure KEK one way: its JSON (--params), or its PEM with --kid") }
                self = try ImportParameters.parse(azureKeyJSON: try bytes(j, "azureKey"))
            } else if let pem = input.publicKey {
                self = try ImportParameters.parse(azureKEK: try bytes(pem, "publicKey"), kid: input.kid ?? "")
            } else {
                throw ByokError(.badRequest, "no Azure KEK given: pass --params KEK.json (az keyvault key show) or --public-key KEK.pem with --kid")
            }
            return
        case .gcp:
            if let j = input.gcpImportJob {
                guard input.publicKey == nil else { throw ByokError(.badRequest, "give the import job one way: its JSON (--params), or its public key PEM with --import-job and --import-method") }
                self = try ImportParameters.parse(gcpImportJobJSON: try bytes(j, "gcpImportJob"))
            } else if let pem = input.publicKey {
                self = try ImportParameters.parse(gcpPublicKey: try bytes(pem, "publicKey"), importJob: input.importJob ?? "", method: input.importMethod ?? "")
            } else {
                throw ByokError(.badRequest, "no import job given: pass --params JOB.json (gcloud kms import-jobs describe --format=json) or --public-key JOB.pem with --import-job and --import-method")
            }
            if let v = input.validTo, validTo == nil {
                guard let d = Timestamp.parse(v) else { throw ByokError(.badRequest, "validTo \"\(v)\" is not an ISO 8601 time") }
                validTo = d
            }
            return
        }
        let given = [input.awsJSON != nil, input.zip != nil, input.publicKey != nil || input.importToken != nil].filter { $0 }.count
        guard given == 1 else {
            throw ByokError(.badRequest, given == 0 ? "no import parameters given: pass --params FILE.json|FILE.zip, or --public-key and --import-token"
                                                    : "give the import parameters one way only: --params, or --public-key with --import-token")
        }
        if input.importTokenEncoding != nil && input.importToken == nil {
            throw ByokError(.badRequest, "--import-token-encoding goes with --import-token; the CLI JSON carries the token in base64 and the console's ZIP as raw bytes")
        }
        if let j = input.awsJSON {
            self = try ImportParameters.parse(awsJSON: try bytes(j, "awsJSON"))
        } else if let z = input.zip {
            self = try ImportParameters.parse(zip: try bytes(z, "zip"))
        } else {
            guard let pk = input.publicKey, let it = input.importToken else {
                throw ByokError(.badRequest, "--public-key and --import-token go together; one of them is missing")
            }
            var encoding: ImportTokenEncoding?
            if let e = input.importTokenEncoding {
                guard let known = ImportTokenEncoding(rawValue: e.lowercased()) else {
                    throw ByokError(.badRequest, "importTokenEncoding \"\(e)\" is neither raw nor base64")
                }
                encoding = known
            }
            self = try ImportParameters.parse(publicKey: try bytes(pk, "publicKey"), importToken: try bytes(it, "importToken"), tokenEncoding: encoding)
        }
        if let id = input.kmsKeyId, !id.isEmpty {
            if let known = kmsKeyId, known != id, !id.hasSuffix(known), !known.hasSuffix(id) {
                throw ByokError(.paramsInvalid, "--kms-key-id \(id) differs from the key id in the parameters (\(known))")
            }
            kmsKeyId = kmsKeyId ?? id
        }
        if let v = input.validTo {
            guard let d = Timestamp.parse(v) else { throw ByokError(.badRequest, "validTo \"\(v)\" is not an ISO 8601 time") }
            if validTo == nil { validTo = d }
        }
    }
}
