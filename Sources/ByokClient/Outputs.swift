import ByokAPI
import Foundation
import Posix

/// Writes the files AWS takes, each atomically: a temporary file in the same directory, fsync,
/// rename; then one fsync of the directory for all of them. A crash leaves the old file or the new
/// one, never half of one.
public enum Outputs {
    public static let encryptedKeyMaterial = "EncryptedKeyMaterial.bin"
    public static let importToken = "ImportToken.bin"
    public static let manifest = "manifest.json"
    public static let all = [encryptedKeyMaterial, importToken, manifest]
    /// Azure's Key Transfer Blob and Google Cloud's wrapped key.
    public static let azureBYOK = "KeyTransferPackage.byok"
    public static let gcpWrappedKey = "WrappedKey.bin"

    /// The files a wrap for `provider` writes.
    public static func files(for provider: CloudProvider) -> [String] {
        switch provider {
        case .aws: all
        case .azure: [azureBYOK, manifest]
        case .gcp: [gcpWrappedKey, manifest]
        }
    }

    /// Checks, before anything is asked of byokd, that the outputs can be written: refuses to
    /// overwrite earlier outputs unless `force`. Creates nothing, so a failed wrap leaves nothing behind.
    public static func check(directory: String, force: Bool, provider: CloudProvider = .aws) throws {
        if let isDir = isDirectory(directory) {
            guard isDir else { throw ByokError(.outputUnwritable, "--out \(directory) exists and is not a directory") }
            if !force, let existing = files(for: provider).first(where: { FileManager.default.fileExists(atPath: directory + "/" + $0) }) {
                throw ByokError(.outputExists, "\(directory)/\(existing) already exists; choose another --out directory or pass --force to replace it")
            }
            guard access(directory, W_OK | X_OK) == 0 else { throw ByokError(.outputUnwritable, "cannot write to \(directory): \(String(cString: strerror(errno)))") }
        } else {
            // The nearest existing ancestor must be a directory this user may write into: a file in
            // the way (`--out notes.txt/x`) or a read-only place would otherwise fail only after
            // byokd had wrapped (and audited) the key.
            var parent = PathName.parent(directory)
            while !FileManager.default.fileExists(atPath: parent) { parent = PathName.parent(parent) }
            guard isDirectory(parent) == true else {
                throw ByokError(.outputUnwritable, "cannot create --out \(directory): \(parent) is not a directory")
            }
            guard access(parent, W_OK | X_OK) == 0 else {
                throw ByokError(.outputUnwritable, "cannot create --out \(directory): \(parent) is not writable (\(String(cString: strerror(errno))))")
            }
        }
    }

    /// Whether `path` is a directory (following links); nil if nothing is there. stat(2), not
    /// FileManager's `isDirectory:` (its ObjCBool is swift-corelibs-foundation's; see DESIGN.md).
    static func isDirectory(_ path: String) -> Bool? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Creates the output directory (0700) if it does not exist.
    public static func create(directory: String) throws {
        if isDirectory(directory) == true { return }
        let parent = PathName.parent(directory)
        if parent != directory && parent != "." && parent != "/" { try create(directory: parent) }
        do { _ = try Posix.retrying("mkdir") { mkdir(directory, 0o700) } } catch where error.code == EEXIST {
            // Made meanwhile (or a file: writing into it says so).
        } catch {
            throw ByokError(.outputUnwritable, "cannot create --out directory \(directory): \(error.message)")
        }
    }

    /// Writes the files of one wrap into `directory`, each atomically and mode 0600: every file to a
    /// temporary file there and fsync'd, then each renamed into place, then ONE fsync of the
    /// directory for all the renames. A crash leaves each file old or new, never half of one; the
    /// directory is synced once rather than once per file (each fsync is a disk flush), so a wrap's
    /// files go through one call (there is no one-file variant to call three times).
    public static func writeAtomically(_ files: [(name: String, data: Data)], directory: String) throws {
        var temporary: [(tmp: String, name: String)] = []
        defer { for t in temporary { unlink(t.tmp) } }  // what was not renamed
        for (name, data) in files {
            var template = Array("\(directory)/.\(name).XXXXXX".utf8CString)
            let fd: Int32
            do { fd = try Posix.retrying("mkstemp") { template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) } } } catch {
                throw ByokError(.outputUnwritable, "cannot create a file in \(directory): \(error.message)")
            }
            temporary.append((String(cString: template), name))
            let written = Result { () throws(Errno) in
                try Posix.retrying("fchmod") { fchmod(fd, 0o600) }
                try Posix.writeAll(fd, [UInt8](data))
                try Posix.retrying("fsync") { fsync(fd) }
            }
            close(fd)
            if case .failure(let e) = written { throw ByokError(.outputUnwritable, "cannot write \(directory)/\(name): \(e.message)") }
        }
        while let (tmp, name) = temporary.first {
            do { try Posix.retrying("rename") { rename(tmp, "\(directory)/\(name)") } } catch {
                throw ByokError(.outputUnwritable, "cannot write \(directory)/\(name): \(error.message)")
            }
            temporary.removeFirst()
        }
        if let dfd = try? Posix.retrying("open", { open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }) {
            _ = try? Posix.retrying("fsync") { fsync(dfd) }
            close(dfd)
        }
    }

    /// Reads an operator's input file, with a clear error.
    public static func read(_ path: String, what: String, limit: Int = 1 << 20) throws -> Data {
        var st = stat()
        guard stat(path, &st) == 0 else { throw ByokError(.inputUnreadable, "cannot read \(what) \(path): \(String(cString: strerror(errno)))") }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw ByokError(.inputUnreadable, "\(what) \(path) is not a regular file") }
        guard Int(st.st_size) <= limit else { throw ByokError(.paramsInvalid, "\(what) \(path) is \(st.st_size) bytes, larger than any AWS import parameters (limit \(limit)); is it the right file?") }
        guard let d = FileManager.default.contents(atPath: path) else { throw ByokError(.inputUnreadable, "cannot read \(what) \(path)") }
        return d
    }

    /// `directory` as an absolute path without `.`/`..` steps or doubled slashes (for the commands
    /// an operator copies: `fileb:///home/a/out/…`, not `fileb:///home/a/./out/…`).
    public static func absolute(_ directory: String) -> String {
        let joined = directory.hasPrefix("/") ? directory : FileManager.default.currentDirectoryPath + "/" + directory
        var parts: [Substring] = []
        for p in joined.split(separator: "/") {
            if p == "." { continue }
            if p == ".." { _ = parts.popLast(); continue }
            parts.append(p)
        }
        return "/" + parts.joined(separator: "/")
    }

    /// The `aws kms import-key-material` command for these outputs, shell-quoted.
    public static func awsCommand(manifest: Manifest, directory: String) -> String {
        func q(_ s: String) -> String {
            s.allSatisfy { $0.isLetter || $0.isNumber || "-_./:=@%+,".contains($0) } ? s : "'" + s.replacing("'", with: "'\\''") + "'"
        }
        let dir = absolute(directory)
        let keyId = manifest.kmsKeyId ?? "<KMS_KEY_ID>"
        return """
        aws kms import-key-material --key-id \(q(keyId)) \\
            --encrypted-key-material \(q("fileb://" + dir + "/" + encryptedKeyMaterial)) \\
            --import-token \(q("fileb://" + dir + "/" + importToken)) \\
            --expiration-model KEY_MATERIAL_DOES_NOT_EXPIRE
        """
    }
}
