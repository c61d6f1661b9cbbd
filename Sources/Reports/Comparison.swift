import Foundation
import Routing
import Accounting
import Serving
import Units

/// A figure with, for candidates, its change against the baseline and a bootstrap 95 % interval
/// of that change (in percent of the baseline's figure).
public struct Figure: Encodable, Sendable {
    public var value: Double?
    public var unit: String
    public var deltaPercent: Double?
    public var ciLowPercent: Double?
    public var ciHighPercent: Double?
}

/// One configuration's figures.
public struct ConfigurationFigures: Encodable, Sendable {
    public var run: Int64
    public var name: String
    public var status: String
    /// `measured` or `simulated`.
    public var mode: String
    public var role: String
    public var simulatedSeconds: Double
    public var requests: Int
    public var inFlightAtEnd: Int
    public var meanGPUs: Figure
    public var meanNodes: Figure
    public var outputTokensPerSecondPerNode: Figure
    public var inputTokensPerSecondPerNode: Figure
    public var energyPerRequestMeanWh: Figure
    public var energyPerRequestP50Wh: Figure
    public var energyPerRequestP95Wh: Figure
    public var joulesPerInputToken: Figure
    public var joulesPerOutputToken: Figure
    public var ttftP50Seconds: Figure
    public var ttftP99Seconds: Figure
    public var tpotP50Seconds: Figure
    public var tpotP99Seconds: Figure
    public var e2eP50Seconds: Figure
    public var e2eP99Seconds: Figure
    public var carbonPerRequestGrams: Figure
    public var carbonPer1000TokensGrams: Figure
    public var sciPerRequestGrams: Figure
    public var energyKWh: Figure
    public var energyBreakdownKWh: [String: Double]
    public var experts: MoERoutingReport?
    public var fidelity: Fidelity?

    /// The figures in display order, with labels.
    public var rows: [(label: String, figure: Figure)] {
        [
            ("GPUs (mean)", meanGPUs), ("Nodes (mean)", meanNodes),
            ("Output tokens/s per node (all nodes)", outputTokensPerSecondPerNode), ("Input tokens/s per node (all nodes)", inputTokensPerSecondPerNode),
            ("Energy per request, mean", energyPerRequestMeanWh), ("Energy per request, p50", energyPerRequestP50Wh),
            ("Energy per request, p95", energyPerRequestP95Wh), ("Energy per input token", joulesPerInputToken),
            ("Energy per output token", joulesPerOutputToken), ("TTFT p50", ttftP50Seconds), ("TTFT p99", ttftP99Seconds),
            ("TPOT p50", tpotP50Seconds), ("TPOT p99", tpotP99Seconds), ("End-to-end p50", e2eP50Seconds), ("End-to-end p99", e2eP99Seconds),
            ("Carbon per request", carbonPerRequestGrams), ("Carbon per 1,000 tokens", carbonPer1000TokensGrams),
            ("SCI per request", sciPerRequestGrams), ("Facility energy", energyKWh),
        ]
    }
}

/// The pruned-vs-dense comparison: every figure the report formats show.
public struct ComparisonReport: Encodable, Sendable {
    public var title: String
    public var generatedAt: String
    public var ledger: String
    public var bootstrapResamples: Int
    public var sampleSize: Int
    public var baseline: ConfigurationFigures
    public var candidates: [ConfigurationFigures]
    public var methodology: Methodology
    /// Charts' data, so JSON carries what the charts draw.
    public var charts: [ChartData]
    /// For each candidate whose mode differs from the baseline's (a measured run and a simulated
    /// replay): where the model and the meters disagree.
    public var modelVsMeters: [ModelVsMeters] = []
}

public struct ChartData: Encodable, Sendable {
    public var run: Int64
    public var name: String
    /// Energy per request (Wh) at the 1st … 99th percentiles.
    public var energyQuantilesWh: [Double]
    /// End-to-end latency (s) at the 1st … 99th percentiles.
    public var e2eQuantilesSeconds: [Double]
    /// (seconds from start, facility kW): each interval's mean power at its start and its end (a step line).
    public var powerKW: [[Double]]
}

public struct Methodology: Encodable, Sendable {
    public var boundary: String
    public var attribution: String
    public var carbonSignal: String
    public var embodied: String
    public var fidelity: String
    public var statistics: String
    public var assumptions: [String]
    public var sources: [String]
}

public enum Comparison {
    /// Bootstrap resamples for the 95 % intervals.
    public static let resamples = 500

    /// Builds the comparison of `candidates` against `baseline`.
    public static func build(baseline: RunMetrics, candidates: [RunMetrics], ledger: String, generatedAt: Date = Date()) -> ComparisonReport {
        let base = figures(baseline, against: nil)
        return ComparisonReport(
            title: candidates.map { "Run \($0.run.id!) \($0.run.name)" }.joined(separator: ", ") + " against run \(baseline.run.id!) \(baseline.run.name)",
            generatedAt: WallClock.string(generatedAt.timeIntervalSince1970), ledger: ledger, bootstrapResamples: resamples,
            sampleSize: ([baseline] + candidates).map(\.sample.count).min() ?? 0,
            baseline: base, candidates: candidates.map { figures($0, against: baseline) },
            methodology: methodology(baseline, candidates), charts: ([baseline] + candidates).map(chart)
        )
    }

    static func chart(_ m: RunMetrics) -> ChartData {
        let qs = (1...99).map { Double($0) / 100 }
        return ChartData(
            run: m.run.id!, name: m.run.name, energyQuantilesWh: qs.map { (m.energy.quantile($0) ?? 0) / 3600 },
            e2eQuantilesSeconds: qs.map { m.e2e.quantile($0) ?? 0 }, powerKW: m.power.flatMap { [[$0.start, $0.kilowatts], [$0.end, $0.kilowatts]] }
        )
    }

    /// A statistic of a sample, for the bootstrap.
    typealias Statistic = ([RequestRecord]) -> Double

    /// The value of rank ⌈q·n⌉ (the one `values.sorted()` has there), by selection rather than a
    /// sort: the bootstrap asks for thousands of these, and selection is linear.
    static func quantile(_ values: [Double], _ q: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        var a = values
        return select(&a, rank: min(a.count - 1, max(0, Int((q * Double(a.count)).rounded(.up)) - 1)))
    }

    /// The element of `a` that would be at index `rank` once sorted (Hoare's selection with a
    /// median-of-three pivot); reorders `a`.
    static func select(_ a: inout [Double], rank: Int) -> Double {
        var lo = 0, hi = a.count - 1
        while lo < hi {
            let mid = lo + (hi - lo) / 2
            if a[mid] < a[lo] { a.swapAt(mid, lo) }
            if a[hi] < a[lo] { a.swapAt(hi, lo) }
            if a[hi] < a[mid] { a.swapAt(hi, mid) }
            let pivot = a[mid]
            var i = lo, j = hi
            while i <= j {
                while a[i] < pivot { i += 1 }
                while pivot < a[j] { j -= 1 }
                if i <= j {
                    a.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            if rank <= j {
                hi = j
            } else if rank >= i {
                lo = i
            } else {
                return a[rank]
            }
        }
        return a[rank]
    }

    /// The 95 % interval of (candidate − baseline) / baseline in percent: the spread of the
    /// percentile bootstrap over each run's sample (resampled with replacement, seeded so the same
    /// ledger gives the same interval), centred on the full-run delta `centre` (basic bootstrap).
    static func interval(_ base: [RequestRecord], _ candidate: [RequestRecord], seed: UInt64, centre: Double, _ statistic: Statistic) -> (Double, Double)? {
        guard !base.isEmpty, !candidate.isEmpty else { return nil }
        let sampleBase = statistic(base), sampleCandidate = statistic(candidate)
        guard sampleBase != 0 else { return nil }
        let sampleDelta = 100 * (sampleCandidate - sampleBase) / sampleBase
        var rng = SplitMix64(seed: seed)
        var deltas: [Double] = []
        deltas.reserveCapacity(resamples)
        var a = base, b = candidate
        for _ in 0..<resamples {
            // A cancelled server request (its client left) stops here; the route discards the result.
            if Task.isCancelled { return nil }
            for i in a.indices { a[i] = base[Int(rng.next() % UInt64(base.count))] }
            for i in b.indices { b[i] = candidate[Int(rng.next() % UInt64(candidate.count))] }
            let x = statistic(a), y = statistic(b)
            if x != 0 { deltas.append(100 * (y - x) / x) }
        }
        guard !deltas.isEmpty else { return nil }
        return (centre + quantile(deltas, 0.025) - sampleDelta, centre + quantile(deltas, 0.975) - sampleDelta)
    }

    static func figures(_ m: RunMetrics, against base: RunMetrics?) -> ConfigurationFigures {
        func figure(_ value: Double?, _ baseValue: Double?, _ unit: String, _ statistic: Statistic? = nil, salt: UInt64 = 0) -> Figure {
            var f = Figure(value: value, unit: unit)
            if let base, let value, let baseValue, baseValue != 0 {
                f.deltaPercent = 100 * (value - baseValue) / baseValue
                if let statistic, let ci = interval(base.sample, m.sample, seed: UInt64(m.run.id!) &* 31 &+ salt, centre: f.deltaPercent!, statistic) {
                    (f.ciLowPercent, f.ciHighPercent) = ci
                }
            }
            return f
        }
        let mean: (@escaping (RequestRecord) -> Double) -> Statistic = { key in { s in s.reduce(0) { $0 + key($1) } / Double(s.count) } }
        let q: (@escaping (RequestRecord) -> Double, Double) -> Statistic = { key, p in { s in quantile(s.map(key), p) } }
        let ratio: (@escaping (RequestRecord) -> Double, @escaping (RequestRecord) -> Double) -> Statistic = { top, bottom in
            { s in s.reduce(0) { $0 + top($1) } / max(s.reduce(0) { $0 + bottom($1) }, 1e-300) }
        }
        let tpotQ: (Double) -> Statistic = { p in { s in quantile(s.compactMap(\.tpot), p) } }
        let b = base
        return ConfigurationFigures(
            run: m.run.id!, name: m.run.name, status: m.run.status.rawValue, mode: m.run.mode.rawValue, role: base == nil ? "baseline" : "candidate",
            simulatedSeconds: m.simulatedSeconds, requests: m.requests, inFlightAtEnd: m.inFlight,
            meanGPUs: figure(m.meanGPUs, b?.meanGPUs, "GPUs"),
            meanNodes: figure(m.meanNodes, b?.meanNodes, "nodes"),
            outputTokensPerSecondPerNode: figure(m.outputTokensPerSecondPerNode, b?.outputTokensPerSecondPerNode, "tokens/s"),
            inputTokensPerSecondPerNode: figure(m.inputTokensPerSecondPerNode, b?.inputTokensPerSecondPerNode, "tokens/s"),
            energyPerRequestMeanWh: figure(m.meanEnergyWh, b?.meanEnergyWh, "Wh", mean(\.facilityJoules), salt: 1),
            energyPerRequestP50Wh: figure(m.energy.quantile(0.5).map { $0 / 3600 }, b?.energy.quantile(0.5).map { $0 / 3600 }, "Wh", q(\.facilityJoules, 0.5), salt: 2),
            energyPerRequestP95Wh: figure(m.energy.quantile(0.95).map { $0 / 3600 }, b?.energy.quantile(0.95).map { $0 / 3600 }, "Wh", q(\.facilityJoules, 0.95), salt: 3),
            joulesPerInputToken: figure(m.joulesPerInputToken, b?.joulesPerInputToken, "J", ratio(\.facilityJoules, { Double($0.promptTokens) }), salt: 4),
            joulesPerOutputToken: figure(m.joulesPerOutputToken, b?.joulesPerOutputToken, "J", ratio(\.facilityJoules, { Double($0.outputTokens) }), salt: 5),
            ttftP50Seconds: figure(m.ttft.quantile(0.5), b?.ttft.quantile(0.5), "s", q({ $0.ttft ?? 0 }, 0.5), salt: 6),
            ttftP99Seconds: figure(m.ttft.quantile(0.99), b?.ttft.quantile(0.99), "s", q({ $0.ttft ?? 0 }, 0.99), salt: 7),
            tpotP50Seconds: figure(m.tpot.quantile(0.5), b?.tpot.quantile(0.5), "s", tpotQ(0.5), salt: 8),
            tpotP99Seconds: figure(m.tpot.quantile(0.99), b?.tpot.quantile(0.99), "s", tpotQ(0.99), salt: 9),
            e2eP50Seconds: figure(m.e2e.quantile(0.5), b?.e2e.quantile(0.5), "s", q({ $0.endToEnd ?? 0 }, 0.5), salt: 10),
            e2eP99Seconds: figure(m.e2e.quantile(0.99), b?.e2e.quantile(0.99), "s", q({ $0.endToEnd ?? 0 }, 0.99), salt: 11),
            carbonPerRequestGrams: figure(m.carbonGramsPerRequest, b?.carbonGramsPerRequest, "gCO2e", mean(\.totalCarbonGrams), salt: 12),
            carbonPer1000TokensGrams: figure(m.carbonGramsPer1000Tokens, b?.carbonGramsPer1000Tokens, "gCO2e", nil),
            sciPerRequestGrams: figure(m.carbonGramsPerRequest, b?.carbonGramsPerRequest, "gCO2e", mean(\.totalCarbonGrams), salt: 12),
            energyKWh: figure(m.clusterFacilityJoules / 3.6e6, b.map { $0.clusterFacilityJoules / 3.6e6 }, "kWh"),
            energyBreakdownKWh: [
                "gpuActive": m.gpuActiveJoules / 3.6e6, "gpuIdle": m.gpuIdleJoules / 3.6e6, "host": m.hostJoules / 3.6e6,
                "facilityOverhead": m.facilityOverheadJoules / 3.6e6,
            ],
            experts: m.summary?.experts, fidelity: m.summary?.experts?.fidelity
        )
    }

    static func methodology(_ base: RunMetrics, _ candidates: [RunMetrics]) -> Methodology {
        let s = base.summary
        return Methodology(
            boundary: "Simulated serving cluster: the H800 GPUs of every prefill and decode unit, their hosts (CPUs, memory, NICs), and the facility overhead through the site's PUE. Networking outside the nodes, storage and client devices are outside the boundary.",
            attribution: "Each step's GPU and host energy is shared among the requests in the step by \(s?.attributionPolicy ?? "the run's attribution policy"); idle energy of an accounting interval is shared among the requests active in it. Per-request energy sums to the cluster's (the run's conservation residual is \((s?.conservationResidual).map { $0.formatted(.number.precision(.significantDigits(2))) } ?? "in `joule audit reconcile`")).",
            carbonSignal: "Location-based: \(s?.carbonRegion ?? "the scenario's region"), \(s?.carbonSignal ?? "average") grid intensity at the time of each step (mean \((s?.meanIntensityGramsPerKWh).map { $0.formatted(.number.precision(.fractionLength(1))) } ?? "—") gCO2e/kWh). No market-based instrument reduces any figure here.",
            embodied: "Embodied emissions of the GPUs amortised over their lifetime in proportion to GPU-seconds (the scenario's embodied model); included in carbon per request and SCI.",
            fidelity: "The fidelity proxy runs a calibration batch through a numeric reference MoE layer (random seeded weights at reduced width, DeepSeek-V3's routing shape and the scenario's expert popularity), dense and pruned, and reports the relative output error, the cosine similarity and the router mass removed. It is a proxy: it is not model quality and predicts no benchmark score. Published quality results for pruning methods belong to their papers (REAP, arXiv 2510.13999; Lu et al., ACL 2024) and are not Joule's measurement.",
            statistics: "Means and sums over every finished request; quantiles from a streaming sketch within 0.5 %. Deltas are (candidate − baseline) / baseline; 95 % intervals are the spread of a bootstrap (\(resamples) resamples) of a uniform sample of up to \(RunMetrics.defaultSampleSize.formatted()) finished requests per run (reservoir sampling, seeded by the run id), centred on the full-run delta; with fewer requests than the run, they are wider than the full run's own uncertainty.",
            assumptions: [
                "Expert popularity is a Zipf distribution (skew in each scenario's `experts`), an assumption: DeepSeek publishes no per-expert loads.",
                "Tokens routed to a pruned expert go to the next-best surviving expert.",
                "The serving model's power coefficients are fitted to ML.ENERGY's H100 measurements and to DeepGEMM, DeepEP and FlashMLA kernel microbenchmarks; host power and the H800's differences from the H100 are assumptions (each coefficient and its source ship with Joule, in Data/SOURCES.md).",
                "Requests still in flight at the end of a run are not in per-request figures; their energy is in the facility total.",
            ],
            sources: [
                "This report's ledger: every figure is a query of it",
                "DeepSeek-AI, DeepSeek-V3 Technical Report, arXiv:2412.19437 (model, deployment units, EPLB)",
                "DeepSeek, Inference System Overview, Open Source Week day 6, 2025 (serving system and load)",
                "Lasby et al., REAP: Router-weighted Expert Activation Pruning, arXiv:2510.13999; Lu et al., Not All Experts are Equal, ACL 2024 (pruning methods)",
                "Grid intensity: \(s?.carbonSource ?? "the scenario's series"); embodied model: \(s?.embodiedModel ?? "the scenario's")",
            ]
        )
    }
}
