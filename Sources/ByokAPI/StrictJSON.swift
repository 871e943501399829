/// Strict JSON decoding for API bodies and the configuration file. Foundation's `JSONDecoder`
/// accepts trailing commas, keeps the first of two equal keys and ignores fields it does not know,
/// so `{"label": "k", "extractable": false}` would silently make an extractable key. Here every
/// field must be one the type reads, a key appears once, and the text is RFC 8259 JSON with
/// nothing after it; errors name the field.
public enum StrictJSON {
    public struct Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// The field, as a dotted path (`parameters.kmsKeyId`, `entries[2].key`); empty for the whole text.
        public let path: String
        public let problem: String
        public var description: String { path.isEmpty ? problem : "\"\(path)\" \(problem)" }

        /// A sentence about `subject` ("the request body", "the configuration file x.json").
        public func sentence(_ subject: String) -> String {
            if path.isEmpty { return "\(subject) \(problem)" }
            switch problem {
            case "is missing": return "\(subject) lacks \"\(path)\""
            case "is not a field this takes": return "\(subject) has a field \"\(path)\" that is not one it takes"
            default: return "\(subject): \"\(path)\" \(problem)"
            }
        }
    }

    /// Decodes `T` from `bytes`, refusing unknown fields, repeated keys, wrong types and anything
    /// that is not one JSON value.
    public static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        var parser = Parser(bytes: bytes)
        let value = try parser.document()
        let tracker = Tracker()
        let decoder = ValueDecoder(value: value, codingPath: [], tracker: tracker)
        let result: T
        do { result = try T(from: decoder) } catch let e as DecodingError {
            throw Failure(decodingError: e)
        }
        if let unknown = tracker.unknownField() { throw Failure(path: unknown, problem: "is not a field this takes") }
        return result
    }

    /// A parsed JSON value; an object keeps its keys in order.
    indirect enum Value {
        case null
        case bool(Bool)
        case number(String)
        case string(String)
        case array([Value])
        case object([(key: String, value: Value)])

        var kind: String {
            switch self {
            case .null: "null"
            case .bool: "a boolean"
            case .number: "a number"
            case .string: "a string"
            case .array: "an array"
            case .object: "an object"
            }
        }
    }

    // MARK: Parsing (RFC 8259)

    struct Parser {
        let bytes: [UInt8]
        var i = 0
        var depth = 0
        static let maxDepth = 64

        init(bytes: [UInt8]) { self.bytes = bytes }

        func fail(_ what: String) -> Failure { Failure(path: "", problem: "is not valid JSON: \(what) at byte \(i)") }

        mutating func document() throws -> Value {
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }
            skipSpace()
            let v = try value()
            skipSpace()
            guard i == bytes.count else { throw fail("text after the JSON value") }
            return v
        }

        mutating func skipSpace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 || bytes[i] == 0x0A || bytes[i] == 0x0D { i += 1 }
        }

        mutating func value() throws -> Value {
            guard i < bytes.count else { throw fail("unexpected end") }
            switch bytes[i] {
            case UInt8(ascii: "{"): return try object()
            case UInt8(ascii: "["): return try array()
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try literal("true"); return .bool(true)
            case UInt8(ascii: "f"): try literal("false"); return .bool(false)
            case UInt8(ascii: "n"): try literal("null"); return .null
            default: return .number(try number())
            }
        }

        mutating func literal(_ word: String) throws {
            let w = Array(word.utf8)
            guard bytes.count - i >= w.count, Array(bytes[i..<(i + w.count)]) == w else { throw fail("unexpected character") }
            i += w.count
        }

        mutating func nest() throws {
            depth += 1
            if depth > Self.maxDepth { throw fail("nested deeper than \(Self.maxDepth) levels") }
        }

        mutating func object() throws -> Value {
            try nest()
            defer { depth -= 1 }
            i += 1
            var members: [(key: String, value: Value)] = []
            var seen: Set<String> = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            while true {
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a field name") }
                let key = try string()
                guard seen.insert(key).inserted else { throw Failure(path: key, problem: "appears twice") }
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                i += 1
                skipSpace()
                members.append((key, try value()))
                skipSpace()
                guard i < bytes.count else { throw fail("unexpected end") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                throw fail("expected ',' or '}'")
            }
        }

        mutating func array() throws -> Value {
            try nest()
            defer { depth -= 1 }
            i += 1
            var items: [Value] = []
            skipSpace()
            if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
            while true {
                skipSpace()
                items.append(try value())
                skipSpace()
                guard i < bytes.count else { throw fail("unexpected end") }
                if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                if bytes[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                throw fail("expected ',' or ']'")
            }
        }

        mutating func number() throws -> String {
            let start = i
            if i < bytes.count, bytes[i] == UInt8(ascii: "-") { i += 1 }
            func digits() -> Int {
                let s = i
                while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
                return i - s
            }
            guard i < bytes.count else { throw fail("unexpected end") }
            if bytes[i] == UInt8(ascii: "0") { i += 1 } else if digits() == 0 { throw fail("unexpected character") }
            if i < bytes.count, bytes[i] == UInt8(ascii: ".") { i += 1; guard digits() > 0 else { throw fail("bad number") } }
            if i < bytes.count, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
                i += 1
                if i < bytes.count, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-") { i += 1 }
                guard digits() > 0 else { throw fail("bad number") }
            }
            return String(decoding: bytes[start..<i], as: UTF8.self)
        }

        mutating func hex4() throws -> UInt32 {
            guard bytes.count - i >= 4 else { throw fail("bad \\u escape") }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[i]
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x61...0x66: d = UInt32(c - 0x57)
                case 0x41...0x46: d = UInt32(c - 0x37)
                default: throw fail("bad \\u escape")
                }
                v = v << 4 | d
                i += 1
            }
            return v
        }

        mutating func string() throws -> String {
            i += 1
            var out: [UInt8] = []
            while true {
                // Plain characters are copied a run at a time (a wrap's parameters are one long run).
                let run = i
                i = bytes.withUnsafeBufferPointer { b in
                    var j = run
                    while j < b.count, b[j] >= 0x20, b[j] != UInt8(ascii: "\""), b[j] != UInt8(ascii: "\\") { j += 1 }
                    out.append(contentsOf: UnsafeBufferPointer(rebasing: b[run..<j]))
                    return j
                }
                guard i < bytes.count else { throw fail("unterminated string") }
                let c = bytes[i]
                if c == UInt8(ascii: "\"") { i += 1; break }
                if c < 0x20 { throw fail("a raw control character in a string") }
                i += 1
                guard i < bytes.count else { throw fail("unterminated string") }
                let e = bytes[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard bytes.count - i >= 6, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") else { throw fail("a lone surrogate") }
                        i += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw fail("a lone surrogate") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw fail("a lone surrogate")
                    }
                    guard let u = Unicode.Scalar(scalar) else { throw fail("bad \\u escape") }
                    out += Array(String(Character(u)).utf8)
                default: throw fail("bad escape")
                }
            }
            guard let s = String(validating: out, as: UTF8.self) else { throw fail("a string that is not UTF-8") }
            return s
        }
    }

    // MARK: Decoding, with every read field recorded

    /// The fields of every object decoded, and which of them the type read.
    final class Tracker {
        private var objects: [(codingPath: [any CodingKey], keys: [String], read: [Bool])] = []

        func register(codingPath: [any CodingKey], keys: [String]) -> Int {
            objects.append((codingPath, keys, [Bool](repeating: false, count: keys.count)))
            return objects.count - 1
        }

        /// Marks the object's field at `index` (in its text order) read.
        func read(_ index: Int, in object: Int) { objects[object].read[index] = true }

        func unknownField() -> String? {
            for o in objects {
                if let i = o.read.firstIndex(of: false) {
                    let path = StrictJSON.pathString(o.codingPath)
                    return path.isEmpty ? o.keys[i] : "\(path).\(o.keys[i])"
                }
            }
            return nil
        }
    }

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int?
        init(stringValue: String) { self.stringValue = stringValue }
        init(intValue: Int) { stringValue = "\(intValue)"; self.intValue = intValue }
    }

    static func pathString(_ path: [any CodingKey]) -> String {
        var s = ""
        for k in path {
            if let n = k.intValue { s += "[\(n)]" } else { s += s.isEmpty ? k.stringValue : ".\(k.stringValue)" }
        }
        return s
    }

    struct ValueDecoder: Decoder {
        let value: Value
        let codingPath: [any CodingKey]
        let tracker: Tracker
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        func mismatch(_ expected: String) -> DecodingError {
            .typeMismatch(Any.self, .init(codingPath: codingPath, debugDescription: "must be \(expected), not \(value.kind)"))
        }

        func container<K: CodingKey>(keyedBy type: K.Type) throws -> KeyedDecodingContainer<K> {
            guard case .object(let members) = value else { throw mismatch("an object") }
            let keys = members.map(\.key)
            let id = tracker.register(codingPath: codingPath, keys: keys)
            let byKey = Dictionary(members.enumerated().map { ($0.element.key, (index: $0.offset, value: $0.element.value)) }, uniquingKeysWith: { a, _ in a })
            return KeyedDecodingContainer(Keyed<K>(members: byKey, order: keys, codingPath: codingPath, tracker: tracker, id: id))
        }

        func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
            guard case .array(let items) = value else { throw mismatch("an array") }
            return Unkeyed(items: items, codingPath: codingPath, tracker: tracker)
        }

        func singleValueContainer() throws -> any SingleValueDecodingContainer { self }
    }

    struct Keyed<K: CodingKey>: KeyedDecodingContainerProtocol {
        /// Each field's value and its position in the text.
        let members: [String: (index: Int, value: Value)]
        let order: [String]
        let codingPath: [any CodingKey]
        let tracker: Tracker
        let id: Int

        var allKeys: [K] { order.compactMap { K(stringValue: $0) } }

        /// The value of field `key`, which is then read; nil when the object lacks it.
        func member(_ key: K) -> Value? {
            guard let m = members[key.stringValue] else { return nil }
            tracker.read(m.index, in: id)
            return m.value
        }

        func contains(_ key: K) -> Bool { member(key) != nil }

        func child(_ key: K) throws -> ValueDecoder {
            guard let v = member(key) else {
                throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "is missing"))
            }
            return ValueDecoder(value: v, codingPath: codingPath + [key], tracker: tracker)
        }

        func decodeNil(forKey key: K) throws -> Bool {
            if case .null = member(key) ?? .null { return true }
            return false
        }
        func decode<T: Decodable>(_ type: T.Type, forKey key: K) throws -> T { try child(key).decode(type) }

        /// An optional field in one lookup (the protocol's default makes three).
        func optional<T: Decodable>(_ type: T.Type, _ key: K) throws -> T? {
            guard let v = member(key) else { return nil }
            if case .null = v { return nil }
            return try ValueDecoder(value: v, codingPath: codingPath + [key], tracker: tracker).decode(type)
        }
        func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: K) throws -> T? { try optional(type, key) }
        func decodeIfPresent(_ type: String.Type, forKey key: K) throws -> String? { try optional(type, key) }
        func decodeIfPresent(_ type: Bool.Type, forKey key: K) throws -> Bool? { try optional(type, key) }
        func decodeIfPresent(_ type: Int.Type, forKey key: K) throws -> Int? { try optional(type, key) }
        func decodeIfPresent(_ type: Double.Type, forKey key: K) throws -> Double? { try optional(type, key) }

        func nestedContainer<N: CodingKey>(keyedBy type: N.Type, forKey key: K) throws -> KeyedDecodingContainer<N> {
            try child(key).container(keyedBy: type)
        }
        func nestedUnkeyedContainer(forKey key: K) throws -> any UnkeyedDecodingContainer { try child(key).unkeyedContainer() }
        func superDecoder() throws -> any Decoder { try child(K(stringValue: "super")!) }
        func superDecoder(forKey key: K) throws -> any Decoder { try child(key) }
    }

    struct Unkeyed: UnkeyedDecodingContainer {
        let items: [Value]
        let codingPath: [any CodingKey]
        let tracker: Tracker
        var currentIndex = 0
        var count: Int? { items.count }
        var isAtEnd: Bool { currentIndex >= items.count }

        mutating func next() throws -> ValueDecoder {
            guard !isAtEnd else {
                throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath, debugDescription: "has too few items"))
            }
            defer { currentIndex += 1 }
            return ValueDecoder(value: items[currentIndex], codingPath: codingPath + [Key(intValue: currentIndex)], tracker: tracker)
        }

        mutating func decodeNil() throws -> Bool {
            guard !isAtEnd else { return false }
            if case .null = items[currentIndex] { currentIndex += 1; return true }
            return false
        }
        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try next().decode(type) }
        mutating func nestedContainer<N: CodingKey>(keyedBy type: N.Type) throws -> KeyedDecodingContainer<N> { try next().container(keyedBy: type) }
        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try next().unkeyedContainer() }
        mutating func superDecoder() throws -> any Decoder { try next() }
    }
}

extension StrictJSON.ValueDecoder: SingleValueDecodingContainer {
    func decodeNil() -> Bool { if case .null = value { return true }; return false }

    func decode(_ type: Bool.Type) throws -> Bool {
        guard case .bool(let b) = value else { throw mismatch("true or false") }
        return b
    }

    func decode(_ type: String.Type) throws -> String {
        guard case .string(let s) = value else { throw mismatch("a string") }
        return s
    }

    func decode(_ type: Double.Type) throws -> Double {
        guard case .number(let n) = value, let d = Double(n) else { throw mismatch("a number") }
        return d
    }

    func decode(_ type: Float.Type) throws -> Float { Float(try decode(Double.self)) }

    func integer<I: FixedWidthInteger>(_ type: I.Type) throws -> I {
        guard case .number(let n) = value else { throw mismatch("a whole number") }
        if let v = I(n) { return v }
        // 1e3 or 10.0 are whole numbers too; 1.5 and out-of-range values are not.
        if let d = Double(n), d.rounded() == d, let v = I(exactly: d) { return v }
        throw mismatch("a whole number from \(I.min) to \(I.max)")
    }

    func decode(_ type: Int.Type) throws -> Int { try integer(type) }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer(type) }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer(type) }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer(type) }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer(type) }
    func decode(_ type: UInt.Type) throws -> UInt { try integer(type) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer(type) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer(type) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer(type) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer(type) }

    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        if case .null = value, !(T.self is any ExpressibleByNilLiteral.Type) {
            throw DecodingError.valueNotFound(type, .init(codingPath: codingPath, debugDescription: "must not be null"))
        }
        return try T(from: self)
    }
}

extension StrictJSON.Failure {
    init(decodingError e: DecodingError) {
        switch e {
        case .keyNotFound(let key, let ctx):
            self.init(path: StrictJSON.pathString(ctx.codingPath + [key]), problem: "is missing")
        case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx), .dataCorrupted(let ctx):
            self.init(path: StrictJSON.pathString(ctx.codingPath), problem: ctx.debugDescription)
        @unknown default:
            self.init(path: "", problem: "is not what this takes")
        }
    }
}
