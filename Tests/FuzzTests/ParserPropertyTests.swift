import Foundation
import FuzzTargets
import Testing
import Units

let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

/// Random and mutated bytes into every parser (issue "Hardening"): each input gives a value that
/// meets the parser's postconditions or an error naming the file, never a trap, a hang or an
/// out-of-range value. `Scripts/fuzz` searches the same targets with coverage guidance; this test
/// runs a fixed, seeded 10,000 inputs per target on every `swift test`, plus every input kept
/// under `Tests/Fuzz/TARGET/`.
@Suite struct ParserPropertyTests {
    static let context: FuzzContext = {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("joule-fuzz-tests-\(getpid())").path
        try! FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return try! FuzzContext(dataDirectory: repository + "/Data", folder: folder)
    }()

    static func seeds(_ target: FuzzTarget) -> [Data] {
        target.seedFiles.map { FileManager.default.contents(atPath: repository + "/" + $0)! } + kept(target, "corpus").map(\.data)
    }

    /// The inputs kept under `Tests/Fuzz/TARGET/FOLDER`.
    static func kept(_ target: FuzzTarget, _ folder: String) -> [(path: String, data: Data)] {
        let dir = "\(repository)/Tests/Fuzz/\(target.rawValue)/\(folder)"
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        return names.compactMap { name in FileManager.default.contents(atPath: dir + "/" + name).map { (dir + "/" + name, $0) } }
    }

    @Test("Every seed file is accepted as it stands", arguments: FuzzTarget.allCases)
    func seedsAreAccepted(target: FuzzTarget) {
        for (file, data) in zip(target.seedFiles, Self.seeds(target)) {
            #expect(target.run(data, in: Self.context) == .accepted, "\(file)")
        }
    }

    @Test("10,000 random and mutated inputs: a value or an error naming the file, never a broken law", arguments: FuzzTarget.allCases)
    func randomAndMutatedInputs(target: FuzzTarget) {
        var mutator = Mutator(seeds: Self.seeds(target), seed: 0x5EED_0000 &+ UInt64(FuzzTarget.allCases.firstIndex(of: target)!))
        var accepted = 0, rejected = 0
        var violations: [String] = []
        let count = ProcessInfo.processInfo.environment["JOULE_FUZZ_INPUTS"].flatMap { Int($0) } ?? 10_000
        let clock = ContinuousClock.now
        for _ in 0..<count {
            let input = mutator.next()
            switch target.run(input, in: Self.context) {
            case .accepted: accepted += 1
            case .rejected: rejected += 1
            case .violated(let why):
                if violations.count < 5 { violations.append("\(why) ← \(String(decoding: input.prefix(300), as: UTF8.self))") }
            }
        }
        print("fuzz \(target.rawValue): \(count) inputs, \(accepted) accepted, \(rejected) rejected, \(violations.count) broken, \(ContinuousClock.now - clock)")
        #expect(violations.isEmpty, "\(violations.joined(separator: "\n"))")
        // The mix reaches past the first syntax check: some inputs parse, most do not.
        #expect(accepted > 0 && rejected > 0, "accepted \(accepted), rejected \(rejected)")
    }

    @Test("Every input kept under Tests/Fuzz (corpus, and crashes once found) keeps its law", arguments: FuzzTarget.allCases)
    func keptInputs(target: FuzzTarget) {
        for (path, data) in Self.kept(target, "corpus") + Self.kept(target, "crashes") {
            if case .violated(let why) = target.run(data, in: Self.context) { Issue.record("\(path): \(why)") }
        }
    }

    @Test("An error that does not name its file is itself a broken law")
    func lawIsChecked() {
        // A one-line daemon file is a valid configuration; a misspelt key is an error naming the file.
        #expect(FuzzTarget.daemonYAML.run(Data("database: x.sqlite\n".utf8), in: Self.context) == .accepted)
        guard case .rejected(let m) = FuzzTarget.daemonYAML.run(Data("databse: x\n".utf8), in: Self.context) else {
            Issue.record("a misspelt key was not rejected")
            return
        }
        #expect(m.contains("databse") && m.contains(":1"))
    }
}

/// Seeded byte-level and token-level mutations of seed files, and random bytes.
struct Mutator {
    let seeds: [Data]
    var rng: SplitMix64

    init(seeds: [Data], seed: UInt64) {
        self.seeds = seeds
        self.rng = SplitMix64(seed: seed)
    }

    /// Values that once trapped or hung a parser somewhere, or sit at a type's edge.
    static let extremes = [
        "0", "-1", "-0", "1e308", "-1e308", "1e-300", "1e300", "nan", "NaN", "inf", "-inf", "Infinity", "9223372036854775807",
        "9223372036854775808", "-9223372036854775808", "18446744073709551616", "0.5", "1e19", "99999999999", "0x10", "",
        "2025-02-30T00:00:00Z", "2025-13-01T00:00:00Z", "9999-12-31T23:59:59Z", "1969-12-31T23:59:59Z", "null", "true", "[]", "{}", "\"\"",
    ]

    mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(rng.next() % UInt64(n)) }

    mutating func next() -> Data {
        if below(5) == 0 { return random() }
        var bytes = [UInt8](seeds[below(seeds.count)])
        for _ in 0..<(1 + below(6)) { mutate(&bytes) }
        return Data(bytes)
    }

    mutating func random() -> Data {
        let alphabet = Array("0123456789.,:;-+eE \n\t\"{}[]abcxyz_T/Z#'\r".utf8)
        let count = below(400)
        let printable = below(3) != 0
        return Data((0..<count).map { _ in printable ? alphabet[below(alphabet.count)] : UInt8(truncatingIfNeeded: rng.next()) })
    }

    mutating func mutate(_ b: inout [UInt8]) {
        switch below(8) {
        case 0 where !b.isEmpty:  // a flipped bit
            b[below(b.count)] ^= UInt8(1 << below(8))
        case 1 where !b.isEmpty:  // a byte replaced
            b[below(b.count)] = UInt8(truncatingIfNeeded: rng.next())
        case 2:  // bytes inserted
            let at = below(b.count + 1)
            b.insert(contentsOf: (0..<(1 + below(4))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: at)
        case 3 where !b.isEmpty:  // a range deleted
            let from = below(b.count)
            b.removeSubrange(from..<min(b.count, from + 1 + below(64)))
        case 4 where !b.isEmpty:  // a range duplicated
            let from = below(b.count)
            let range = from..<min(b.count, from + 1 + below(256))
            b.insert(contentsOf: b[range], at: below(b.count + 1))
        case 5:  // spliced with another seed
            let other = [UInt8](seeds[below(seeds.count)])
            guard !other.isEmpty else { return }
            let cut = below(b.count + 1), from = below(other.count)
            b = Array(b[..<cut]) + Array(other[from...])
        case 6 where !b.isEmpty:  // the tail cut
            b.removeLast(below(b.count))
        default:  // a number, or a word, replaced by an extreme value
            replaceToken(&b)
        }
    }

    mutating func replaceToken(_ b: inout [UInt8]) {
        func isToken(_ c: UInt8) -> Bool { (48...57).contains(c) || c == 46 || c == 45 || c == 43 || c == 101 || c == 69 || c == 58 || c == 84 || c == 90 }
        let starts = b.indices.filter { (48...57).contains(b[$0]) && ($0 == 0 || !isToken(b[$0 - 1])) }
        guard !starts.isEmpty else { return }
        let start = starts[below(starts.count)]
        var end = start
        while end < b.count, isToken(b[end]) { end += 1 }
        b.replaceSubrange(start..<end, with: Array(Self.extremes[below(Self.extremes.count)].utf8))
    }
}
