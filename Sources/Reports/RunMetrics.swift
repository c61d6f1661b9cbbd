import Foundation
import GRDB
import Ledger
import Serving
import Units

/// One finished request as the report uses it.
public struct RequestSample: Hashable, Sendable {
    public var facilityJoules: Double
    public var promptTokens: Double
    public var outputTokens: Double
    public var ttft: Double
    public var tpot: Double?
    public var e2e: Double
    public var carbonGrams: Double
}

/// Everything a report shows about one run, read from the ledger in one pass over its rows.
public struct RunMetrics: Sendable {
    public var run: StoredRun
    public var summary: RunSummary?
    public var simulatedSeconds: Double
    public var requests: Int
    public var inFlight: Int
    // Sums over finished requests.
    public var facilityJoules: Double
    public var promptTokens: Double
    public var outputTokens: Double
    public var operationalGrams: Double
    public var embodiedGrams: Double
    // Sums over cluster intervals.
    public var nodeSeconds: Double
    public var gpuSeconds: Double
    public var clusterFacilityJoules: Double
    public var gpuActiveJoules: Double
    public var gpuIdleJoules: Double
    public var hostJoules: Double
    /// Facility power over time: each accounting interval's span (seconds from the run's start) and mean kW.
    public var power: [(start: Double, end: Double, kilowatts: Double)]
    // Distributions.
    public var energy = QuantileSketch()
    public var ttft = QuantileSketch()
    public var tpot = QuantileSketch()
    public var e2e = QuantileSketch()
    /// A uniform sample of finished requests (reservoir, seeded by the run id) for bootstrap intervals.
    public var sample: [RequestSample]

    /// Reads run `id`. `sampleSize` bounds memory however long the run.
    public static let defaultSampleSize = 5000

    public static func load(_ ledger: Ledger, run id: Int64, sampleSize: Int = defaultSampleSize) throws -> RunMetrics {
        let run = try ledger.run(id)
        let summary = run.summary.flatMap { try? JSONDecoder().decode(RunSummary.self, from: Data($0.utf8)) }
        return try ledger.read { db in
            var m = RunMetrics(
                run: run, summary: summary, simulatedSeconds: 0, requests: 0, inFlight: 0, facilityJoules: 0, promptTokens: 0, outputTokens: 0,
                operationalGrams: 0, embodiedGrams: 0, nodeSeconds: 0, gpuSeconds: 0, clusterFacilityJoules: 0, gpuActiveJoules: 0,
                gpuIdleJoules: 0, hostJoules: 0, power: [], sample: []
            )
            var rng = SplitMix64(seed: UInt64(id) &* 0x9E37_79B9)
            let rows = try Row.fetchCursor(db, sql: """
                SELECT inFlight, arrivalSeconds, firstTokenSeconds, finishSeconds, promptTokens, outputTokens, facilityJoules,
                       operationalCarbonGrams, embodiedCarbonGrams
                FROM request WHERE runId = ? ORDER BY id
                """, arguments: [id])
            while let row = try rows.next() {
                if (row["inFlight"] as Int) != 0 {
                    m.inFlight += 1
                    continue
                }
                let arrival: Double = row["arrivalSeconds"]
                let first: Double = row["firstTokenSeconds"] ?? arrival
                let finish: Double = row["finishSeconds"] ?? first
                let out: Double = row["outputTokens"]
                let r = RequestSample(
                    facilityJoules: row["facilityJoules"], promptTokens: row["promptTokens"], outputTokens: out, ttft: first - arrival,
                    tpot: out > 1 ? (finish - first) / (out - 1) : nil, e2e: finish - arrival,
                    carbonGrams: (row["operationalCarbonGrams"] as Double) + (row["embodiedCarbonGrams"] as Double)
                )
                m.requests += 1
                m.facilityJoules += r.facilityJoules
                m.promptTokens += r.promptTokens
                m.outputTokens += r.outputTokens
                m.operationalGrams += row["operationalCarbonGrams"]
                m.embodiedGrams += row["embodiedCarbonGrams"]
                m.energy.add(r.facilityJoules)
                m.ttft.add(r.ttft)
                if let t = r.tpot { m.tpot.add(t) }
                m.e2e.add(r.e2e)
                if m.sample.count < sampleSize {
                    m.sample.append(r)
                } else {
                    let j = Int(rng.next() % UInt64(m.requests))
                    if j < sampleSize { m.sample[j] = r }
                }
            }
            var byStart: [Double: Double] = [:]
            var lengths: [Double: Double] = [:]
            let intervals = try Row.fetchCursor(db, sql: """
                SELECT startSeconds, endSeconds, nodes, gpuActiveJoules, hostActiveJoules, gpuIdleJoules, hostIdleJoules, facilityJoules, gpuSeconds
                FROM clusterInterval WHERE runId = ?
                """, arguments: [id])
            while let row = try intervals.next() {
                let start: Double = row["startSeconds"], end: Double = row["endSeconds"]
                m.simulatedSeconds = max(m.simulatedSeconds, end)
                m.nodeSeconds += Double(row["nodes"] as Int) * (end - start)
                m.gpuSeconds += row["gpuSeconds"]
                m.clusterFacilityJoules += row["facilityJoules"]
                m.gpuActiveJoules += row["gpuActiveJoules"]
                m.gpuIdleJoules += row["gpuIdleJoules"]
                m.hostJoules += (row["hostActiveJoules"] as Double) + (row["hostIdleJoules"] as Double)
                byStart[start, default: 0] += row["facilityJoules"]
                lengths[start] = max(lengths[start] ?? 0, end - start)
            }
            m.power = byStart.keys.sorted().map { t in (t, t + lengths[t]!, byStart[t]! / max(lengths[t]!, 1e-9) / 1000) }
            return m
        }
    }

    // Derived figures.
    public var meanNodes: Double { simulatedSeconds > 0 ? nodeSeconds / simulatedSeconds : 0 }
    public var meanGPUs: Double { simulatedSeconds > 0 ? gpuSeconds / simulatedSeconds : 0 }
    public var outputTokensPerSecondPerNode: Double { nodeSeconds > 0 ? outputTokens / nodeSeconds : 0 }
    public var inputTokensPerSecondPerNode: Double { nodeSeconds > 0 ? promptTokens / nodeSeconds : 0 }
    public var meanEnergyWh: Double { requests > 0 ? facilityJoules / Double(requests) / 3600 : 0 }
    public var joulesPerInputToken: Double { promptTokens > 0 ? facilityJoules / promptTokens : 0 }
    public var joulesPerOutputToken: Double { outputTokens > 0 ? facilityJoules / outputTokens : 0 }
    public var carbonGramsPerRequest: Double { requests > 0 ? (operationalGrams + embodiedGrams) / Double(requests) : 0 }
    public var carbonGramsPer1000Tokens: Double {
        promptTokens + outputTokens > 0 ? 1000 * (operationalGrams + embodiedGrams) / (promptTokens + outputTokens) : 0
    }
    /// The clusters's IT energy (GPU and host) and the facility overhead on top (PUE).
    public var itJoules: Double { gpuActiveJoules + gpuIdleJoules + hostJoules }
    public var facilityOverheadJoules: Double { clusterFacilityJoules - itJoules }
}
