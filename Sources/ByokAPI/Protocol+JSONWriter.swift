// The wire shapes on a wrap's path, written by `JSONWriter`: every stored property of each, keys in
// sorted (UTF-8 byte) order. A property added to one of these types must be added here too;
// `JSONWriterTests` fails until it is.

extension WrapResponse: JSONWritable {
    public func write(to json: inout JSONWriter) {
        json.object {
            $0.field("encryptedKeyMaterial", encryptedKeyMaterial)
            $0.field("importToken", importToken)
            $0.field("manifest", manifest)
        }
    }
}

extension Manifest: JSONWritable {
    public func write(to json: inout JSONWriter) {
        json.object {
            $0.field("azureKid", azureKid)
            $0.field("byokdVersion", byokdVersion)
            $0.field("createdAt", createdAt)
            $0.field("encryptedKeyMaterialSha256", encryptedKeyMaterialSha256)
            $0.field("gcpImportJob", gcpImportJob)
            $0.field("gcpImportMethod", gcpImportMethod)
            $0.field("importTokenSha256", importTokenSha256)
            $0.field("key", key)
            $0.field("kmsKeyId", kmsKeyId)
            $0.field("parametersValidTo", parametersValidTo)
            $0.field("provider", provider)
            $0.field("token", token)
            $0.field("trustedBySecurityOfficer", trustedBySecurityOfficer)
            $0.field("wrapMechanism", wrapMechanism)
            $0.field("wrappingAlgorithm", wrappingAlgorithm)
            $0.field("wrappingKeySource", wrappingKeySource)
            $0.field("wrappingKeySpec", wrappingKeySpec)
            $0.field("wrappingPublicKeySha256", wrappingPublicKeySha256)
        }
    }
}

extension Manifest.Key: JSONWritable {
    public func write(to json: inout JSONWriter) {
        json.object {
            $0.field("id", id)
            $0.field("kcv", kcv)
            $0.field("label", label)
            $0.field("noFingerprint", noFingerprint)
            $0.field("publicKeySha256", publicKeySha256)
            $0.field("spec", spec)
        }
    }
}

extension Manifest.Token: JSONWritable {
    public func write(to json: inout JSONWriter) {
        json.object {
            $0.field("label", label)
            $0.field("model", model)
            $0.field("serial", serial)
        }
    }
}

extension BatchResult: JSONWritable {
    public func write(to json: inout JSONWriter) {
        json.object {
            $0.field("error", error)
            $0.field("index", index)
            $0.field("name", name)
            $0.field("result", result)
        }
    }
}

extension ErrorBody: JSONWritable {
    public func write(to json: inout JSONWriter) {
        json.object { $0.field("error", error) }
    }
}

extension ErrorBody.Inner: JSONWritable {
    public func write(to json: inout JSONWriter) {
        json.object {
            $0.field("code", code)
            $0.field("message", message)
        }
    }
}
