import ByokAPI
import Foundation
import PKCS11

/// Whether byokd works with a token in FIPS mode, as far as the module and token say. PKCS#11 has
/// no standard flag for it, so the evidence is what modules do report: an alternative FIPS entry
/// point (NSS softokn's `FC_GetFunctionList`/`FC_GetInterface`, which reach its FIPS token only)
/// and "FIPS" in the slot description, token label or model (NSS's "NSS FIPS 140-2 …").
enum FIPSMode {
    /// The FIPS entry points byokd knows of (NSS softokn's).
    static let fipsEntryPoints = ["FC_GetInterface", "FC_GetFunctionList"]

    /// What `status` says about FIPS mode, or nil when neither the module nor the token says.
    static func status(module: Module, token: TokenInfo, slot: SlotInfo?) -> StatusResponse.FIPS? {
        let named = [slot?.description, token.label, token.model].compactMap { $0 }.filter { $0.uppercased().contains("FIPS") }
        if fipsEntryPoints.contains(where: { module.entryPoint.symbol == $0 }) || !named.isEmpty {
            var evidence: [String] = []
            if !module.entryPoint.isStandard { evidence.append("the module was loaded through its FIPS entry point \(module.entryPoint.symbol)") }
            if let n = named.first { evidence.append("the token reports \"\(n)\"") }
            return .init(mode: "on", evidence: evidence.joined(separator: "; "))
        }
        if let alternative = fipsEntryPoints.last(where: module.exports) {
            return .init(mode: "off", evidence: "the module has a FIPS token behind \(alternative), but byokd loaded it through \(module.entryPoint.symbol); set functionListSymbol to \(alternative) to use it")
        }
        return nil
    }

    /// The NSS database an init string names (`configdir='sql:DIR'` or `configdir=DIR`), if any.
    static func nssDatabase(initArgs: String?) -> String? {
        guard let args = initArgs, let range = args.range(of: "configdir=") else { return nil }
        var rest = args[range.upperBound...]
        var quote: Character?
        if let q = rest.first, q == "'" || q == "\"" { quote = q; rest = rest.dropFirst() }
        let value = quote.map { q in rest.prefix { $0 != q } } ?? rest.prefix { !$0.isWhitespace }
        var dir = String(value)
        for prefix in ["sql:", "dbm:", "extern:", "rdb:"] where dir.hasPrefix(prefix) { dir.removeFirst(prefix.count) }
        return dir.isEmpty ? nil : dir
    }

    /// Whether the NSS database's `pkcs11.txt` marks its internal module FIPS (`modutil -fips true`
    /// writes `Flags=internal,FIPS,critical`).
    static func nssDatabaseIsMarkedFIPS(_ dir: String) -> Bool {
        guard let text = try? String(contentsOfFile: dir + "/pkcs11.txt", encoding: .utf8) else { return false }
        // The module's own "Flags=" word, not slotParams' "slotFlags=".
        return text.split(whereSeparator: \.isNewline).contains { line in
            line.split(whereSeparator: { $0.isWhitespace }).contains { word in
                let w = word.hasPrefix("NSS=") ? word.dropFirst(4) : word[...]
                guard w.hasPrefix("Flags=") else { return false }
                return w.dropFirst(6).split(separator: ",").contains { $0.lowercased() == "fips" }
            }
        }
    }

    /// Refuses an NSS module loaded through its standard entry point when its database is marked
    /// FIPS and the configuration did not choose an entry point: byokd would otherwise use the
    /// non-FIPS token without a word.
    static func checkNSSDatabase(config: Configuration, module: Module) throws {
        guard config.functionListSymbol == nil, module.entryPoint.isStandard,
              let dir = nssDatabase(initArgs: config.initArgs), nssDatabaseIsMarkedFIPS(dir),
              let fips = fipsEntryPoints.last(where: module.exports) else { return }
        throw ByokError(.tokenUnavailable, "the NSS database \(dir) is marked FIPS (its pkcs11.txt says Flags=…FIPS…), but byokd loaded \(module.path) through \(module.entryPoint.symbol) and so would use its non-FIPS token; set \"functionListSymbol\": \"\(fips)\" (--function-list-symbol \(fips)) to use the FIPS token, or \"C_GetFunctionList\" to use the non-FIPS token knowingly")
    }
}
