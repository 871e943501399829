import ByokAPI

/// The HTTP API's endpoints as data (docs/API.md): method, path (or path prefix followed by an id),
/// and the operation each performs.
struct Endpoint: Sendable {
    let method: String
    let path: String
    /// The path is a prefix and what follows it is an id (`/v1/approvals/ID`).
    let takesID: Bool
    let operation: Operation

    init(_ method: String, _ path: String, takesID: Bool = false, _ operation: Operation) {
        self.method = method; self.path = path; self.takesID = takesID; self.operation = operation
    }

    static let table: [Endpoint] = [
        Endpoint("GET", "/v1/status", .status),
        Endpoint("GET", "/v1/keys", .keysList),
        Endpoint("POST", "/v1/keys", .keysGenerate),
        Endpoint("POST", "/v1/wrap", .wrap),
        Endpoint("POST", "/v1/wrap/batch", .wrapBatch),
        Endpoint("POST", "/v1/selftest", .selftest),
        Endpoint("GET", "/v1/audit", .audit),
        Endpoint("POST", "/v1/audit/verify", .auditVerify),
        Endpoint("GET", "/v1/audit/head", .auditHead),
        Endpoint("POST", "/v1/kms/import", .kmsImport),
        Endpoint("POST", "/v1/kms/create-key", .kmsCreateKey),
        Endpoint("POST", "/v1/kms/rotate", .kmsRotate),
        Endpoint("POST", "/v1/kms/materials", .kmsMaterials),
        Endpoint("GET", "/v1/approvals", .approvalsList),
        Endpoint("POST", "/v1/approvals/", takesID: true, .approve),
        Endpoint("POST", "/v1/trust/", takesID: true, .trust),
        Endpoint("GET", "/v1/requests/", takesID: true, .requestPoll),
    ]

    private func matches(path p: String) -> Bool { takesID ? p.hasPrefix(path) : p == path }

    /// The endpoint and id a request line names; a known path with another method, or an unknown
    /// path, is an error that names the API document.
    static func match(_ method: String, _ path: String) throws -> (Endpoint, id: String?) {
        let onPath = table.filter { $0.matches(path: path) }
        if let e = onPath.first(where: { $0.method == method }) {
            return (e, e.takesID ? String(path.dropFirst(e.path.count)) : nil)
        }
        if !onPath.isEmpty { throw ByokError(.badRequest, "\(method) is not allowed on \(path) (see docs/API.md)") }
        throw ByokError(.notFound, "no such endpoint \(path); see docs/API.md")
    }
}
