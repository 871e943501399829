import CZlib

/// A small, strict reader for the console's ImportParameters.zip: the central directory, stored or
/// deflated entries, CRC-32 checked, with limits on count and size. Written for byokd after fuzzing
/// found a general-purpose ZIP library trapping (and leaking) on damaged archives.
enum ZipReader {
    struct Failure: Error { let reason: String }

    static let maxEntries = 64
    static let maxEntrySize = 1 << 20

    /// The files of the archive (directories skipped), by path.
    static func files(_ d: [UInt8]) throws -> [(path: String, bytes: [UInt8])] {
        func u16(_ i: Int) throws -> Int {
            guard i >= 0, i + 2 <= d.count else { throw Failure(reason: "truncated") }
            return Int(d[i]) | Int(d[i + 1]) << 8
        }
        func u32(_ i: Int) throws -> Int {
            guard i >= 0, i + 4 <= d.count else { throw Failure(reason: "truncated") }
            return Int(d[i]) | Int(d[i + 1]) << 8 | Int(d[i + 2]) << 16 | Int(d[i + 3]) << 24
        }
        // End of central directory: the last signature at least 22 bytes before the end.
        guard d.count >= 22 else { throw Failure(reason: "too short") }
        var eocd = -1
        var i = d.count - 22
        let lowest = max(0, d.count - 22 - 65_535)
        while i >= lowest {
            if d[i] == 0x50, d[i + 1] == 0x4B, d[i + 2] == 0x05, d[i + 3] == 0x06 { eocd = i; break }
            i -= 1
        }
        guard eocd >= 0 else { throw Failure(reason: "no end of central directory") }
        let count = try u16(eocd + 10)
        let cdSize = try u32(eocd + 12)
        let cdOffset = try u32(eocd + 16)
        guard count <= maxEntries else { throw Failure(reason: "\(count) entries") }
        guard cdOffset + cdSize <= eocd else { throw Failure(reason: "central directory out of bounds") }
        var files: [(String, [UInt8])] = []
        var p = cdOffset
        for _ in 0..<count {
            guard try u32(p) == 0x0201_4B50 else { throw Failure(reason: "bad central directory entry") }
            let flags = try u16(p + 8)
            let method = try u16(p + 10)
            let crc = try u32(p + 16)
            let compressed = try u32(p + 20)
            let size = try u32(p + 24)
            let nameLength = try u16(p + 28)
            let extraLength = try u16(p + 30)
            let commentLength = try u16(p + 32)
            let local = try u32(p + 42)
            guard p + 46 + nameLength <= d.count else { throw Failure(reason: "truncated name") }
            let path = String(decoding: d[(p + 46)..<(p + 46 + nameLength)], as: UTF8.self)
            p += 46 + nameLength + extraLength + commentLength
            if path.hasSuffix("/") { continue }
            guard flags & 1 == 0 else { throw Failure(reason: "\(path) is encrypted") }
            guard size <= maxEntrySize, compressed <= maxEntrySize else { throw Failure(reason: "\(path) is too large") }
            guard try u32(local) == 0x0403_4B50 else { throw Failure(reason: "bad local header for \(path)") }
            let start = local + 30 + (try u16(local + 26)) + (try u16(local + 28))
            guard start >= 0, start + compressed <= d.count else { throw Failure(reason: "\(path) is truncated") }
            let raw = Array(d[start..<(start + compressed)])
            let bytes: [UInt8]
            switch method {
            case 0: bytes = raw
            case 8: bytes = try inflate(raw, expected: size)
            default: throw Failure(reason: "\(path) uses compression method \(method)")
            }
            guard bytes.count == size else { throw Failure(reason: "\(path) has the wrong size") }
            let actual = bytes.withUnsafeBufferPointer { Int(crc32(0, $0.baseAddress, uInt($0.count))) }
            guard actual == crc else { throw Failure(reason: "\(path) fails its CRC-32 check") }
            files.append((path, bytes))
        }
        return files
    }

    /// Raw DEFLATE, producing at most `expected` bytes.
    static func inflate(_ input: [UInt8], expected: Int) throws -> [UInt8] {
        var stream = z_stream()
        guard byok_inflate_init_raw(&stream) == Z_OK else { throw Failure(reason: "inflateInit failed") }
        defer { inflateEnd(&stream) }
        var out = [UInt8](repeating: 0, count: max(expected, 1))
        var input = input
        let status: Int32 = input.withUnsafeMutableBufferPointer { inp in
            out.withUnsafeMutableBufferPointer { o in
                stream.next_in = inp.baseAddress
                stream.avail_in = uInt(inp.count)
                stream.next_out = o.baseAddress
                stream.avail_out = uInt(o.count)
                return CZlib.inflate(&stream, Z_FINISH)
            }
        }
        guard status == Z_STREAM_END else { throw Failure(reason: "damaged compressed data") }
        return Array(out.prefix(Int(stream.total_out)))
    }
}
