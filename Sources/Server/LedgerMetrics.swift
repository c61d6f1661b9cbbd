import Accounting
import Foundation
import Ledger
import Prometheus
import Serving
import Synchronization
import Reports

/// Prometheus metrics of the runs in a ledger, on swift-prometheus' registry, by Prometheus'
/// naming conventions (base units, `_total` counters, HELP on every family).
///
/// Each scrape first catches up with every row committed since the last one (cluster intervals
/// and request rollups, by row id), so counters only grow, nothing is counted twice and no scrape
/// is partial, whether the ledger is written by a daemon in this process or another. Request
/// figures come from the rollups (one row per batch and minute), never the request rows; only runs
/// recorded before rollups existed are read row by row, once.
///
/// Labels: `run` (the run id), `scenario` (the scenario's name), `phase` (prefill or decode),
/// `region` and `signal` on carbon figures. `joule_run_info` maps a run id to its name, status
/// and source. Gauges describe runs being written; when a run stops or finishes they are removed,
/// while its counters keep their final values.
///
/// Time: every counter is a total over the run's simulated time, exposed when its batch commits.
/// A paced run (10× faster than real time, say) advances its counters faster than the wall clock,
/// so `rate()` over wall time is not power. `joule_run_simulated_seconds_total` is the run's
/// simulated clock: `increase(energy) / increase(simulated seconds)` is the power in simulated
/// time, whatever the pacing. The histograms place each request at its sketch bucket's midpoint:
/// one within 0.4 % of a bound that is not a sketch bucket edge may be counted in the neighbouring
/// bucket, and `_sum` is within 0.4 %.
public final class LedgerMetrics: Sendable {
    let ledger: any LedgerQueries
    let registry = PrometheusCollectorRegistry()
    private let state = Mutex<State>(State())

    /// A family's name, kind and help text: the one place each is written.
    struct Family: Sendable {
        var name: String
        var help: String
    }

    enum Families {
        static let energyParts = Family(
            name: "joule_energy_joules_total",
            help: "Energy by part (gpu_active, gpu_idle, host, facility_overhead), summed over the run's simulated time; the parts sum to joule_facility_energy_joules_total"
        )
        static let facilityEnergy = Family(
            name: "joule_facility_energy_joules_total", help: "Facility energy (IT energy times PUE) over the run's simulated time"
        )
        static let carbon = Family(
            name: "joule_carbon_grams_total",
            help: "Operational carbon, location-based (grid intensity at each accounting interval), gCO2e over the run's simulated time"
        )
        static let embodied = Family(
            name: "joule_embodied_carbon_grams_total", help: "Embodied carbon charged to the run's finished requests, gCO2e"
        )
        static let requests = Family(name: "joule_requests_total", help: "Finished requests")
        static let tokens = Family(name: "joule_tokens_total", help: "Tokens of finished requests by kind (input, cached, output)")
        static let simulated = Family(
            name: "joule_run_simulated_seconds_total",
            help: "The run's simulated clock: seconds simulated so far; divide an increase of an energy counter by its increase for power in simulated time"
        )
        static let power = Family(
            name: "joule_power_watts", help: "Facility power over the run's latest accounting interval (simulated time); runs being written only"
        )
        static let intensity = Family(
            name: "joule_grid_intensity_grams_per_joule",
            help: "Grid carbon intensity the newest accounting interval in the region ran under, gCO2e per joule (times 3.6e6 for gCO2e/kWh); runs being written only"
        )
        static let lastCommit = Family(
            name: "joule_ledger_last_commit_timestamp_seconds", help: "Wall-clock time (Unix seconds) of the run's last committed batch; runs being written only"
        )
        static let runInfo = Family(
            name: "joule_run_info", help: "One series per run in the ledger, value 1: its name, status, source (simulate, daemon, measure), mode (measured or simulated), scenario and grid"
        )
        static let buildInfo = Family(name: "joule_build_info", help: "The Joule build serving these metrics, value 1")
    }

    /// The histogram families: bounds in the family's unit, the scale from the sketch's unit, help.
    static let histograms: [(family: String, bounds: [Double], scale: Double, help: String)] = [
        ("joule_request_latency_seconds", [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500], 1,
         "End-to-end latency of finished requests, arrival to last token, simulated seconds"),
        ("joule_ttft_seconds", [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], 1,
         "Time to first token of finished requests, simulated seconds"),
        ("joule_request_energy_joules", [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000], 1,
         "Facility energy attributed to each finished request, joules"),
    ]

    /// What the metrics know of a run: its labels and the gauges it holds while being written.
    struct RunLabels {
        var scenario: String
        var region: String
        var signal: String
        var status: RunStatus
        var info: Gauge
        /// The furthest simulated second its intervals reached.
        var simulatedSeconds = 0.0
    }

    struct State {
        var lastRequestRow: Int64 = 0
        var lastRollupRow: Int64 = 0
        /// Runs whose request figures come from their rows (recorded before rollups), found once.
        var rowRuns: Set<Int64>?
        var lastIntervalRow: Int64 = 0
        var runs: [Int64: RunLabels] = [:]
        /// Latest interval start and the facility joules over it, per run and phase.
        var latest: [String: (start: Double, length: Double, joules: Double)] = [:]
        /// Gauges of runs being written, by run: removed when the run is no longer written.
        var liveGauges: [Int64: [String: Gauge]] = [:]
        /// Grid intensity by region and signal, and the wall-clock start of the interval it came from.
        var intensity: [String: (gauge: Gauge, at: Double)] = [:]
        /// Request distributions per histogram family and run, merged from the rollups (and, for
        /// runs recorded before rollups, from their rows).
        var sketches: [String: [Int64: QuantileSketch]] = [:]
    }

    public init(ledger: any LedgerQueries) {
        self.ledger = ledger
        registry.makeGauge(
            descriptor: MetricNameDescriptor(metricName: "joule_build_info", unitName: "", helpText: Families.buildInfo.help),
            labels: [("version", Ledger.codeVersion.replacingOccurrences(of: "joule ", with: ""))]
        ).set(to: 1.0)
    }

    private func counter(_ family: Family, _ labels: [(String, String)]) -> Counter {
        registry.makeCounter(descriptor: MetricNameDescriptor(metricName: family.name, unitName: "", helpText: family.help), labels: labels)
    }

    private func gauge(_ family: Family, _ labels: [(String, String)]) -> Gauge {
        registry.makeGauge(descriptor: MetricNameDescriptor(metricName: family.name, unitName: "", helpText: family.help), labels: labels)
    }

    /// The exposition text, after catching up with the ledger: counters and gauges from the
    /// registry, then the histograms, written here from the merged sketches (one line per bucket,
    /// however many requests: swift-prometheus' histograms take one observation at a time).
    public func scrape() throws -> String {
        let histograms = try state.withLock { s in
            try catchUp(&s)
            return Self.histogramText(s.sketches, labels: s.runs)
        }
        return registry.emitToString() + histograms
    }

    /// Prometheus text of the histogram families: each request counted at its sketch bucket's
    /// midpoint (see the type's notes); `_sum` from the same midpoints.
    static func histogramText(_ sketches: [String: [Int64: QuantileSketch]], labels runs: [Int64: RunLabels]) -> String {
        var out = ""
        for (family, bounds, scale, help) in histograms {
            guard let byRun = sketches[family], !byRun.isEmpty else { continue }
            out += "# HELP \(family) \(help)\n# TYPE \(family) histogram\n"
            for (run, sketch) in byRun.sorted(by: { $0.key < $1.key }) {
                let label = "run=\"\(run)\",scenario=\"\(escape(runs[run]?.scenario ?? ""))\""
                let buckets = sketch.buckets.map { (value: QuantileSketch.representative(key: $0.key) * scale, count: $0.count) }
                var k = 0, below = sketch.zeroCount
                for bound in bounds {
                    while k < buckets.count, buckets[k].value <= bound {
                        below += buckets[k].count
                        k += 1
                    }
                    out += "\(family)_bucket{\(label),le=\"\(bound)\"} \(below)\n"
                }
                out += "\(family)_bucket{\(label),le=\"+Inf\"} \(sketch.count)\n"
                out += "\(family)_sum{\(label)} \(buckets.reduce(0.0) { $0 + $1.value * Double($1.count) })\n"
                out += "\(family)_count{\(label)} \(sketch.count)\n"
            }
        }
        return out
    }

    /// A label value with `\`, `"` and newlines escaped, as the text format asks.
    static func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
    }

    /// Brings the run labels up to date: new runs get their info series; a run whose status
    /// changed gets a new one, and loses its live gauges if it is no longer being written.
    private func refreshRuns(_ s: inout State) throws {
        for run in try ledger.runs() {
            guard let id = run.id else { continue }
            if let known = s.runs[id], known.status == run.status { continue }
            if let known = s.runs[id] { registry.unregisterGauge(known.info) }
            let (scenario, region, signal) = s.runs[id].map { ($0.scenario, $0.region, $0.signal) } ?? { let l = ScenarioLabels(run); return (l.scenario, l.region, l.signal) }()
            let info = gauge(Families.runInfo, [
                ("run", "\(id)"), ("name", run.name), ("scenario", scenario), ("status", run.status.rawValue), ("source", run.source),
                ("region", region), ("signal", signal), ("mode", run.mode.rawValue),
            ])
            info.set(to: 1.0)
            s.runs[id] = RunLabels(scenario: scenario, region: region, signal: signal, status: run.status, info: info,
                                   simulatedSeconds: s.runs[id]?.simulatedSeconds ?? 0)
            if run.status != .running, let gauges = s.liveGauges.removeValue(forKey: id) {
                for g in gauges.values { registry.unregisterGauge(g) }
            }
        }
        // A region's intensity is shown while a run in it is being written.
        let live = Set(s.runs.values.filter { $0.status == .running }.map { "\($0.region)|\($0.signal)" })
        for key in s.intensity.keys where !live.contains(key) {
            registry.unregisterGauge(s.intensity.removeValue(forKey: key)!.gauge)
        }
    }

    private func liveGauge(_ s: inout State, run: Int64, _ family: Family, _ labels: [(String, String)]) -> Gauge? {
        guard s.runs[run]?.status == .running else { return nil }
        let key = family.name + labels.map { "|\($0.1)" }.joined()
        if let g = s.liveGauges[run]?[key] { return g }
        let g = gauge(family, labels)
        s.liveGauges[run, default: [:]][key] = g
        return g
    }

    private func labels(_ s: State, _ run: Int64) -> [(String, String)] {
        [("run", "\(run)"), ("scenario", s.runs[run]?.scenario ?? "")]
    }

    private func catchUp(_ s: inout State) throws {
        try refreshRuns(&s)
        // Every new interval, however many: a scrape is never partial.
        while true {
            let rows = try ledger.intervals(after: s.lastIntervalRow, limit: 50_000)
            for row in rows { try addInterval(row, &s) }
            guard rows.count == 50_000 else { break }
        }
        let rowRuns = try s.rowRuns ?? Set(ledger.runsWithoutRollups())
        s.rowRuns = rowRuns
        if !rowRuns.isEmpty {
            while true {
                let rows = try ledger.requests(after: s.lastRequestRow, limit: 50_000, runs: rowRuns.sorted())
                for row in rows { addRequestRow(row, &s) }
                guard rows.count == 50_000 else { break }
            }
        }
        while true {
            let rows = try ledger.rollups(after: s.lastRollupRow, limit: 50_000)
            for row in rows where !rowRuns.contains(row.runID) { addRollup(row, &s) }
            if let last = rows.last { s.lastRollupRow = last.rowID }
            guard rows.count == 50_000 else { break }
        }
        for (run, t) in try ledger.lastCommits() {
            liveGauge(&s, run: run, Families.lastCommit, labels(s, run))?.set(to: t)
        }
    }

    private func addInterval(_ row: IntervalRow, _ s: inout State) throws {
        s.lastIntervalRow = row.rowID
        let i = row.record
        if s.runs[row.runID] == nil { try refreshRuns(&s) }
        let run = labels(s, row.runID)
        let phase = run + [("phase", i.role.rawValue)]
        let overhead = max(0, i.facilityJoules - i.itJoules)
        for (part, joules) in [
            ("gpu_active", i.gpuActiveJoules), ("gpu_idle", i.gpuIdleJoules), ("host", i.hostActiveJoules + i.hostIdleJoules),
            ("facility_overhead", overhead),
        ] where joules > 0 {
            counter(Families.energyParts, phase + [("part", part)]).increment(by: joules)
        }
        if i.facilityJoules > 0 { counter(Families.facilityEnergy, phase).increment(by: i.facilityJoules) }
        let region = s.runs[row.runID]?.region ?? "unknown", signal = s.runs[row.runID]?.signal ?? "average"
        if i.operationalCarbonGrams > 0 {
            counter(Families.carbon, phase + [("region", region), ("signal", signal)]).increment(by: i.operationalCarbonGrams)
        }
        if let known = s.runs[row.runID], i.end > known.simulatedSeconds {
            counter(Families.simulated, run).increment(by: i.end - known.simulatedSeconds)
            s.runs[row.runID]?.simulatedSeconds = i.end
        }
        let key = "\(row.runID)|\(i.role.rawValue)"
        if let l = s.latest[key], l.start == i.start {
            s.latest[key] = (i.start, max(l.length, i.end - i.start), l.joules + i.facilityJoules)
        } else if (s.latest[key]?.start ?? -.infinity) < i.start {
            s.latest[key] = (i.start, i.end - i.start, i.facilityJoules)
        }
        if let l = s.latest[key], l.length > 0 {
            liveGauge(&s, run: row.runID, Families.power, phase)?.set(to: l.joules / l.length)
        }
        // The region's intensity, from the newest interval (wall clock) of a run being written.
        if i.facilityJoules > 0, s.runs[row.runID]?.status == .running {
            let regionKey = "\(region)|\(signal)"
            if (s.intensity[regionKey]?.at ?? -.infinity) <= row.epochSeconds {
                let g = s.intensity[regionKey]?.gauge ?? gauge(Families.intensity, [("region", region), ("signal", signal)])
                g.set(to: i.operationalCarbonGrams / i.facilityJoules)
                s.intensity[regionKey] = (g, row.epochSeconds)
            }
        }
    }

    private func addRollup(_ row: RollupRow, _ s: inout State) {
        let r = row.record
        guard r.requests > 0 else { return }
        let run = labels(s, row.runID)
        counter(Families.requests, run).increment(by: Int64(r.requests))
        for (kind, n) in [("input", r.promptTokens), ("cached", r.cachedTokens), ("output", r.outputTokens)] where n > 0 {
            counter(Families.tokens, run + [("kind", kind)]).increment(by: Int64(n))
        }
        if r.embodiedCarbonGrams > 0 { counter(Families.embodied, run).increment(by: r.embodiedCarbonGrams) }
        for (family, sketch) in [("joule_request_latency_seconds", r.e2e), ("joule_ttft_seconds", r.ttft), ("joule_request_energy_joules", r.energy)]
        where sketch.count > 0 {
            s.sketches[family, default: [:]][row.runID, default: QuantileSketch()].merge(sketch)
        }
    }

    private func addRequestRow(_ row: RequestRow, _ s: inout State) {
        s.lastRequestRow = row.rowID
        let r = row.record
        guard !r.inFlight else { return }
        let run = labels(s, row.runID)
        counter(Families.requests, run).increment()
        for (kind, n) in [("input", r.promptTokens), ("cached", r.cachedTokens), ("output", r.outputTokens)] where n > 0 {
            counter(Families.tokens, run + [("kind", kind)]).increment(by: Int64(n))
        }
        if r.embodiedCarbonGrams > 0 { counter(Families.embodied, run).increment(by: r.embodiedCarbonGrams) }
        if let v = r.endToEnd { s.sketches["joule_request_latency_seconds", default: [:]][row.runID, default: QuantileSketch()].add(v) }
        if let v = r.ttft { s.sketches["joule_ttft_seconds", default: [:]][row.runID, default: QuantileSketch()].add(v) }
        s.sketches["joule_request_energy_joules", default: [:]][row.runID, default: QuantileSketch()].add(r.facilityJoules)
    }
}
