import CPKCS11

extension Session {
    /// `C_EncryptInit` + `C_Encrypt` (single part).
    public func encrypt(_ mechanism: Mechanism, key: ObjectHandle, data: [UInt8]) throws -> [UInt8] {
        try mechanism.withC { m in
            try module.call(.encryptInit, \.C_EncryptInit) { $0(handle, m, key.ck) }
        }
        var input = data
        return try fetchBytes(.encrypt) { buf, len in
            try module.callRV(.encrypt, \.C_Encrypt) { $0(handle, &input, CK_ULONG(input.count), buf, len) }
        }
    }

    /// `C_SignInit` + `C_Sign` (single part), e.g. an HMAC.
    public func sign(_ mechanism: Mechanism, key: ObjectHandle, data: [UInt8]) throws -> [UInt8] {
        try mechanism.withC { m in
            try module.call(.signInit, \.C_SignInit) { $0(handle, m, key.ck) }
        }
        var input = data
        return try fetchBytes(.sign) { buf, len in
            try module.callRV(.sign, \.C_Sign) { $0(handle, &input, CK_ULONG(input.count), buf, len) }
        }
    }
}
