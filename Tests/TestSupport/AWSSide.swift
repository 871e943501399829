import Foundation
import Synchronization

/// Plays AWS KMS with the openssl command: RSA wrapping key pairs, import parameters in each form
/// users hold them, and the unwrap that proves a wrap correct.
public enum AWSSide {
    public struct WrappingKeyPair: Sendable {
        public let privatePEM: String
        public let publicDER: Data
        public let bits: Int
    }

    /// Held while a missing pair is made, so each is made once.
    private static let cache = Mutex<[String: WrappingKeyPair]>([:])
    private static let dir = TempDir("byokd-aws")

    /// An RSA key pair of `bits` (cached for the test run) with public exponent `exponent`, or
    /// another type via `algorithm`: "RSA-PSS", "EC" (P-256), "ED25519".
    public static func keyPair(bits: Int = 2048, algorithm: String = "RSA", exponent: UInt64 = 65537) throws -> WrappingKeyPair {
        try cache.withLock { cache in
            let name = "\(algorithm)-\(bits)" + (exponent == 65537 ? "" : "-e\(exponent)")
            if let k = cache[name] { return k }
            let pem = dir.file("\(name).pem"), der = dir.file("\(name).der")
            switch algorithm {
            case "RSA", "RSA-PSS":
                try Tools.check("openssl", ["genpkey", "-algorithm", algorithm, "-pkeyopt", "rsa_keygen_bits:\(bits)",
                                            "-pkeyopt", "rsa_keygen_pubexp:\(exponent)", "-out", pem])
            case "EC":
                try Tools.check("openssl", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", pem])
            default:
                try Tools.check("openssl", ["genpkey", "-algorithm", algorithm, "-out", pem])
        }
        try Tools.check("openssl", ["pkey", "-in", pem, "-pubout", "-outform", "DER", "-out", der])
        let k = WrappingKeyPair(privatePEM: pem, publicDER: try Data(contentsOf: URL(fileURLWithPath: der)), bits: bits)
        cache[name] = k
        return k
        }
    }

    /// An RSA public key's modulus and exponent (big-endian, no leading zeros) as the openssl
    /// command prints them: a reference independent of the code under test.
    public static func rsaComponents(_ publicDER: Data) throws -> (modulus: [UInt8], exponent: [UInt8]) {
        let d = TempDir("byokd-rsa")
        let text = try Tools.check("openssl", ["pkey", "-pubin", "-inform", "DER", "-in", d.write("k.der", publicDER), "-text", "-noout"]).out
        var modulusHex = "", exponent: UInt64?
        var inModulus = false
        for line in text.split(separator: "\n") {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.hasPrefix("Modulus:") { inModulus = true; continue }
            if t.hasPrefix("Exponent:") || t.hasPrefix("publicExponent:") {
                inModulus = false
                exponent = t.split(separator: " ").dropFirst().first.flatMap { UInt64($0) }
                continue
            }
            if inModulus { modulusHex += t.replacingOccurrences(of: ":", with: "") }
        }
        guard let e = exponent, !modulusHex.isEmpty else { throw FixtureError("openssl printed no RSA modulus and exponent:\n\(text)") }
        var modulus = stride(from: 0, to: modulusHex.count, by: 2).map { i -> UInt8 in
            let start = modulusHex.index(modulusHex.startIndex, offsetBy: i)
            return UInt8(modulusHex[start..<modulusHex.index(start, offsetBy: 2)], radix: 16)!
        }
        while modulus.first == 0 { modulus.removeFirst() }
        var exp = withUnsafeBytes(of: e.bigEndian, Array.init)
        while exp.first == 0 { exp.removeFirst() }
        return (modulus, exp)
    }

    public static func randomImportToken(_ n: Int = 600) -> Data {
        Data((0..<n).map { _ in UInt8.random(in: 0...255) })
    }

    public static let keyId = "1234abcd-12ab-34cd-56ef-1234567890ab"
    public static let keyArn = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

    /// The JSON `aws kms get-parameters-for-import` prints.
    public static func cliJSON(publicKey: Data, importToken: Data, validTo: Any = isoString(Date().addingTimeInterval(86_000)),
                               keyId: String = keyArn) -> Data {
        let obj: [String: Any] = ["KeyId": keyId, "PublicKey": publicKey.base64EncodedString(),
                                  "ImportToken": importToken.base64EncodedString(), "ParametersValidTo": validTo]
        return try! JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
    }

    /// Like the AWS CLI prints it: 2026-11-30T03:08:09.123000+00:00.
    public static func isoString(_ d: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "UTC")
        f.dateFormat = "yyyy-MM-dd'T'HH:mm:ss.SSS'000+00:00'"
        return f.string(from: d)
    }

    /// The console's ImportParameters.zip, made with Python's zipfile (independent of ZIPFoundation).
    public static func consoleZip(publicKey: Data, importToken: Data, readme: String?, into dir: TempDir, name: String = "ImportParameters.zip") throws -> String {
        let stamp = "1130030809"
        let work = dir.file("zip-src-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        try publicKey.write(to: URL(fileURLWithPath: "\(work)/wrappingKey_\(keyId)_\(stamp)"))
        try importToken.write(to: URL(fileURLWithPath: "\(work)/importToken_\(keyId)_\(stamp)"))
        if let readme { try Data(readme.utf8).write(to: URL(fileURLWithPath: "\(work)/README_\(keyId)_\(stamp).txt")) }
        let out = dir.file(name)
        let script = "import os,sys,zipfile\nz=zipfile.ZipFile(sys.argv[2],'w',zipfile.ZIP_DEFLATED)\n[z.write(os.path.join(sys.argv[1],f),f) for f in sorted(os.listdir(sys.argv[1]))]\nz.close()\n"
        try Tools.check("python3", ["-c", script, work, out])
        return out
    }

    /// The README the console puts in the ZIP (the lines byokd reads).
    public static func consoleReadme(algorithm: String, wrappingKeySpec: String, validTo: Date, keySpec: String? = nil) -> String {
        var s = "This ZIP contains the wrapping public key and import token for KMS key \(keyId).\n"
        s += "Wrapping algorithm: \(algorithm)\n"
        s += "Wrapping key spec: \(wrappingKeySpec)\n"
        if let keySpec { s += "Key spec: \(keySpec)\n" }
        s += "The wrapping public key and import token expire at \(isoString(validTo)).\n"
        return s
    }

    /// RSAES-OAEP decryption with openssl pkeyutl: OAEP and MGF1 with `hash` ("sha1", "sha256").
    public static func decryptOAEP(_ blob: Data, with key: WrappingKeyPair, hash: String) throws -> Data {
        let d = TempDir("byokd-unwrap")
        let inp = d.write("in", blob)
        let out = d.file("out")
        try Tools.check("openssl", ["pkeyutl", "-decrypt", "-inkey", key.privatePEM, "-in", inp, "-out", out,
                                    "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:\(hash)", "-pkeyopt", "rsa_mgf1_md:\(hash)"])
        return try Data(contentsOf: URL(fileURLWithPath: out))
    }

    /// RSA_AES_KEY_WRAP unwrap: OAEP of the first k bytes, then RFC 5649 (id-aes256-wrap-pad, IV A65959A6).
    public static func unwrapRsaAes(_ blob: Data, with key: WrappingKeyPair, hash: String) throws -> Data {
        let k = key.bits / 8
        let aes = try decryptOAEP(blob.prefix(k), with: key, hash: hash)
        let d = TempDir("byokd-unwrap")
        let inp = d.write("in", Data(blob.dropFirst(k)))
        let out = d.file("out")
        try Tools.check("openssl", ["enc", "-d", "-id-aes256-wrap-pad", "-K", aes.hex, "-iv", "A65959A6", "-in", inp, "-out", out])
        return try Data(contentsOf: URL(fileURLWithPath: out))
    }

    /// Why `material` is not exactly one DER PKCS#8 PrivateKeyInfo with nothing after it, as AWS
    /// takes private key material, or nil when it is. The length is checked here, byte for byte:
    /// OpenSSL's DER reader ignores whatever follows the structure.
    public static func exactPKCS8Problem(_ material: Data) -> String? {
        let d = [UInt8](material)
        guard d.count >= 2, d[0] == 0x30 else { return "no DER SEQUENCE at the start (\(d.count) bytes)" }
        var length = Int(d[1]), header = 2
        if length & 0x80 != 0 {
            let n = length & 0x7F
            guard n >= 1, n <= 4, d.count >= 2 + n else { return "a DER length that cannot be read" }
            length = d[2..<(2 + n)].reduce(0) { $0 << 8 | Int($1) }
            header = 2 + n
        }
        guard header + length == d.count else {
            return "\(d.count) bytes, but the PKCS#8 structure is \(header + length): \(d.count - header - length) bytes after it"
        }
        let dir = TempDir("byokd-p8")
        let r = try? Tools.run("openssl", ["pkey", "-inform", "DER", "-in", dir.write("p8.der", material), "-noout"])
        return r?.code == 0 ? nil : "OpenSSL cannot read it as a private key: \(r?.err ?? "")"
    }

    /// KCV of an AES key computed in software: first 3 bytes of AES-ECB(key, 16 zero bytes).
    public static func aesKCV(_ key: Data) throws -> String {
        let r = try Tools.check("openssl", ["enc", "-aes-\(key.count * 8)-ecb", "-nopad", "-K", key.hex], stdin: Data(count: 16))
        return r.stdout.prefix(3).hex.uppercased()
    }

    /// HMAC in software with openssl dgst.
    public static func hmac(_ key: Data, message: Data, digest: String) throws -> Data {
        let r = try Tools.check("openssl", ["dgst", "-\(digest)", "-mac", "HMAC", "-macopt", "hexkey:\(key.hex)", "-binary"], stdin: message)
        return r.stdout
    }

    /// The public key (DER SubjectPublicKeyInfo) inside a DER PKCS#8 PrivateKeyInfo.
    public static func publicKeyOfPKCS8(_ der: Data) throws -> Data {
        let d = TempDir("byokd-p8")
        let inp = d.write("p8.der", der)
        let r = try Tools.check("openssl", ["pkey", "-inform", "DER", "-in", inp, "-pubout", "-outform", "DER"])
        return r.stdout
    }
}

extension Data {
    public var hex: String { map { String(format: "%02x", $0) }.joined() }
}
