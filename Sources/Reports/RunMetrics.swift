import Foundation
import Ledger
import Accounting
import Serving

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
    /// A sample of finished requests, evenly spread over the run in row order, for bootstrap intervals.
    public var sample: [RequestRecord]

    /// Reads run `id`: its request figures from the rollups written with its batches (a few rows
    /// a minute), or, for a run recorded before rollups or with `fullScan`, from every request row.
    /// Both give the same figures (sums to rounding; sketches bucket for bucket). `sampleSize`
    /// bounds the bootstrap sample: finished requests evenly spread over the run in row order.
    public static let defaultSampleSize = 5000

    public static func load(_ ledger: some LedgerQueries, run id: Int64, sampleSize: Int = defaultSampleSize, fullScan: Bool = false) throws -> RunMetrics {
        let run = try ledger.run(id)
        var m = RunMetrics(
            run: run, summary: run.decodedSummary, simulatedSeconds: 0, requests: 0, inFlight: 0, facilityJoules: 0, promptTokens: 0,
            outputTokens: 0, operationalGrams: 0, embodiedGrams: 0, nodeSeconds: 0, gpuSeconds: 0, clusterFacilityJoules: 0,
            gpuActiveJoules: 0, gpuIdleJoules: 0, hostJoules: 0, power: [], sample: []
        )
        // The run's requests folded into one rollup: from the stored rollups, or from every row.
        var total = RequestRollup.empty
        if !fullScan, let rollups = try ledger.rollups(.run(id)) {
            for row in rollups { total.merge(row.record) }
        } else {
            var read = 0
            try ledger.forEachRequest(.run(id)) { row in
                // A server request cancelled (its client left, or past its limit) stops reading here.
                read += 1
                if read & 0x3FF == 0 { try Task.checkCancellation() }
                total.add(row.record)
            }
        }
        m.requests = total.requests
        m.inFlight = total.inFlight
        m.facilityJoules = total.facilityJoules
        m.promptTokens = Double(total.promptTokens)
        m.outputTokens = Double(total.outputTokens)
        m.operationalGrams = total.operationalCarbonGrams
        m.embodiedGrams = total.embodiedCarbonGrams
        (m.energy, m.ttft, m.tpot, m.e2e) = (total.energy, total.ttft, total.tpot, total.e2e)
        m.sample = try ledger.spreadRequests(run: id, count: sampleSize).map(\.record)
        var byStart: [Double: Double] = [:]
        var lengths: [Double: Double] = [:]
        try ledger.forEachInterval(.run(id)) { row in
            let i = row.interval
            m.simulatedSeconds = max(m.simulatedSeconds, i.end)
            m.nodeSeconds += Double(i.nodes) * (i.end - i.start)
            m.gpuSeconds += i.gpuSeconds
            m.clusterFacilityJoules += i.facilityJoules
            m.gpuActiveJoules += i.gpuActiveJoules
            m.gpuIdleJoules += i.gpuIdleJoules
            m.hostJoules += i.hostActiveJoules + i.hostIdleJoules
            byStart[i.start, default: 0] += i.facilityJoules
            lengths[i.start] = max(lengths[i.start] ?? 0, i.end - i.start)
        }
        m.power = byStart.keys.sorted().map { t in (t, t + lengths[t]!, byStart[t]! / max(lengths[t]!, 1e-9) / 1000) }
        return m
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
