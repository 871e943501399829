extension StringProtocol {
    /// Without leading and trailing blanks: tabs and Unicode space separators (Zs), exactly what
    /// `trimmingCharacters(in: .whitespaces)` removes, without `CharacterSet`, which lives in
    /// swift-corelibs-foundation: byokctl does not link that library (see `printError`).
    public var trimmingBlanks: String {
        func blank(_ c: Character) -> Bool { c.isWhitespace && !c.isNewline }
        guard let first = firstIndex(where: { !blank($0) }), let last = lastIndex(where: { !blank($0) }) else { return "" }
        return String(self[first...last])
    }
}
