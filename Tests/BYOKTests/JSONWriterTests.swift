import ByokAPI
import Foundation
import XCTest

/// The answers on a wrap's path are written by `JSONWriter`, not `JSONEncoder`; clients, manifests
/// and audit tools must not see a byte of difference.
final class JSONWriterTests: XCTestCase {
    /// SplitMix64: the same values on every run, so a failure can be replayed.
    struct Seeded: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Every character JSON escapes one way or another, and some it passes through as UTF-8.
    static let alphabet: [Unicode.Scalar] = (0..<0x80).map { Unicode.Scalar(UInt8($0)) }
        + ["é", "ß", "\u{85}", "\u{A0}", "\u{2028}", "\u{2029}", "\u{FEFF}", "€", "😀", "\u{10FFFF}", "\u{301}"]

    struct Key: KeyIdentity {
        var label: String, id: String, kcv: String?, publicKeySha256: String?, noFingerprint: String?
    }

    var rng = Seeded(state: 2024)

    func string(max: Int = 40) -> String {
        var s = String.UnicodeScalarView()
        for _ in 0..<Int.random(in: 0...max, using: &rng) { s.append(Self.alphabet.randomElement(using: &rng)!) }
        return String(s)
    }

    func maybe(_ s: String) -> String? { Bool.random(using: &rng) ? s : nil }

    func manifest() -> Manifest {
        let key = Key(label: string(), id: string(max: 16), kcv: maybe(string(max: 6)), publicKeySha256: maybe(string()),
                      noFingerprint: maybe(string()))
        var m = Manifest(kmsKeyId: maybe(string()), wrappingAlgorithm: string(), wrappingKeySpec: string(), wrappingPublicKeySha256: string(),
                         parametersValidTo: maybe(string()), key: .init(key, spec: string()),
                         token: .init(label: string(), serial: string(), model: string()), wrapMechanism: string(),
                         encryptedKeyMaterialSha256: string(), importTokenSha256: maybe(string()), createdAt: string(), byokdVersion: string(),
                         wrappingKeySource: Bool.random(using: &rng) ? WrappingKeySource.allCases.randomElement(using: &rng) : nil,
                         trustedBySecurityOfficer: Bool.random(using: &rng) ? Bool.random(using: &rng) : nil)
        m.provider = Bool.random(using: &rng) ? CloudProvider.allCases.randomElement(using: &rng) : nil
        m.azureKid = maybe(string())
        m.gcpImportJob = maybe(string())
        m.gcpImportMethod = maybe(string())
        return m
    }

    func wrapResponse() -> WrapResponse {
        // Base64 as byokd sends it: '/' and '+' in every blob.
        let blob = Data((0..<384).map { _ in UInt8.random(in: 0...255, using: &rng) }).base64EncodedString()
        return WrapResponse(manifest: manifest(), encryptedKeyMaterial: Bool.random(using: &rng) ? blob : string(), importToken: blob)
    }

    func assertSameBytes<T: JSONWritable>(_ value: T, file: StaticString = #filePath, line: UInt = #line) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let expected = [UInt8](try encoder.encode(value))
        let written = value.jsonBytes
        XCTAssertEqual(written, expected, "\n\(String(decoding: written, as: UTF8.self))\n\(String(decoding: expected, as: UTF8.self))", file: file, line: line)
    }

    func testWrapAnswersAreByteForByteWhatJSONEncoderWrites() throws {
        for _ in 0..<500 { try assertSameBytes(wrapResponse()) }
    }

    func testBatchLinesAndErrorsAreByteForByteWhatJSONEncoderWrites() throws {
        for i in 0..<300 {
            let error = ErrorBody(ByokError(ErrorCode.allCases.randomElement(using: &rng)!, string(max: 200))).error
            let line = BatchResult(index: Bool.random(using: &rng) ? i : -i * 1_000_003, name: string(), result: Bool.random(using: &rng) ? wrapResponse() : nil,
                                   error: Bool.random(using: &rng) ? error : nil)
            try assertSameBytes(line)
            try assertSameBytes(ErrorBody(ByokError(error.code, error.message)))
        }
    }

    func testEveryCharacterIsEscapedAsJSONEncoderEscapesIt() throws {
        for scalar in Self.alphabet {
            try assertSameBytes(ErrorBody(ByokError(.internal, "a\(scalar)b\(scalar)")))
        }
        try assertSameBytes(ErrorBody(ByokError(.internal, "")))
        try assertSameBytes(ErrorBody(ByokError(.internal, String(Self.alphabet.map(Character.init)))))
    }

    /// The writer names every property of each shape: one added to a type and not to the writer
    /// fails here (JSONEncoder would write it, the writer would not).
    func testTheWriterWritesEveryPropertyOfEachShape() throws {
        var full = manifest()
        full.kmsKeyId = "k"; full.parametersValidTo = "v"; full.importTokenSha256 = "i"; full.wrappingKeySource = .kms
        full.trustedBySecurityOfficer = true; full.provider = .gcp; full.azureKid = "a"; full.gcpImportJob = "j"; full.gcpImportMethod = "m"
        full.key.kcv = "c"; full.key.publicKeySha256 = "p"; full.key.noFingerprint = "n"
        let response = WrapResponse(manifest: full, encryptedKeyMaterial: "e", importToken: "t")
        let line = BatchResult(index: 1, name: "n", result: response, error: ErrorBody(ByokError(.internal, "m")).error)
        func keys(_ bytes: [UInt8], at path: [String]) throws -> Set<String> {
            var object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
            for p in path { object = try XCTUnwrap(object[p] as? [String: Any], p) }
            return Set(object.keys)
        }
        func properties(_ value: Any) -> Set<String> { Set(Mirror(reflecting: value).children.compactMap(\.label)) }
        let bytes = line.jsonBytes
        XCTAssertEqual(try keys(bytes, at: []), properties(line))
        XCTAssertEqual(try keys(bytes, at: ["error"]), properties(line.error!))
        XCTAssertEqual(try keys(bytes, at: ["result"]), properties(response))
        XCTAssertEqual(try keys(bytes, at: ["result", "manifest"]), properties(full))
        XCTAssertEqual(try keys(bytes, at: ["result", "manifest", "key"]), properties(full.key))
        XCTAssertEqual(try keys(bytes, at: ["result", "manifest", "token"]), properties(full.token))
        XCTAssertEqual(try keys(ErrorBody(ByokError(.internal, "m")).jsonBytes, at: []), properties(ErrorBody(ByokError(.internal, "m"))))
    }

    // MARK: Audit records

    /// An integer of the kind the tests need: often an edge (zero, one, the extremes), else random.
    func integer<T: FixedWidthInteger>(_: T.Type = T.self) -> T {
        switch Int.random(in: 0..<6, using: &rng) {
        case 0: 0
        case 1: 1
        case 2: .max
        case 3: .min
        case 4: T.isSigned ? -1 : 9
        default: T.random(in: .min ... .max, using: &rng)
        }
    }

    func maybe<T>(_ make: () -> T) -> T? { Bool.random(using: &rng) ? make() : nil }

    func peer() -> AuditRecord.Peer {
        AuditRecord.Peer(uid: integer(), gid: integer(), pid: Bool.random(using: &rng) ? -Int32.random(in: 1...Int32.max, using: &rng) : integer(),
                         user: string())
    }

    /// Every optional present or absent at random; strings from the whole alphabet (quotes,
    /// backslashes, slashes, control characters, U+2028, emoji…), sometimes path-like.
    func auditRecord() -> AuditRecord {
        func text() -> String { Bool.random(using: &rng) ? string() : "arn:aws:kms:eu-west-1:1:key/\(string(max: 8))//a\\/b\"c" }
        var r = AuditRecord(time: text(), requestId: text(), operation: text(), result: text())
        r.seq = integer()
        r.peer = maybe { peer() }
        r.key = maybe { .init(label: maybe(text()), id: maybe(text()), spec: maybe(text()), fingerprint: maybe(text()), noFingerprint: maybe(text())) }
        r.wrappingAlgorithm = maybe(text())
        r.wrappingPublicKeySha256 = maybe(text())
        r.kmsKeyId = maybe(text())
        r.encryptedKeyMaterialSha256 = maybe(text())
        r.approvalId = maybe(text())
        r.batchIndex = maybe { integer() }
        r.batchSize = maybe { integer() }
        r.requestedBy = maybe { peer() }
        r.approvedBy = maybe { peer() }
        r.errorCode = maybe(text())
        r.prev = text()
        r.mac = maybe(text())
        r.wrappingKeySource = maybe(text())
        r.trustedBy = maybe { peer() }
        r.provider = maybe(text())
        r.target = maybe(text())
        r.macError = maybe(text())
        r.intent = maybe { integer() }
        r.note = maybe(text())
        r.droppedBytes = maybe { integer() }
        r.droppedSha256 = maybe(text())
        return r
    }

    /// Audit lines are hashed into the chain and MACed, and verify re-encodes decoded records:
    /// `AuditVerifier.line` must write exactly what JSONEncoder with `.withoutEscapingSlashes` did.
    func assertSameAuditLine(_ r: AuditRecord, file: StaticString = #filePath, line: UInt = #line) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let expected = [UInt8](try encoder.encode(r))
        let written = AuditVerifier.line(r)
        XCTAssertEqual(written, expected, "\n\(String(decoding: written, as: UTF8.self))\n\(String(decoding: expected, as: UTF8.self))", file: file, line: line)
    }

    func testAuditLinesAreByteForByteWhatJSONEncoderWrites() throws {
        for _ in 0..<1000 {
            let r = auditRecord()
            try assertSameAuditLine(r)
            // The same shapes with slashes escaped, as for the wire answers.
            try assertSameBytes(r)
            // And the MAC's input, the line without its `mac`.
            var withoutMAC = r
            withoutMAC.mac = nil
            XCTAssertEqual(AuditVerifier.macInput(r), AuditVerifier.line(withoutMAC))
        }
        for scalar in Self.alphabet {
            try assertSameAuditLine(AuditRecord(time: "a\(scalar)b/\(scalar)", requestId: "", operation: "/", result: "\(scalar)"))
        }
    }

    /// A record with every field set: the writer writes a key for every stored property of the
    /// record and its nested shapes (a property added to `AuditRecord` and not to
    /// `AuditRecord+JSONWriter.swift` fails here), and the bytes are JSONEncoder's.
    func testTheWriterWritesEveryPropertyOfAnAuditRecord() throws {
        var full = auditRecord()
        full.peer = peer(); full.requestedBy = peer(); full.approvedBy = peer(); full.trustedBy = peer()
        full.key = .init(label: "l", id: "i", spec: "s", fingerprint: "f", noFingerprint: "n")
        full.wrappingAlgorithm = "a"; full.wrappingPublicKeySha256 = "p"; full.kmsKeyId = "k"; full.encryptedKeyMaterialSha256 = "e"
        full.approvalId = "a"; full.batchIndex = -1; full.batchSize = 2; full.errorCode = "E"; full.mac = "m"; full.wrappingKeySource = "kms"
        full.provider = "azure"; full.target = "t"; full.macError = "x"; full.intent = 7; full.note = "n"; full.droppedBytes = 3; full.droppedSha256 = "d"
        func keys(_ bytes: [UInt8], at path: [String]) throws -> Set<String> {
            var object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
            for p in path { object = try XCTUnwrap(object[p] as? [String: Any], p) }
            return Set(object.keys)
        }
        func properties(_ value: Any) -> Set<String> {
            let labels = Mirror(reflecting: value).children.compactMap(\.label)
            XCTAssertEqual(Set(labels).count, labels.count)
            XCTAssertNil(Mirror(reflecting: value).superclassMirror)
            return Set(labels)
        }
        for (name, optional) in Mirror(reflecting: full).children.map({ ($0.label ?? "?", Mirror(reflecting: $0.value)) }) {
            XCTAssertFalse(optional.displayStyle == .optional && optional.children.isEmpty, "\(name) is nil: set it above")
        }
        let line = AuditVerifier.line(full)
        XCTAssertEqual(try keys(line, at: []), properties(full))
        for nested in ["peer", "requestedBy", "approvedBy", "trustedBy"] {
            XCTAssertEqual(try keys(line, at: [nested]), properties(full.peer!), nested)
        }
        XCTAssertEqual(try keys(line, at: ["key"]), properties(full.key!))
        try assertSameAuditLine(full)
    }
}
