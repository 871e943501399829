import CPKCS11

extension Slot {
    /// `C_InitToken`: (re)initialises the token in this slot with a security officer PIN and a label.
    /// Destroys every object on it. The PIN is wiped afterwards.
    public func initToken(soPIN: PIN, label: String) throws {
        defer { soPIN.wipe() }
        var padded = Array(label.utf8.prefix(32))
        padded += [UInt8](repeating: 0x20, count: 32 - padded.count)
        try soPIN.withBytes { p, n in
            try module.call(.initToken, \.C_InitToken) { $0(CK_SLOT_ID(id), p, CK_ULONG(n), &padded) }
        }
    }
}

extension Session {
    /// `C_Login` as the security officer. The PIN is wiped afterwards.
    public func loginSecurityOfficer(_ pin: PIN) throws {
        defer { pin.wipe() }
        try pin.withBytes { p, n in
            try module.call(.login, \.C_Login) { $0(handle, CK_USER_TYPE(CKU_SO), p, CK_ULONG(n)) }
        }
    }

    /// `C_InitPIN`: sets the user PIN (the session must be logged in as security officer).
    public func initUserPIN(_ pin: PIN) throws {
        defer { pin.wipe() }
        try pin.withBytes { p, n in
            try module.call(.initPIN, \.C_InitPIN) { $0(handle, p, CK_ULONG(n)) }
        }
    }
}
