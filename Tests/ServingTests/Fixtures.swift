import Units
import Accounting
import Catalog
import Foundation
import Hardware
import MoE
import Serving
import Testing

/// The repository's Data directory, found from this file's path.
let dataDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Data").path

/// Small trace files written for these tests.
let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/traces").path

/// The real spec library (Data/).
let library: SpecLibrary = {
    do { return try Catalog.load(from: dataDirectory) } catch { fatalError("Data/ must load: \(error)") }
}()

let embodied = EmbodiedModel(
    id: "test", dieAreaSquareCentimetres: 8.14, kilogramsPerSquareCentimetre: 1.8, memoryGigabytes: 80,
    kilogramsPerGigabyte: 0.4, lifetimeYears: 5, source: "LLMCarbon"
)

/// A deterministic random source for building randomized cases.
struct CaseRandom {
    var rng: SplitMix64
    init(_ seed: UInt64) { rng = SplitMix64(seed: seed) }
    mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(rng.next() % UInt64(range.count)) }
    mutating func double(_ range: ClosedRange<Double>) -> Double { range.lowerBound + rng.unit() * (range.upperBound - range.lowerBound) }
    mutating func bool() -> Bool { rng.next() & 1 == 1 }
}

/// A pool of `units` units of DeepSeek-V2-Lite on H800 with EP `ep`.
func litePool(_ role: UnitRole, units: Int, ep: Int, maxBatchPerRank: Int = 64, tokenBudgetPerRank: Int = 2048) -> PoolSpec {
    let model = try! library.model("deepseek-v2-lite")
    let deployment = library.serving.deployment(for: model, phase: role == .decode ? .decode : .prefill, ep: ep, tp: 1)
    return PoolSpec(role: role, units: units, deployment: deployment, maxBatchPerRank: maxBatchPerRank, tokenBudgetPerRank: tokenBudgetPerRank)
}

func scenario(
    _ topology: ServingTopology, duration: Double? = nil, interval: Double = 60, carbon: CarbonSeries? = nil,
    schedule: NodeSchedule? = nil, routing: RoutingChoice = .leastLoaded, start: Double = 1_740_628_800, model: String = "deepseek-v2-lite"
) -> ServingScenario {
    ServingScenario(
        name: "test", model: try! library.model(model), node: try! library.node("h800"), site: try! library.site("default"),
        topology: topology, schedule: schedule, routing: routing, startEpochSeconds: start, duration: duration, seed: 1,
        carbon: carbon ?? .constant(CarbonIntensity(gramsPerKWh: 500), region: "T", signal: .average, source: "test"),
        embodied: embodied, intervalSeconds: interval
    )
}

/// Random requests: `count` arrivals at `rate` per second, prompts up to `maxPrompt`, outputs up to `maxOutput`.
func randomRequests(_ r: inout CaseRandom, count: Int, rate: Double, maxPrompt: Int = 4000, maxOutput: Int = 300) -> [ServingRequest] {
    var t = r.double(0...5)
    return (0..<count).map { id in
        t += r.rng.exponential(mean: 1 / rate)
        let prompt = r.int(1...maxPrompt)
        let cached = r.bool() ? r.int(0...(prompt - 1)) : 0
        return ServingRequest(id: id, arrival: t, promptTokens: prompt, cachedTokens: cached, outputTokens: r.int(1...maxOutput))
    }
}

/// Runs `scenario` over `requests`, collecting every record and interval.
func simulate(_ scenario: ServingScenario, _ requests: [ServingRequest]) throws -> (RunSummary, [RequestRecord], [ClusterInterval]) {
    var simulator = try ServingSimulator(scenario: scenario)
    var stream = TraceStream(requests)
    var records: [RequestRecord] = []
    var intervals: [ClusterInterval] = []
    let summary = try simulator.run(&stream, onRecord: { records.append($0) }, onInterval: { intervals.append($0) })
    return (summary, records, intervals)
}
