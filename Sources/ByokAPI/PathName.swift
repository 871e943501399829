/// Path arithmetic on plain strings. (swift-corelibs-foundation's NSString path methods trap on
/// some short relative paths, e.g. `("o" as NSString).deletingLastPathComponent` in release builds.)
public enum PathName {
    /// The directory part: "a/b" → "a", "b" → ".", "/b" → "/".
    public static func parent(_ path: String) -> String {
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        guard let i = trimmed.lastIndex(of: "/") else { return "." }
        return i == trimmed.startIndex ? "/" : String(trimmed[..<i])
    }

    /// The last component: "a/b" → "b", "b" → "b".
    public static func last(_ path: String) -> String {
        let trimmed = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        guard let i = trimmed.lastIndex(of: "/") else { return trimmed }
        return String(trimmed[trimmed.index(after: i)...])
    }
}
