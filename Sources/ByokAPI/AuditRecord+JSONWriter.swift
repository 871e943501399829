// An audit record's line, written by `JSONWriter` (with `escapingSlashes: false`, see
// `AuditVerifier.line`): every stored property of each shape, keys in sorted (UTF-8 byte) order —
// so "requestId" before "requestedBy" (`I` is 0x49, `e` 0x65). Each line is hashed into the chain
// and MACed, and verify re-encodes decoded records to compare, so these must be byte for byte what
// JSONEncoder with `[.sortedKeys, .withoutEscapingSlashes]` writes. A property added to one of
// these types must be added here too; `JSONWriterTests` fails until it is.

extension AuditRecord: JSONWritable {
    public func write(to json: inout JSONWriter) {
        json.object {
            $0.field("approvalId", approvalId)
            $0.field("approvedBy", approvedBy)
            $0.field("batchIndex", batchIndex)
            $0.field("batchSize", batchSize)
            $0.field("droppedBytes", droppedBytes)
            $0.field("droppedSha256", droppedSha256)
            $0.field("encryptedKeyMaterialSha256", encryptedKeyMaterialSha256)
            $0.field("errorCode", errorCode)
            $0.field("intent", intent)
            $0.field("key", key)
            $0.field("kmsKeyId", kmsKeyId)
            $0.field("mac", mac)
            $0.field("macError", macError)
            $0.field("note", note)
            $0.field("operation", operation)
            $0.field("peer", peer)
            $0.field("prev", prev)
            $0.field("provider", provider)
            $0.field("requestId", requestId)
            $0.field("requestedBy", requestedBy)
            $0.field("result", result)
            $0.field("seq", seq)
            $0.field("target", target)
            $0.field("time", time)
            $0.field("trustedBy", trustedBy)
            $0.field("wrappingAlgorithm", wrappingAlgorithm)
            $0.field("wrappingKeySource", wrappingKeySource)
            $0.field("wrappingPublicKeySha256", wrappingPublicKeySha256)
        }
    }
}

extension AuditRecord.Peer: JSONWritable {
    public func write(to json: inout JSONWriter) {
        json.object {
            $0.field("gid", gid)
            $0.field("pid", pid)
            $0.field("uid", uid)
            $0.field("user", user)
        }
    }
}

extension AuditRecord.Key: JSONWritable {
    public func write(to json: inout JSONWriter) {
        json.object {
            $0.field("fingerprint", fingerprint)
            $0.field("id", id)
            $0.field("label", label)
            $0.field("noFingerprint", noFingerprint)
            $0.field("spec", spec)
        }
    }
}
