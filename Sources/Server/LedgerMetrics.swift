import Accounting
import CoreMetrics
import Foundation
import Ledger
import Metrics
import Prometheus
import Synchronization

/// Prometheus metrics of the runs in a ledger, through swift-metrics with swift-prometheus.
///
/// Each scrape first catches up with rows committed since the last one (request rows and
/// cluster intervals, by row id), so counters only grow and nothing is counted twice, whether the
/// ledger is being written by a daemon in this process or another. Families (label `instance` is
/// `name#run`, `phase` the pool role):
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
        var lastIntervalRow: Int64 = 0
        var names: [Int64: String] = [:]
        /// Latest interval start and the facility joules over it, per (instance, phase).
        var latest: [String: (start: Double, length: Double, joules: Double)] = [:]
        /// Metric handles by family and labels, made once.
        var counters: [String: CoreMetrics.Counter] = [:]
        var floatCounters: [String: FloatingPointCounter] = [:]
        var recorders: [String: Recorder] = [:]
    }

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

    private func histogram(_ s: inout State, _ label: String, _ dims: [(String, String)]) -> Recorder {
        let key = label + dims.map { "|\($0.1)" }.joined()
        if let r = s.recorders[key] { return r }
        let r = Recorder(label: label, dimensions: dims, aggregate: true, factory: factory)
        s.recorders[key] = r
        return r
    }

    public init(ledger: any LedgerQueries, batchLimit: Int = 200_000) {
        self.ledger = ledger
        self.batchLimit = batchLimit
        var f = PrometheusMetricsFactory(registry: registry)
        f.valueHistogramBuckets = [
            "joule_request_latency_seconds": [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500],
            "joule_ttft_seconds": [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
            "joule_request_energy_wh": [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        ]
        factory = f
    }

    /// The exposition text, after catching up with the ledger.
    public func scrape(now: Double = Date().timeIntervalSince1970) throws -> String {
        try state.withLock { s in try catchUp(&s, now: now) }
        return registry.emitToString()
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
        for row in try ledger.requests(after: s.lastRequestRow, limit: batchLimit) {
            s.lastRequestRow = row.rowID
            let r = row.record
            guard !r.inFlight else { continue }
            let name = try instance(row.runID, &s)
            let dims = [("instance", name)]
            counter(&s, "joule_requests_total", dims).increment()
            for (kind, n) in [("input", r.promptTokens), ("cached", r.cachedTokens), ("output", r.outputTokens)] where n > 0 {
                counter(&s, "joule_tokens_total", dims + [("kind", kind)]).increment(by: n)
            }
            if let v = r.endToEnd { histogram(&s, "joule_request_latency_seconds", dims).record(v) }
            if let v = r.ttft { histogram(&s, "joule_ttft_seconds", dims).record(v) }
            histogram(&s, "joule_request_energy_wh", dims).record(r.facilityJoules / 3600)
        }
        for (run, t) in try ledger.lastCommits().sorted(by: { $0.key < $1.key }) {
            let name = try instance(run, &s)
            Gauge(label: "joule_ledger_write_lag_seconds", dimensions: [("instance", name)], factory: factory).record(max(0, now - t))
        }
    }
}
