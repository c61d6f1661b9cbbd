import Catalog
import Foundation
import MoE
import Accounting
import Serving
import Testing

@Suite struct ScenarioTests {
    static let library: SpecLibrary = try! Catalog.load(from: repositoryData)

    static func load(_ path: String) throws -> LoadedScenario {
        try Catalog.loadScenario(at: path, library: library, dataDirectory: repositoryData)
    }

    @Test(arguments: [
        "deepseek-v3-day", "deepseek-v3-average-hour", "mixtral-single-node", "azure-conversation-deepseek", "deepseek-v3-dense-hour",
        "deepseek-v3-pruned-hour", "llama-3.1-70b-dense-hour",
    ])
    func everyShippedScenarioLoads(name: String) throws {
        let loaded = try Self.load(try Catalog.scenarioPath(name, dataDirectory: repositoryData))
        #expect(loaded.scenario.name == name)
        #expect(loaded.scenario.validate().isEmpty)
    }

    @Test func deepSeeksDayHasItsPublishedUnitsScheduleAndVolume() throws {
        let loaded = try Self.load(repositoryData + "/scenarios/deepseek-v3-day.yaml")
        let s = loaded.scenario
        guard case .disaggregated(let prefill, let decode) = s.topology else { Issue.record("expected disaggregated"); return }
        #expect(prefill.deployment.expertParallel == 32 && decode.deployment.expertParallel == 144)
        #expect(prefill.deployment.redundantExperts == 32 && decode.deployment.redundantExperts == 32)
        // Peak nodes: units × nodes per unit = the published 278.
        #expect(prefill.units * 4 + decode.units * 18 == s.schedule!.peakNodes)
        #expect(abs(s.schedule!.meanNodes - 226.75) < 1e-9)
        guard case .generator(let g) = loaded.workload else { Issue.record("expected a generator"); return }
        // 168B output and 608B input tokens per day.
        #expect(abs(g.ratePerSecond * g.output.mean * 86_400 / 168e9 - 1) < 1e-3)
        #expect(abs(g.ratePerSecond * g.prompt.mean * 86_400 / 608e9 - 1) < 2e-3)
        #expect(g.cachedFraction == 0.563)
        #expect(s.startEpochSeconds == 1_740_628_800) // 2025-02-27T12:00+08:00
    }

    func scratchScenario(_ text: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("joule-scenario-\(UUID().uuidString).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func expectFailure(_ edit: (String) -> String, mentions fragments: [String]) throws {
        let original = try String(contentsOfFile: repositoryData + "/scenarios/mixtral-single-node.yaml", encoding: .utf8)
        let path = try scratchScenario(edit(original))
        do {
            _ = try Self.load(path)
            Issue.record("expected loading to fail for \(fragments)")
        } catch {
            let message = "\(error)"
            for f in fragments { #expect(message.contains(f), "'\(message)' should mention '\(f)'") }
        }
    }

    @Test func aMisspeltFieldIsNamedWithItsLine() throws {
        try expectFailure({ $0.replacingOccurrences(of: "ratePerSecond: 8", with: "ratePerSecnd: 8") }, mentions: ["workload.generator.ratePerSecnd", "unknown field", ":17:"])
    }

    @Test func badValuesNameTheFieldAndWhatWasExpected() throws {
        try expectFailure({ $0.replacingOccurrences(of: "model: mixtral-8x7b", with: "model: mixtral-9x9b") }, mentions: ["model", "mixtral-8x7b"])
        try expectFailure({ $0.replacingOccurrences(of: "cv: 2", with: "cv: lots") }, mentions: ["arrivals.cv", "expected a number"])
        try expectFailure({ $0.replacingOccurrences(of: "kind: colocated", with: "kind: sideways") }, mentions: ["deployment.kind", "disaggregated or colocated"])
        try expectFailure({ $0.replacingOccurrences(of: "tp: 8", with: "tp: 3") }, mentions: ["deployment.unit.tp"])
        try expectFailure({ $0.replacingOccurrences(of: "mean: 211, sigma: 1.0", with: "mean: 0, sigma: 1.0") }, mentions: ["output.mean"])
    }

    @Test func aGeneratedWorkloadNeedsADurationFromTheFileOrTheFlag() throws {
        let original = try String(contentsOfFile: repositoryData + "/scenarios/mixtral-single-node.yaml", encoding: .utf8)
        let loaded = try Self.load(try scratchScenario(original.replacingOccurrences(of: "duration: 600\n", with: "")))
        #expect(loaded.scenario.duration == nil)
        #expect {
            _ = try Catalog.prepare(loaded, overrides: RunOverrides()).run(onRecord: { _ in })
        } throws: { "\($0)".contains("needs a duration") || "\($0)".contains("--duration SECONDS") }
        let summary = try Catalog.prepare(loaded, overrides: RunOverrides(duration: 5)).run(onRecord: { _ in })
        #expect(summary.simulatedSeconds == 5)
    }

    @Test func intensitySeriesLoadFromCSVAndReportBadRows() throws {
        let good = try scratchScenario("timestamp,gco2_per_kwh\n2025-02-27T00:00:00Z,500\n2025-02-27T02:00:00+01:00,400\n2025-02-27T02:00:00Z,300\n")
        let series = try Catalog.loadIntensityCSV(at: good, region: "X", signal: .marginal, source: "test")
        #expect(series.points.map(\.value) == [500, 400, 300])
        #expect(series.points[1].start - series.points[0].start == 3600)
        let bad = try scratchScenario("timestamp,gco2_per_kwh\n2025-02-27T00:00:00Z,500\n2025-02-27T01:00:00Z,lots\n")
        #expect {
            try Catalog.loadIntensityCSV(at: bad, region: "X", signal: .average, source: "test")
        } throws: { "\($0)".contains(":3: field 'gco2_per_kwh'") }
        let unordered = try scratchScenario("timestamp,gco2_per_kwh\n2025-02-27T01:00:00Z,500\n2025-02-27T00:00:00Z,400\n")
        #expect {
            try Catalog.loadIntensityCSV(at: unordered, region: "X", signal: .average, source: "test")
        } throws: { "\($0)".contains("out of time order") && "\($0)".contains("read strictly") }
        // The same rows with a gap are a step function: each holds until the next.
        let gap = try scratchScenario("timestamp,gco2_per_kwh\n2025-02-27T00:00:00Z,500\n2025-02-27T01:00:00Z,400\n2025-02-27T05:00:00Z,300\n")
        let stepped = try Catalog.loadIntensityCSV(at: gap, region: "X", signal: .average, source: "test")
        #expect(stepped.intensity(atEpochSeconds: stepped.points[1].start + 7200).gramsPerKWh == 400)
    }

    @Test func theAzureScenarioStartsAtItsTracesFirstTimestamp() throws {
        var loaded = try Self.load(repositoryData + "/scenarios/azure-conversation-deepseek.yaml")
        let fixture = URL(fileURLWithPath: repositoryData).deletingLastPathComponent().appendingPathComponent("Tests/Fixtures/traces/azure-small.csv").path
        let prepared = try Catalog.prepare(loaded, overrides: RunOverrides(trace: fixture, traceFormat: .azure))
        #expect(abs(prepared.scenario.startEpochSeconds - 1_700_158_546.68059) < 1e-4)
        #expect(prepared.traceRequests?.count == 4)
        loaded.hasStart = true
        let kept = try Catalog.prepare(loaded, overrides: RunOverrides(trace: fixture, traceFormat: .azure, seed: 9))
        #expect(kept.scenario.startEpochSeconds == loaded.scenario.startEpochSeconds)
        #expect(kept.scenario.seed == 9)
    }
}
