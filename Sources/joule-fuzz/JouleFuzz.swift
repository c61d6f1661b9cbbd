import Catalog
import Foundation
import FuzzTargets

// joule-fuzz: runs one parser target (JOULE_FUZZ_TARGET) under libFuzzer when built by
// `Scripts/fuzz` (with -sanitize=fuzzer and -DJOULE_LIBFUZZER), or replays files through it
// otherwise: `joule-fuzz TARGET FILE...` prints each file's outcome and exits 1 on a broken law.

/// The target and its context, made once per process.
let harness: (target: FuzzTarget, context: FuzzContext) = {
    let environment = ProcessInfo.processInfo.environment
    let name = environment["JOULE_FUZZ_TARGET"] ?? CommandLine.arguments.dropFirst().first ?? ""
    guard let target = FuzzTarget(rawValue: name) else {
        FileHandle.standardError.write(Data("joule-fuzz: unknown target '\(name)'; expected one of \(FuzzTarget.allCases.map(\.rawValue).joined(separator: ", "))\n".utf8))
        exit(2)
    }
    do {
        let data = try Catalog.locateDataDirectory(explicit: nil, environment: environment, executablePath: CommandLine.arguments[0])
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("joule-fuzz-\(getpid())").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return (target, try FuzzContext(dataDirectory: data, folder: folder))
    } catch {
        FileHandle.standardError.write(Data("joule-fuzz: \(error)\n".utf8))
        exit(2)
    }
}()

/// One input: a broken law is a crash, which is what the fuzzer looks for.
func fuzzOne(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> Int32 {
    let data = bytes.map { Data(bytes: $0, count: count) } ?? Data()
    if case .violated(let why) = harness.target.run(data, in: harness.context) {
        fatalError("\(harness.target.rawValue): \(why)")
    }
    return 0
}

#if JOULE_LIBFUZZER
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

@_cdecl("LLVMFuzzerTestOneInput")
public func LLVMFuzzerTestOneInput(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> Int32 { fuzzOne(bytes, count) }

/// SwiftPM links an executable's entry point under this name; libFuzzer's driver takes over.
@_cdecl("joule_fuzz_main")
func jouleFuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    _ = harness
    if ProcessInfo.processInfo.environment["JOULE_FUZZ_SEEDS"] != nil {
        // Scripts/fuzz asks for the target's seed files (paths from the repository's root).
        harness.target.seedFiles.forEach { print($0) }
        return 0
    }
    var count = argc
    var arguments = argv
    return LLVMFuzzerRunDriver(&count, &arguments) { fuzzOne($0, $1) }
}
#else
@main
struct Replay {
    static func main() {
        let files = CommandLine.arguments.dropFirst(2)
        var broken = 0
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else {
                print("\(file): cannot read")
                broken += 1
                continue
            }
            switch harness.target.run(data, in: harness.context) {
            case .accepted: print("\(file): accepted")
            case .rejected(let message): print("\(file): rejected: \(message.prefix(200))")
            case .violated(let why):
                print("\(file): VIOLATED: \(why)")
                broken += 1
            }
        }
        exit(broken == 0 ? 0 : 1)
    }
}
#endif
