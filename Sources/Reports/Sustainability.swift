import Foundation
import Accounting
import Ledger
import Accounting
import Serving

/// A period's sustainability figures across every run in the ledger: energy, GHG Protocol Scope 2
/// (location-based; market-based only from contractual factors the user supplies, reported
/// separately), embodied emissions, and the Software Carbon Intensity with its disclosures.
public struct SustainabilityReport: Encodable, Sendable {
    public struct Bucket: Encodable, Sendable {
        public var start: String
        public var startEpochSeconds: Double
        public var facilityKWh: Double
        public var locationBasedKg: Double
        public var requests: Int
        public var sciGramsPerRequest: Double?
    }

    public struct RunLine: Encodable, Sendable {
        public var run: Int64
        public var name: String
        public var status: String
        /// `daemon` (served), `simulate` (a what-if), `measure` (metered), or what wrote it.
        public var source: String
        /// `measured` (metered GPU energy, modelled host) or `simulated`.
        public var mode: String
        /// The emission factor type of the run's grid intensity: direct, lifecycle or unspecified.
        public var carbonFactor: String
        public var carbonRegion: String?
        public var carbonSignal: String?
        public var carbonSource: String?
        public var embodiedModel: String?
        public var pue: Double?
        /// The writer (daemon) that wrote the run, in a fleet ledger; nil in a one-writer ledger.
        public var writer: String?
        /// The run's part of the period: its intervals' energy and location-based carbon, its
        /// embodied carbon, and its finished requests. The runs' parts add up to the totals.
        public var facilityKWh: Double
        public var locationBasedKg: Double
        public var embodiedKg: Double
        public var requests: Int
    }

    /// One writer's runs in the period, summed: a fleet's per-daemon figures.
    public struct WriterLine: Encodable, Sendable {
        public var writer: String
        public var runs: [Int64]
        public var facilityKWh: Double
        public var locationBasedKg: Double
        public var embodiedKg: Double
        public var requests: Int
    }

    public struct MarketBased: Encodable, Sendable {
        public var factorGramsPerKWh: Double
        public var instrument: String
        public var kg: Double
    }

    public struct SCI: Encodable, Sendable {
        /// (O + M) per functional unit, gCO2e.
        public var perRequestGrams: Double?
        public var per1000TokensGrams: Double?
        /// The terms: operational emissions O = E × I, embodied M, functional units R.
        public var operationalGrams: Double
        public var embodiedGrams: Double
        public var energyKWh: Double
        public var requests: Int
        public var tokens: Double
    }

    public var title: String
    public var generatedAt: String
    public var ledger: String
    public var from: String
    public var to: String
    public var runs: [RunLine]
    /// Per writer, in a fleet ledger (nil in a one-writer ledger).
    public var byWriter: [WriterLine]?
    public var facilityKWh: Double
    public var itKWh: Double
    public var gpuKWh: Double
    public var hostKWh: Double
    public var facilityOverheadKWh: Double
    /// Which runs the report covers, in words (served runs by default; what-ifs only when asked).
    public var scope: String
    /// Grid emissions at each interval's location-based intensity, every factor type: the O of SCI.
    public var locationBasedKg: Double
    /// GHG Protocol Scope 2, location-based: the runs whose intensity is a direct (combustion) factor.
    public var scope2LocationBasedKg: Double
    /// Runs at life-cycle factors: reported apart from Scope 2, labelled.
    public var lifecycleGridKg: Double
    /// Runs whose intensity source does not state its factor type: not classed as Scope 2.
    public var unstatedFactorGridKg: Double
    public var meanLocationIntensityGramsPerKWh: Double
    public var scope2MarketBased: MarketBased?
    public var embodiedKg: Double
    public var sci: SCI
    /// The finished requests' amortised share of their models' training, beside SCI (not in it);
    /// nil when no run in the period charged one.
    public var training: TrainingShareTotals?
    public var trendBucket: String
    public var trend: [Bucket]
    public var disclosures: [String: String]
    public var sources: [String]
}

/// Training shares summed over the period's finished requests.
public struct TrainingShareTotals: Encodable, Sendable {
    public var requests: Int
    public var tokens: Double
    public var facilityKWh: Double
    public var carbonKg: Double
    public var gpuHours: Double
    public var perRequestGrams: Double
    /// The plans and service lives the runs name.
    public var plans: String
}

public enum SustainabilityError: Error, CustomStringConvertible {
    case emptyPeriod(from: Double, to: Double)
    case nothingServed
    public var description: String {
        switch self {
        case .emptyPeriod(let f, let t):
            return "no cluster intervals in the ledger between \(WallClock.string(f)) and \(WallClock.string(t)) (see `joule runs` for what is recorded)"
        case .nothingServed:
            return "no run in the ledger was served (written by `joule daemon` or recorded by `joule measure`): a disclosure covers what was served, so what-if simulations are left out; name runs with --run, or pass --all-runs to include every run"
        }
    }
}

/// Which runs a sustainability report covers when none are named.
public enum RunScope: String, Sendable {
    /// What was actually served: the daemon's runs.
    case served
    /// Every run, what-if simulations included.
    case all
}

extension SustainabilityReport {
    /// The factor type of a run's intensity: its summary's, else its source label's, else what its
    /// scenario states; unspecified when none says.
    static func factor(_ run: StoredRun, _ summary: RunSummary?) -> String {
        if let f = summary?.carbonFactor { return f }
        if let parts = summary?.carbonSource?.split(separator: "/").map(String.init) {
            if parts.contains("direct") { return "direct" }
            if parts.contains("lifecycle") { return "lifecycle" }
        }
        return ScenarioLabels(run).factor ?? EmissionFactorType.unspecified.rawValue
    }
}

extension SustainabilityReport {
    /// Builds the report for [from, to): cluster intervals that start in the period (energy and
    /// location-based emissions), requests that arrived in it and finished (SCI), embodied
    /// emissions from the GPU-seconds of those intervals at each run's embodied rate.
    public static func build(
        ledger: some LedgerQueries, path: String, from: Double, to: Double, runs named: [Int64] = [], scope: RunScope = .all,
        market: (gramsPerKWh: Double, instrument: String)? = nil, now: Date = Date(), fullScan: Bool = false
    ) throws -> SustainabilityReport {
        let bucketSeconds: Double = to - from <= 3 * 86_400 ? 3600 : 86_400
        var only = named
        let scopeText: String
        if !named.isEmpty {
            scopeText = "the runs named: " + named.map(String.init).joined(separator: ", ")
        } else if scope == .served {
            only = try ledger.runs().filter { $0.source == "daemon" || $0.mode == .measured }.compactMap(\.id)
            guard !only.isEmpty else { throw SustainabilityError.nothingServed }
            scopeText = "what was served: the daemon's runs and measured runs (what-if simulations are left out unless named)"
        } else {
            scopeText = "every run in the ledger, what-if simulations included"
        }
        do {
            var gpu = 0.0, host = 0.0, facility = 0.0, operational = 0.0
            var embodied = 0.0
            var buckets: [Double: (kwh: Double, kg: Double, requests: Int, grams: Double)] = [:]
            var gpuSecondsByRun: [Int64: Double] = [:]
            var byRun: [Int64: (joules: Double, grams: Double, requests: Int)] = [:]
            try ledger.forEachInterval(RowScope(runs: only, from: from, to: to)) { row in
                let i = row.interval
                gpuSecondsByRun[row.runID, default: 0] += i.gpuSeconds
                byRun[row.runID, default: (0, 0, 0)].joules += i.facilityJoules
                byRun[row.runID, default: (0, 0, 0)].grams += i.operationalCarbonGrams
                gpu += i.gpuActiveJoules + i.gpuIdleJoules
                host += i.hostActiveJoules + i.hostIdleJoules
                facility += i.facilityJoules
                operational += i.operationalCarbonGrams
                let b = from + (row.startEpochSeconds - from).rounded(.down, step: bucketSeconds)
                buckets[b, default: (0, 0, 0, 0)].kwh += i.facilityJoules / 3.6e6
                buckets[b, default: (0, 0, 0, 0)].kg += i.operationalCarbonGrams / 1000
            }
            guard !gpuSecondsByRun.isEmpty else { throw SustainabilityError.emptyPeriod(from: from, to: to) }
            let runIds = Set(gpuSecondsByRun.keys)
            // A run charges embodied emissions at one rate per GPU-second (its embodied model).
            for (run, seconds) in gpuSecondsByRun {
                embodied += seconds * (try ledger.embodiedGramsPerGPUSecond(run: run))
            }
            var requests = 0, tokens = 0.0, requestOperational = 0.0, requestEmbodied = 0.0
            var trained = 0, trainingTokens = 0.0, trainingJoules = 0.0, trainingGrams = 0.0, trainingGPUSeconds = 0.0
            // The requests, folded per trend bucket: from the rollups by minute of arrival when
            // they cover the period (whole minutes, every run recorded with rollups), else from
            // every request row.
            var byBucket: [Double: RequestRollup] = [:]
            func bucket(_ t: Double) -> Double { from + (t - from).rounded(.down, step: bucketSeconds) }
            if !fullScan, let rollups = try ledger.rollups(RowScope(runs: only, from: from, to: to)) {
                for row in rollups {
                    byBucket[bucket(row.epochSeconds), default: .empty].merge(row.record)
                    byRun[row.runID, default: (0, 0, 0)].requests += row.record.requests
                }
            } else {
                try ledger.forEachRequest(RowScope(runs: only, from: from, to: to, finishedOnly: true)) { row in
                    byBucket[bucket(row.arrivalEpochSeconds), default: .empty].add(row.record)
                    byRun[row.runID, default: (0, 0, 0)].requests += 1
                }
            }
            for b in byBucket.keys.sorted() {
                let r = byBucket[b]!
                requests += r.requests
                tokens += Double(r.promptTokens + r.outputTokens)
                requestOperational += r.operationalCarbonGrams
                requestEmbodied += r.embodiedCarbonGrams
                trained += r.trained
                trainingTokens += r.trainingTokens
                trainingJoules += r.trainingFacilityJoules
                trainingGrams += r.trainingCarbonGrams
                trainingGPUSeconds += r.trainingGPUSeconds
                buckets[b, default: (0, 0, 0, 0)].requests += r.requests
                buckets[b, default: (0, 0, 0, 0)].grams += r.operationalCarbonGrams + r.embodiedCarbonGrams
            }
            var plans: Set<String> = []
            let writers = try ledger.writers()
            var gramsByFactor: [String: Double] = [:]
            let runs = try runIds.sorted().map { id -> RunLine in
                let run = try ledger.run(id)
                let summary = run.decodedSummary
                let factor = Self.factor(run, summary)
                gramsByFactor[factor, default: 0] += byRun[id]?.grams ?? 0
                if let t = summary?.training {
                    plans.insert("\(t.plan) over \(String(format: "%.3g", t.servedTokensOverLife)) tokens" + (t.lifeMonths.map { " (\(String(format: "%g", $0)) months)" } ?? "") + ", carbon at \(t.grid)")
                }
                let labels = ScenarioLabels(run)
                return RunLine(
                    run: id, name: run.name, status: run.status.rawValue, source: run.source, mode: run.mode.rawValue, carbonFactor: factor,
                    carbonRegion: summary?.carbonRegion ?? labels.region, carbonSignal: summary?.carbonSignal ?? labels.signal,
                    carbonSource: summary?.carbonSource, embodiedModel: summary?.embodiedModel, pue: summary?.pue, writer: writers[id],
                    facilityKWh: (byRun[id]?.joules ?? 0) / 3.6e6, locationBasedKg: (byRun[id]?.grams ?? 0) / 1000,
                    embodiedKg: (gpuSecondsByRun[id] ?? 0) * (try ledger.embodiedGramsPerGPUSecond(run: id)) / 1000, requests: byRun[id]?.requests ?? 0
                )
            }
            var byWriter: [String: WriterLine] = [:]
            for run in runs {
                let name = run.writer ?? "(no writer recorded)"
                var w = byWriter[name] ?? WriterLine(writer: name, runs: [], facilityKWh: 0, locationBasedKg: 0, embodiedKg: 0, requests: 0)
                w.runs.append(run.run)
                w.facilityKWh += run.facilityKWh
                w.locationBasedKg += run.locationBasedKg
                w.embodiedKg += run.embodiedKg
                w.requests += run.requests
                byWriter[name] = w
            }
            let facilityKWh = facility / 3.6e6
            let sci = SCI(
                perRequestGrams: requests > 0 ? (requestOperational + requestEmbodied) / Double(requests) : nil,
                per1000TokensGrams: tokens > 0 ? 1000 * (requestOperational + requestEmbodied) / tokens : nil,
                operationalGrams: requestOperational, embodiedGrams: requestEmbodied, energyKWh: facilityKWh, requests: requests, tokens: tokens
            )
            let signals = Set(runs.compactMap(\.carbonSignal)).sorted().joined(separator: ", ")
            let sourcesText = Set(runs.compactMap(\.carbonSource)).sorted().joined(separator: "; ")
            let factorType: String = {
                let kinds = Set(runs.map(\.carbonFactor))
                let named = ["direct": "direct (combustion) factors: GHG Protocol Scope 2 location-based",
                             "lifecycle": "life-cycle factors (upstream and supply chain included): reported apart from Scope 2, as life-cycle grid emissions",
                             "unspecified": "factor type not stated by the intensity source: not classed as Scope 2"]
                let each = kinds.sorted().map { kind in "\(named[kind] ?? kind) (runs \(runs.filter { $0.carbonFactor == kind }.map { String($0.run) }.joined(separator: ", ")))" }
                return each.joined(separator: "; ") + ". The SCI's I term takes any location-based intensity, so its O sums every factor type"
            }()
            let disclosures: [String: String] = [
                "score": sci.perRequestGrams.map { "SCI = \(String(format: "%.4g", $0)) gCO2e per request" } ?? "no finished requests in the period",
                "functionalUnit": "one finished inference request (also given per 1,000 input + output tokens)",
                "softwareBoundary": "the simulated serving cluster: H800 GPUs and their hosts of every prefill and decode unit, plus facility overhead through PUE; networking outside the nodes, storage, clients and training are excluded (a training share, when a run charges one, is reported beside the score, not in it)",
                "energyMethod": "E is modelled, not metered: Joule's calibrated power model of each batch step (Data/SOURCES.md), attributed to requests so that they sum to the cluster's energy",
                "intensitySignal": "location-based grid intensity at each step's time; signal \(signals.isEmpty ? "—" : signals); sources \(sourcesText.isEmpty ? "not recorded in older runs" : sourcesText)",
                "factorType": factorType,
                "embodiedModel": (Set(runs.compactMap(\.embodiedModel)).sorted().joined(separator: "; ").nonEmpty ?? "the runs' embodied models (not recorded in older runs)")
                    + "; amortised over the GPU lifetime in proportion to GPU-seconds",
                "conversionFactors": "1 kWh = 3.6 MJ; 1 lb/MWh = 0.45359237 g/kWh (WattTime sources); PUE "
                    + (Set(runs.compactMap(\.pue)).sorted().map { String($0) }.joined(separator: ", ").nonEmpty ?? "as each run's site (not recorded in older runs)"),
                "marketBasedStatement": "No market-based measure (renewable energy certificates, power purchase agreements, offsets) reduced the SCI score" + (market == nil ? "." : "; the market-based Scope 2 figure is reported separately and is not used in the SCI."),
                "period": "\(WallClock.string(from)) to \(WallClock.string(to)); cluster intervals starting in the period; requests arriving in it and finished; runs: \(scopeText)",
            ]
            return SustainabilityReport(
                title: "Sustainability report, \(WallClock.string(from)) to \(WallClock.string(to))",
                generatedAt: WallClock.string(now.timeIntervalSince1970), ledger: path, from: WallClock.string(from),
                to: WallClock.string(to), runs: runs, byWriter: writers.isEmpty ? nil : byWriter.keys.sorted().map { byWriter[$0]! }, facilityKWh: facilityKWh, itKWh: (gpu + host) / 3.6e6,
                gpuKWh: gpu / 3.6e6, hostKWh: host / 3.6e6, facilityOverheadKWh: (facility - gpu - host) / 3.6e6, scope: scopeText,
                locationBasedKg: operational / 1000, scope2LocationBasedKg: (gramsByFactor["direct"] ?? 0) / 1000,
                lifecycleGridKg: (gramsByFactor["lifecycle"] ?? 0) / 1000, unstatedFactorGridKg: (gramsByFactor["unspecified"] ?? 0) / 1000,
                meanLocationIntensityGramsPerKWh: facilityKWh > 0 ? operational / facilityKWh : 0,
                scope2MarketBased: market.map { MarketBased(factorGramsPerKWh: $0.gramsPerKWh, instrument: $0.instrument, kg: facilityKWh * $0.gramsPerKWh / 1000) },
                embodiedKg: embodied / 1000, sci: sci,
                training: trained > 0 ? TrainingShareTotals(
                    requests: trained, tokens: trainingTokens, facilityKWh: trainingJoules / 3.6e6, carbonKg: trainingGrams / 1000,
                    gpuHours: trainingGPUSeconds / 3600, perRequestGrams: trainingGrams / Double(trained),
                    plans: plans.sorted().joined(separator: "; ").nonEmpty ?? "not recorded"
                ) : nil,
                trendBucket: bucketSeconds == 3600 ? "hour" : "day",
                trend: buckets.keys.sorted().map { b in
                    let v = buckets[b]!
                    return Bucket(
                        start: WallClock.string(b), startEpochSeconds: b, facilityKWh: v.kwh, locationBasedKg: v.kg,
                        requests: v.requests, sciGramsPerRequest: v.requests > 0 ? v.grams / Double(v.requests) : nil
                    )
                },
                disclosures: disclosures,
                sources: [
                    "Joule's ledger \(path) (every figure is a query of it)", "Data/SOURCES.md (power model, grid intensity, embodied model)",
                    "GHG Protocol Scope 2 Guidance (location- and market-based dual reporting)", "Green Software Foundation, Software Carbon Intensity specification (ISO/IEC 21031:2024)",
                ]
            )
        }
    }
}

extension String {
    var nonEmpty: String? { isEmpty ? nil : self }
}

extension Double {
    /// Rounds down to a multiple of `step`.
    func rounded(_ rule: FloatingPointRoundingRule, step: Double) -> Double { (self / step).rounded(rule) * step }
}
