import CPKCS11

extension Session {
    /// `C_GenerateKey`.
    public func generateKey(_ mechanism: Mechanism, _ template: [Attribute]) throws -> ObjectHandle {
        var h: CK_OBJECT_HANDLE = 0
        try mechanism.withC { m in
            try withCTemplate(template) { p, n in
                try module.call(.generateKey, \.C_GenerateKey) { $0(handle, m, p, n, &h) }
            }
        }
        return ObjectHandle(rawValue: UInt(h))
    }

    /// `C_GenerateKeyPair`: returns (public, private).
    public func generateKeyPair(_ mechanism: Mechanism, publicTemplate: [Attribute], privateTemplate: [Attribute]) throws -> (ObjectHandle, ObjectHandle) {
        var pub: CK_OBJECT_HANDLE = 0
        var priv: CK_OBJECT_HANDLE = 0
        try mechanism.withC { m in
            try withCTemplate(publicTemplate) { pp, pn in
                try withCTemplate(privateTemplate) { sp, sn in
                    try module.call(.generateKeyPair, \.C_GenerateKeyPair) { $0(handle, m, pp, pn, sp, sn, &pub, &priv) }
                }
            }
        }
        return (ObjectHandle(rawValue: UInt(pub)), ObjectHandle(rawValue: UInt(priv)))
    }

    /// `C_WrapKey`: the key leaves the token only encrypted under `wrappingKey`.
    /// `expectedLength`: the wrapped key's size when the caller knows it (an RSA wrap's output is
    /// the modulus' size), so one call does it; else the size is asked first.
    public func wrapKey(_ mechanism: Mechanism, wrappingKey: ObjectHandle, key: ObjectHandle, expectedLength: Int? = nil) throws -> [UInt8] {
        try mechanism.withC { m in
            try fetchBytes(.wrapKey, expectedLength: expectedLength) { buf, len in
                try module.callRV(.wrapKey, \.C_WrapKey) { $0(handle, m, wrappingKey.ck, key.ck, buf, len) }
            }
        }
    }
}

extension Session {
    /// `C_UnwrapKey`: a key enters the token encrypted under `unwrappingKey` and becomes an object
    /// with the attributes of `template`. byokd uses it only to place the self-test's throwaway
    /// keys, made in software, on the token.
    /// `raw` adds attributes the typed template cannot name (a vendor's).
    public func unwrapKey(_ mechanism: Mechanism, unwrappingKey: ObjectHandle, wrapped: [UInt8], _ template: [Attribute],
                          raw: [RawAttribute] = []) throws -> ObjectHandle {
        var h: CK_OBJECT_HANDLE = 0
        var input = wrapped
        try mechanism.withC { m in
            try withCTemplate(template, raw: raw) { p, n in
                try module.call(.unwrapKey, \.C_UnwrapKey) { $0(handle, m, unwrappingKey.ck, &input, CK_ULONG(input.count), p, n, &h) }
            }
        }
        return ObjectHandle(rawValue: UInt(h))
    }
}
