import Foundation
import Testing
import Units
@testable import Planning

@Suite struct PlanInputTests {
    @Test func sloParsesUnitsAndRoundTrips() throws {
        let slo = try PlanSLO.parse("ttft-p99=2s,tpot-p99=50ms,tokens-per-user=20")
        #expect(slo == PlanSLO(ttftP99: 2, tpotP99: 0.05, tokensPerUser: 20))
        #expect(slo.decodeStepTarget == 0.05)
        #expect(try PlanSLO.parse(slo.text) == slo)
        // The tighter of the p99 target and the per-user speed bounds a decode step.
        #expect(try PlanSLO.parse("tpot-p99=80ms,ttft-p99=500ms,tokens-per-user=25").decodeStepTarget == 0.04)
        for text in ["ttft-p99=1.5s,tpot-p99=0.04s", "ttft-p99=750ms,tpot-p99=33ms,tokens-per-user=12.5"] {
            let parsed = try PlanSLO.parse(text)
            #expect(try PlanSLO.parse(parsed.text) == parsed, "\(text)")
        }
    }

    @Test(arguments: [
        ("ttft-p99=2s", "missing tpot-p99"),
        ("tpot-p99=50ms", "missing ttft-p99"),
        ("ttft-p99=2s,tpot-p99=fast", "expected a time"),
        ("ttft-p99=-1s,tpot-p99=50ms", "expected a time"),
        ("ttft-p99=2s,tpot-p99=50ms,tokens-per-user=0", "tokens-per-user"),
        ("ttft-p99=2s,tpot-p99=50ms,e2e=9s", "unknown target 'e2e'"),
        ("ttft-p99 2s", "KEY=VALUE"),
        ("", "KEY=VALUE"),
    ])
    func badSLOSaysWhatIsWrong(text: String, expected: String) {
        #expect(throws: PlanInputError.self) { try PlanSLO.parse(text) }
        do { _ = try PlanSLO.parse(text) } catch { #expect("\(error)".contains(expected), "\(error)") }
    }

    /// Any text either parses to targets in range or is refused with a PlanInputError: never a trap.
    @Test(arguments: 0..<200)
    func arbitraryFlagTextNeverTraps(seed: Int) {
        var rng = SplitMix64(seed: UInt64(seed))
        let alphabet = Array("ttft-p99=tpot-p99=tokens-per-user=frequency=router-weighted=top-k=skip=all,.-=0123456789msé∞ e+")
        let text = String((0..<Int(rng.next() % 60)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] })
        do {
            let slo = try PlanSLO.parse(text)
            #expect(slo.ttftP99 > 0 && slo.tpotP99 > 0 && slo.ttftP99.isFinite && slo.tpotP99.isFinite, "\(text)")
        } catch {
            #expect(error is PlanInputError, "\(text): \(error)")
        }
        do {
            for c in try PruningChoice.parseList(text) {
                #expect((0..<1).contains(c.prunedFraction), "\(text)")
            }
        } catch {
            #expect(error is PlanInputError, "\(text): \(error)")
        }
    }

    @Test func pruningConfigurations() throws {
        #expect(try PruningChoice.parseList("all") == PruningChoice.standard)
        let list = try PruningChoice.parseList("frequency=0.25,router-weighted=0.5,top-k=6,skip=0.8")
        #expect(list.map(\.description) == ["frequency=0.25", "router-weighted=0.5", "top-k=6", "skip=0.8"])
        for bad in ["frequency=1.5", "top-k=0", "skip=1", "magic=0.3", "frequency"] {
            #expect(throws: PlanInputError.self, "\(bad)") { try PruningChoice.parseList(bad) }
        }
    }

    @Test func optionsRefuseNonsense() {
        let slo = PlanSLO(ttftP99: 1, tpotP99: 0.05)
        #expect(PlanOptions(slo: slo, warmupSeconds: -1).validate().map(\.field) == ["--warmup"])
        #expect(PlanOptions(slo: slo, windowSeconds: 0).validate().map(\.field) == ["--window"])
        #expect(PlanOptions(slo: slo, maxNodes: 0).validate().map(\.field) == ["--max-nodes"])
        var o = PlanOptions(slo: slo)
        o.microBatches = [0]
        #expect(o.validate().map(\.field) == ["--micro-batches"])
        #expect(PlanOptions(slo: slo).validate().isEmpty)
    }

    /// Replacing sections keeps every other section with its comments, in order, for every shipped scenario.
    @Test func scenarioTextKeepsWhatItDoesNotReplace() throws {
        let folder = dataDirectory + "/scenarios"
        for file in try FileManager.default.contentsOfDirectory(atPath: folder).filter({ $0.hasSuffix(".yaml") }) {
            let text = try String(contentsOfFile: folder + "/" + file, encoding: .utf8)
            let parsed = ScenarioText.sections(text)
            // Nothing replaced: the same text.
            #expect(ScenarioText.replacing([:], in: text, header: parsed.header, order: []) == text, "\(file)")
            let edited = ScenarioText.replacing(["deployment": "deployment: X", "name": "name: planned"], in: text, header: [], order: [])
            let after = ScenarioText.sections(edited).sections
            #expect(after.map(\.key) == parsed.sections.map(\.key), "\(file)")
            for (a, b) in zip(after, parsed.sections) where !["deployment", "name"].contains(a.key) {
                #expect(a.lines == b.lines, "\(file): \(a.key)")
            }
            #expect(after.first { $0.key == "deployment" }?.lines.last == "deployment: X")
        }
    }

    /// Quality figures are looked up by method and ratio, and every one cites its source.
    @Test func publishedQualityIsCitedAndMatched() throws {
        let data = try PlanningData.load(dataDirectory: dataDirectory)
        #expect(data.price.gpuHourUSD > 0)
        #expect(!data.quality.isEmpty)
        for q in data.quality { #expect(!q.citation.isEmpty && !q.model.isEmpty && !q.finding.isEmpty) }
        #expect(data.quality(for: PruningChoice(prunedFraction: 0.25, ranking: .frequency)).allSatisfy { $0.method == "frequency" && $0.fractions == [0.25] })
        #expect(!data.quality(for: PruningChoice(prunedFraction: 0.5, ranking: .routerWeighted)).isEmpty)
        #expect(data.quality(for: PruningChoice(expertsPerToken: 6)).isEmpty)
    }
}

let dataDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path + "/Data"
