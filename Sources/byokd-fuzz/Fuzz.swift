import ByokDaemon
import Foundation

#if FUZZING
/// libFuzzer's entry point (built by scripts/fuzz with -sanitize=fuzzer,address -DFUZZING).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    FuzzTargets.run(Array(UnsafeBufferPointer(start: data, count: size)))
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>, Int) -> Int32) -> Int32

/// SwiftPM links an executable's entry point under this name; hand control to libFuzzer's driver.
@_cdecl("byokd_fuzz_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var c = argc
    var v = argv
    return LLVMFuzzerRunDriver(&c, &v) { data, size in fuzzOne(data, size) }
}
#else
/// Without libFuzzer: replays corpus files or directories given as arguments and prints one line
/// per input, `<dir>/<file>: <outcome>` (a file given alone is printed as given), flushed before
/// the next input runs, so the line after the last one names the input that crashed. A missing
/// argument is an error (exit 2). FuzzRegressionTests holds these lines to Tests/fuzz-corpus/expected.
@main
struct Replay {
    static func main() {
        var count = 0
        for arg in CommandLine.arguments.dropFirst() {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: arg, isDirectory: &isDir) else {
                FileHandle.standardError.write(Data("byokd-fuzz: no such file or directory: \(arg)\n".utf8))
                exit(2)
            }
            let dirName = URL(fileURLWithPath: arg).lastPathComponent
            let files = isDir.boolValue
                ? ((try? FileManager.default.contentsOfDirectory(atPath: arg)) ?? []).sorted().map { (arg + "/" + $0, dirName + "/" + $0) }
                : [(arg, arg)]
            for (path, name) in files {
                guard let d = FileManager.default.contents(atPath: path) else { continue }
                FileHandle.standardError.write(Data("running \(name)\n".utf8))
                // Written at once (not buffered), so a crash on the next input still shows this one's line.
                FileHandle.standardOutput.write(Data("\(name): \(FuzzTargets.run(Array(d)))\n".utf8))
                count += 1
            }
        }
        FileHandle.standardError.write(Data("replayed \(count) inputs\n".utf8))
    }
}
#endif
