import Accounting
import CoreMetrics
import Foundation
import Ledger
import Metrics
import Prometheus
import Serving
import Synchronization

/// Prometheus metrics of the runs in a ledger, through swift-metrics with swift-prometheus.
///
/// Each scrape first catches up with rows committed since the last one (cluster intervals and
/// request rollups, by row id), so counters only grow and nothing is counted twice, whether the
/// ledger is being written by a daemon in this process or another. Request figures come from the
/// rollups (a few rows a minute), not the request rows; only runs recorded before rollups are read
/// row by row. Histograms from rollups put each request at its sketch bucket's midpoint: one within
/// 0.4 % of a bucket bound that is not a sketch bucket edge (0.1 s, 0.01 s…) may be counted in the
/// neighbouring bucket, and `_sum` is within 0.4 %. Families (label `instance` is `name#run`,
/// `phase` the pool role):
/// - `joule_energy_joules_total{instance,phase,part}`: part = gpu_active, gpu_idle, host, facility;
/// - `joule_carbon_grams_total{instance,phase}`: operational, location-based;
/// - `joule_power_watts{instance,phase}`: facility power over the latest accounting interval;
/// - `joule_requests_total{instance}`, `joule_tokens_total{instance,kind}` (input, cached, output);
/// - `joule_request_latency_seconds`, `joule_ttft_seconds`, `joule_request_energy_wh` histograms;
/// - `joule_grid_intensity_grams_per_kwh{instance}`: at the latest interval;
/// - `joule_ledger_write_lag_seconds{instance}`: wall seconds since the run's last committed batch.
public final class LedgerMetrics: Sendable {
    let ledger: any LedgerQueries
    let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory
    /// Rows per scrape at most, so a scrape stays quick on a large backlog (the rest comes next time).
    let batchLimit: Int
    private let state = Mutex<State>(State())

    struct State {
        var lastRequestRow: Int64 = 0
        var lastRollupRow: Int64 = 0
        /// Runs whose request figures come from their rows (recorded before rollups), found once.
        var rowRuns: Set<Int64>?
        var lastIntervalRow: Int64 = 0
        var names: [Int64: String] = [:]
        /// Latest interval start and the facility joules over it, per (instance, phase).
        var latest: [String: (start: Double, length: Double, joules: Double)] = [:]
        /// Metric handles by family and labels, made once.
        var counters: [String: CoreMetrics.Counter] = [:]
        var floatCounters: [String: FloatingPointCounter] = [:]
        /// Request distributions per histogram family and instance, merged from the rollups (and,
        /// for runs recorded before rollups, from their rows).
        var sketches: [String: [String: QuantileSketch]] = [:]
    }

    /// The histogram families, their bucket bounds and the scale from the sketch's unit.
    static let histograms: [(family: String, bounds: [Double], scale: Double)] = [
        ("joule_request_latency_seconds", [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500], 1),
        ("joule_ttft_seconds", [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], 1),
        ("joule_request_energy_wh", [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], 1 / 3600.0),
    ]

    private func counter(_ s: inout State, _ label: String, _ dims: [(String, String)]) -> CoreMetrics.Counter {
        let key = label + dims.map { "|\($0.1)" }.joined()
        if let c = s.counters[key] { return c }
        let c = CoreMetrics.Counter(label: label, dimensions: dims, factory: factory)
        s.counters[key] = c
        return c
    }

    private func floatCounter(_ s: inout State, _ label: String, _ dims: [(String, String)]) -> FloatingPointCounter {
        let key = label + dims.map { "|\($0.1)" }.joined()
        if let c = s.floatCounters[key] { return c }
        let c = FloatingPointCounter(label: label, dimensions: dims, factory: factory)
        s.floatCounters[key] = c
        return c
    }


    public init(ledger: any LedgerQueries, batchLimit: Int = 50_000) {
        self.ledger = ledger
        self.batchLimit = batchLimit
        factory = PrometheusMetricsFactory(registry: registry)
    }

    /// The exposition text, after catching up with the ledger: counters and gauges from the
    /// registry, then the histograms, written here from the merged sketches (one line per bucket,
    /// however many requests).
    public func scrape(now: Double = Date().timeIntervalSince1970) throws -> String {
        let histograms = try state.withLock { s in
            try catchUp(&s, now: now)
            return Self.histogramText(s.sketches)
        }
        return registry.emitToString() + histograms
    }

    /// Prometheus text of the histogram families: each request counted at its sketch bucket's
    /// midpoint (see the type's notes); `_sum` from the same midpoints.
    static func histogramText(_ sketches: [String: [String: QuantileSketch]]) -> String {
        var out = ""
        for (family, bounds, scale) in histograms {
            guard let byInstance = sketches[family], !byInstance.isEmpty else { continue }
            out += "# TYPE \(family) histogram\n"
            for (instance, sketch) in byInstance.sorted(by: { $0.key < $1.key }) {
                let label = "instance=\"\(escape(instance))\""
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

    private func instance(_ run: Int64, _ s: inout State) throws -> String {
        if let name = s.names[run] { return name }
        let name = ((try? ledger.run(run).name) ?? "run") + "#\(run)"
        s.names[run] = name
        return name
    }

    private func catchUp(_ s: inout State, now: Double) throws {
        for row in try ledger.intervals(after: s.lastIntervalRow, limit: batchLimit) {
            let i = row.interval
            let name = try instance(row.runID, &s)
            let phase = i.role.rawValue
            let dims = [("instance", name), ("phase", phase)]
            for (part, joules) in [
                ("gpu_active", i.gpuActiveJoules), ("gpu_idle", i.gpuIdleJoules), ("host", i.hostActiveJoules + i.hostIdleJoules),
                ("facility", i.facilityJoules),
            ] where joules > 0 {
                floatCounter(&s, "joule_energy_joules_total", dims + [("part", part)]).increment(by: joules)
            }
            if i.operationalCarbonGrams > 0 { floatCounter(&s, "joule_carbon_grams_total", dims).increment(by: i.operationalCarbonGrams) }
            let key = "\(name)|\(phase)"
            if let l = s.latest[key], l.start == i.start {
                s.latest[key] = (i.start, max(l.length, i.end - i.start), l.joules + i.facilityJoules)
            } else if (s.latest[key]?.start ?? -.infinity) < i.start {
                s.latest[key] = (i.start, i.end - i.start, i.facilityJoules)
            }
            if let l = s.latest[key], l.length > 0 {
                Gauge(label: "joule_power_watts", dimensions: dims, factory: factory).record(l.joules / l.length)
            }
            Gauge(label: "joule_grid_intensity_grams_per_kwh", dimensions: [("instance", name)], factory: factory).record(i.intensityGramsPerKWh)
            s.lastIntervalRow = row.rowID
        }
        let rowRuns = try s.rowRuns ?? Set(ledger.runsWithoutRollups())
        s.rowRuns = rowRuns
        if !rowRuns.isEmpty {
            for row in try ledger.requests(after: s.lastRequestRow, limit: batchLimit, runs: rowRuns.sorted()) {
                s.lastRequestRow = row.rowID
                let r = row.record
                guard !r.inFlight else { continue }
                let name = try instance(row.runID, &s)
                let dims = [("instance", name)]
                counter(&s, "joule_requests_total", dims).increment()
                for (kind, n) in [("input", r.promptTokens), ("cached", r.cachedTokens), ("output", r.outputTokens)] where n > 0 {
                    counter(&s, "joule_tokens_total", dims + [("kind", kind)]).increment(by: n)
                }
                if let v = r.endToEnd { s.sketches["joule_request_latency_seconds", default: [:]][name, default: QuantileSketch()].add(v) }
                if let v = r.ttft { s.sketches["joule_ttft_seconds", default: [:]][name, default: QuantileSketch()].add(v) }
                s.sketches["joule_request_energy_wh", default: [:]][name, default: QuantileSketch()].add(r.facilityJoules)
            }
        }
        for row in try ledger.rollups(after: s.lastRollupRow, limit: batchLimit) {
            s.lastRollupRow = row.rowID
            let r = row.record
            guard !rowRuns.contains(row.runID), r.requests > 0 else { continue }
            let name = try instance(row.runID, &s)
            let dims = [("instance", name)]
            counter(&s, "joule_requests_total", dims).increment(by: r.requests)
            for (kind, n) in [("input", r.promptTokens), ("cached", r.cachedTokens), ("output", r.outputTokens)] where n > 0 {
                counter(&s, "joule_tokens_total", dims + [("kind", kind)]).increment(by: n)
            }
            for (family, sketch) in [("joule_request_latency_seconds", r.e2e), ("joule_ttft_seconds", r.ttft), ("joule_request_energy_wh", r.energy)]
            where sketch.count > 0 {
                s.sketches[family, default: [:]][name, default: QuantileSketch()].merge(sketch)
            }
        }
        for (run, t) in try ledger.lastCommits().sorted(by: { $0.key < $1.key }) {
            let name = try instance(run, &s)
            Gauge(label: "joule_ledger_write_lag_seconds", dimensions: [("instance", name)], factory: factory).record(max(0, now - t))
        }
    }
}
