import CPKCS11

extension Session {
    /// `C_FindObjectsInit` / `C_FindObjects` / `C_FindObjectsFinal`.
    public func findObjects(_ template: [Attribute]) throws -> [ObjectHandle] {
        try withCTemplate(template) { p, n in
            try module.call(.findObjectsInit, \.C_FindObjectsInit) { $0(handle, p, n) }
        }
        defer { try? module.call(.findObjectsFinal, \.C_FindObjectsFinal) { $0(handle) } }
        var found: [ObjectHandle] = []
        var batch = [CK_OBJECT_HANDLE](repeating: 0, count: 64)
        while true {
            var count: CK_ULONG = 0
            try module.call(.findObjects, \.C_FindObjects) { $0(handle, &batch, CK_ULONG(batch.count), &count) }
            if count == 0 { break }
            found += batch.prefix(Int(count)).map { ObjectHandle(rawValue: UInt($0)) }
        }
        return found
    }

    /// `C_GetAttributeValue` for several attributes at once. Attributes the token will not give
    /// (`CKR_ATTRIBUTE_SENSITIVE`, `CKR_ATTRIBUTE_TYPE_INVALID`) are left out of the result.
    public func attributes(_ object: ObjectHandle, _ types: [AttributeType]) throws -> AttributeValues {
        var attrs = types.map { CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE($0.rawValue), pValue: nil, ulValueLen: 0) }
        let tolerated: Set<CK_RV> = [CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID]
        try module.call(.getAttributeValue, \.C_GetAttributeValue, accepting: tolerated) { $0(handle, object.ck, &attrs, CK_ULONG(attrs.count)) }
        let unavailable = CK_ULONG(bitPattern: -1)
        var buffers: [UnsafeMutableRawBufferPointer?] = []
        defer { buffers.forEach { $0?.deallocate() } }
        for i in attrs.indices {
            if attrs[i].ulValueLen == unavailable {
                buffers.append(nil)
            } else {
                let b = UnsafeMutableRawBufferPointer.allocate(byteCount: max(Int(attrs[i].ulValueLen), 1), alignment: 8)
                buffers.append(b)
                attrs[i].pValue = b.baseAddress
            }
        }
        // Ask only for what is available: some modules fail the whole call otherwise.
        var wanted = attrs.enumerated().filter { buffers[$0.offset] != nil }
        var request = wanted.map { $0.element }
        if !request.isEmpty {
            try module.call(.getAttributeValue, \.C_GetAttributeValue, accepting: tolerated) { $0(handle, object.ck, &request, CK_ULONG(request.count)) }
        }
        var out: [AttributeType: [UInt8]] = [:]
        for (j, w) in wanted.enumerated() {
            let a = request[j]
            guard a.ulValueLen != unavailable, let b = buffers[w.offset] else { continue }
            out[AttributeType(rawValue: UInt(a.type))] = Array(UnsafeRawBufferPointer(rebasing: b.prefix(Int(a.ulValueLen))))
        }
        wanted.removeAll()
        return AttributeValues(raw: out)
    }

    /// `C_GetAttributeValue` for one attribute, failing with the token's own error when it
    /// will not give the value (e.g. `CKR_ATTRIBUTE_SENSITIVE`).
    public func attribute(_ object: ObjectHandle, _ type: AttributeType) throws -> [UInt8] {
        try fetchBytes(.getAttributeValue) { buf, len in
            var a = CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(type.rawValue), pValue: UnsafeMutableRawPointer(buf), ulValueLen: len.pointee)
            let rv = try module.callRV(.getAttributeValue, \.C_GetAttributeValue) { $0(handle, object.ck, &a, 1) }
            len.pointee = a.ulValueLen
            return rv
        }
    }

    /// `C_CreateObject`.
    @discardableResult
    public func createObject(_ template: [Attribute]) throws -> ObjectHandle {
        var h: CK_OBJECT_HANDLE = 0
        try withCTemplate(template) { p, n in
            try module.call(.createObject, \.C_CreateObject) { $0(handle, p, n, &h) }
        }
        return ObjectHandle(rawValue: UInt(h))
    }

    /// `C_DestroyObject`.
    public func destroyObject(_ object: ObjectHandle) throws {
        try module.call(.destroyObject, \.C_DestroyObject) { $0(handle, object.ck) }
    }
}
