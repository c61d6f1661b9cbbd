import CarbonData
import Foundation
import Hummingbird
import Ledger
import Reports
import Accounting
import Scheduling
import Serving

/// The dashboard: server-rendered pages with inline SVG, no scripts from elsewhere and no
/// external assets. The live view reloads itself every few seconds.
extension JouleServer {
    static let nav = """
        <nav style="margin-bottom:1rem"><a href="/">Live</a> · <a href="/runs">Runs</a> · <a href="/compare">Compare</a> · <a href="/scheduler">Scheduler</a> · <a href="/metrics">Metrics</a></nav>
        """

    static func page(_ title: String, refresh: Int? = nil, _ body: String) -> TextBody {
        var head = Render.pageHead(title: title, style: """
            nav a { color: #1f6f8b; text-decoration: none; font-weight: 600; } .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); gap: .75rem; }
            .card { border: 1px solid #ddd; border-radius: 6px; padding: .6rem .8rem; } .card .v { font-size: 1.4rem; font-weight: 600; } .card .k { color: #555; font-size: .85rem; }
            form input, form select { margin-right: .5rem; } td { text-align: left; }
            """)
        if let refresh { head = head.replacingOccurrences(of: "<meta charset=\"utf-8\">", with: "<meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"\(refresh)\">") }
        return TextBody(text: head + nav + "<h1>\(SVG.esc(title))</h1>\n" + body + "\n</body></html>\n", contentType: "text/html; charset=utf-8")
    }

    func addDashboardRoutes(to router: Router<BasicRequestContext>) {
        let ledger = self.ledger
        let server = self
        let e = SVG.esc
        let n = Render.number
        router.get("/") { _, _ in
            let runs = try ledger.runs()
            guard let run = runs.first(where: { $0.status == .running }) ?? runs.first else {
                return Self.page("Joule", refresh: 5, "<p>No runs in <code>\(e(ledger.location))</code> yet: start <code>joule daemon</code> or <code>joule simulate --db</code>.</p>")
            }
            let live = try Self.live(ledger, run: run.id!)
            var body = "<p class=\"note\">Run \(run.id!) <b>\(e(run.name))</b> (\(e(run.status.rawValue))); refreshes every 5 s.</p><div class=\"cards\">"
            for (k, v) in [
                ("Facility power", "\(n(live.powerKW)) kW"), ("Energy so far", "\(n(live.energyKWh)) kWh"), ("Grid intensity", "\(n(live.intensity)) g/kWh"),
                ("Requests per second (recent)", n(live.requestsPerSecond)), ("Energy per output token (recent)", "\(n(live.joulesPerOutputToken)) J"),
                ("Latency p50 (recent)", "\(n(live.latencyP50)) s"),
            ] {
                body += "<div class=\"card\"><div class=\"k\">\(e(k))</div><div class=\"v\">\(e(v))</div></div>"
            }
            body += "</div><div class=\"charts\" style=\"margin-top:1rem\">"
            body += SVG.lineChart(title: "Facility power", xLabel: "simulated seconds", yLabel: "kW", series: [(run.name, live.power)])
            body += "</div>"
            return Self.page("Joule — live", refresh: 5, body)
        }
        router.get("runs") { _, _ in
            var body = "<table><thead><tr><th>Run</th><th>Name</th><th>Status</th><th>Source</th><th>Started (simulated)</th><th>Requests</th></tr></thead><tbody>"
            for r in try ledger.runs() {
                let p = try ledger.progress(run: r.id!)
                body += "<tr><td><a href=\"/runs/\(r.id!)\">\(r.id!)</a></td><td>\(e(r.name))</td><td>\(e(r.status.rawValue))</td><td>\(e(r.source))</td>"
                body += "<td>\(e(iso(r.startEpochSeconds)))</td><td>\(p.storedRequests.formatted())</td></tr>"
            }
            return Self.page("Runs", body + "</tbody></table>")
        }
        router.get("runs/:id") { _, context in
            let id = try context.parameters.require("id", as: Int64.self)
            let run = try Self.lookup { try ledger.run(id) }
            let live = try Self.live(ledger, run: id, distribution: true)
            var body = "<p class=\"note\">\(e(run.name)), \(e(run.status.rawValue)); scenario hash <code>\(e(String(run.scenarioHash.prefix(12))))</code>. "
            body += "JSON: <a href=\"/api/runs/\(id)\">/api/runs/\(id)</a>.</p><div class=\"cards\">"
            for (k, v) in [("Energy", "\(n(live.energyKWh)) kWh"), ("Requests recorded", live.requests.formatted()), ("Energy per output token (latest batch)", "\(n(live.joulesPerOutputToken)) J"),
                           ("Carbon", "\(n(live.carbonKg)) kgCO2e")] {
                body += "<div class=\"card\"><div class=\"k\">\(e(k))</div><div class=\"v\">\(e(v))</div></div>"
            }
            body += "</div><div class=\"charts\" style=\"margin-top:1rem\">"
            body += SVG.lineChart(title: "Facility power", xLabel: "simulated seconds", yLabel: "kW", series: [(run.name, live.power)])
            body += SVG.lineChart(title: "End-to-end latency (CDF, sample)", xLabel: "seconds", yLabel: "share of requests", series: [(run.name, live.latencyCDF)])
            body += SVG.stackedBars(title: "Energy breakdown", unit: "kWh", parts: ["GPU active", "GPU idle", "host", "facility overhead (PUE)"], bars: [(run.name, live.breakdownKWh)])
            return Self.page("Run \(id)", body + "</div>")
        }
        router.get("compare") { request, _ in
            let q = Query(request: request)
            for name in ["baseline", "candidate"] {
                if let text = q.string(name), Int64(text) == nil { throw HTTPError(.badRequest, message: "\(name): expected a run id, got '\(text)'") }
            }
            guard let baseline = q.string("baseline").flatMap(Int64.init), let candidate = q.string("candidate").flatMap(Int64.init) else {
                var body = "<form method=\"get\" action=\"/compare\">Baseline run <select name=\"baseline\">"
                let runs = try ledger.runs()
                body += runs.map { "<option value=\"\($0.id!)\">\($0.id!) \(e($0.name))</option>" }.joined()
                body += "</select> Candidate run <select name=\"candidate\">" + runs.map { "<option value=\"\($0.id!)\">\($0.id!) \(e($0.name))</option>" }.joined()
                body += "</select><button type=\"submit\">Compare</button></form><p class=\"note\">Pruned against dense: the same report as <code>joule report compare --format html</code>.</p>"
                return Self.page("Compare runs", body)
            }
            // The same work as /api/compare, under the same limits: cancelled when the client leaves.
            let html = try await server.bounded(request) {
                let metrics = try [baseline, candidate].map { id in
                    try Task.checkCancellation()
                    return try Self.lookup { try RunMetrics.load(ledger, run: id) }
                }
                guard metrics.allSatisfy({ $0.requests > 0 }) else { throw HTTPError(.badRequest, message: "both runs need finished requests") }
                try Task.checkCancellation()
                return Render.html(Comparison.build(baseline: metrics[0], candidates: [metrics[1]], ledger: ledger.location))
            }
            return TextBody(text: html.replacingOccurrences(of: "<body>\n", with: "<body>\n" + Self.nav), contentType: "text/html; charset=utf-8")
        }
        router.get("scheduler") { request, _ in
            let q = Query(request: request)
            let regions = Set(try ledger.storedSeries().map(\.metadata.region)).sorted()
            let region = q.string("region") ?? regions.first
            let minutes = try q.double("windowMinutes", minimum: 1) ?? 120
            var body = "<form method=\"get\" action=\"/scheduler\">Region <select name=\"region\">"
            body += regions.map { "<option\($0 == region ? " selected" : "")>\(e($0))</option>" }.joined()
            body += "</select> Job length (minutes) <input name=\"windowMinutes\" value=\"\(n(minutes))\" size=\"5\"><button type=\"submit\">Plan</button></form>"
            let signal = try q.string("signal").map { text -> CarbonSignal in
                guard let v = CarbonSignal(rawValue: text) else { throw HTTPError(.badRequest, message: "signal: expected average or marginal, got '\(text)'") }
                return v
            } ?? .average
            guard let region, let found = try ledger.planningSeries(region: region, signal: signal) else {
                return Self.page("Scheduler", body + "<p>No carbon-intensity series in the ledger: <code>joule carbon fetch</code> or <code>joule carbon import</code> one.</p>")
            }
            let points = found.series.points
            let t0 = points[0].start
            body += "<div class=\"charts\" style=\"margin-top:1rem\">"
            body += SVG.lineChart(title: "Carbon intensity, \(region) (series \(found.stored.id))", xLabel: "hours from \(iso(t0))", yLabel: "gCO2/kWh",
                                  series: [(found.series.metadata.sourceLabel, points.flatMap { [(($0.start - t0) / 3600, $0.value), (($0.end - t0) / 3600, $0.value)] })])
            body += "</div>"
            if let plan = try? CarbonPlanner.plan([found.series], duration: minutes * 60) {
                let r = plan.chosen
                body += "<p>Best start <b data-best-start=\"\(e(iso(r.chosen.start)))\">\(e(iso(r.chosen.start)))</b>: \(n(r.chosen.value)) g/kWh over \(n(minutes)) min, against \(n(r.startingNow.value)) g/kWh "
                body += "at the series' start (saving \(n(plan.savingPercent)) %). \(r.best.count) window(s) share the minimum.</p>"
            } else {
                body += "<p>A \(n(minutes))-minute window does not fit in this series.</p>"
            }
            return Self.page("Scheduler", body)
        }
    }

    struct Live {
        var powerKW: Double
        var energyKWh: Double
        var carbonKg: Double
        var intensity: Double
        var requests: Int
        var requestsPerSecond: Double
        var joulesPerOutputToken: Double
        var latencyP50: Double
        var power: [(Double, Double)]
        var latencyCDF: [(Double, Double)]
        var breakdownKWh: [Double]
    }

    /// A run's figures without scanning its request rows: energy and carbon from its cluster
    /// intervals, the request count from its audit batches, the recent rates and latency from the
    /// rollups of its latest batch (its latest 2,000 rows for a run recorded before rollups), and,
    /// with `distribution`, the latency distribution from up to 5,000 rows spread over the run
    /// (fetched by row id). A page stays quick however long the run.
    static func live(_ ledger: some LedgerQueries, run: Int64, distribution: Bool = false) throws -> Live {
        do {
            let totals = try ledger.intervalTotals(run: run)
            var byStart: [Double: (joules: Double, length: Double, intensity: Double)] = [:]
            for p in try ledger.facilityPower(run: run) {
                byStart[p.start] = (p.facilityJoules, p.length, p.facilityJoules > 0 ? p.operationalCarbonGrams / (p.facilityJoules / 3.6e6) : 0)
            }
            let starts = byStart.keys.sorted()
            let power = starts.flatMap { s -> [(Double, Double)] in
                let v = byStart[s]!
                return [(s, v.joules / max(v.length, 1e-9) / 1000), (s + v.length, v.joules / max(v.length, 1e-9) / 1000)]
            }
            let count = try ledger.committedRequests(run: run)
            // Recent: what the latest batch's requests add up to, over the simulated time it covered.
            var rate = 0.0, outputs = 0, joules = 0.0, p50 = 0.0
            if let latest = try ledger.latestRollups(run: run) {
                var sum = RequestRollup.empty
                for row in latest.rows { sum.merge(row.record) }
                rate = latest.simulatedSeconds > 0 ? Double(sum.requests) / latest.simulatedSeconds : 0
                (outputs, joules, p50) = (sum.outputTokens, sum.facilityJoules, sum.e2e.quantile(0.5) ?? 0)
            } else {
                // A run recorded before rollups: its latest finished rows (up to 2,000).
                let recent = try ledger.latestFinishedRequests(run: run, limit: 2000).map(\.record)
                let finishes = recent.compactMap(\.finish)
                let span = (finishes.max() ?? 0) - (finishes.min() ?? 0)
                rate = span > 0 ? Double(finishes.count) / span : 0
                outputs = recent.reduce(0) { $0 + $1.outputTokens }
                joules = recent.reduce(0.0) { $0 + $1.facilityJoules }
                let recentLatencies = recent.compactMap(\.endToEnd).sorted()
                p50 = recentLatencies.isEmpty ? 0 : recentLatencies[recentLatencies.count / 2]
            }
            // Up to 5,000 rows evenly over the run.
            let latencies = distribution ? try ledger.spreadRequests(run: run, count: 5000).compactMap(\.record.endToEnd).sorted() : []
            let cdf = latencies.isEmpty ? [] : (1...100).map { i -> (Double, Double) in
                (latencies[min(latencies.count - 1, Int(Double(latencies.count) * Double(i) / 100.0))], Double(i) / 100)
            }
            let d = totals.drawn
            let f = totals.facilityJoules, ga = d.direct.gpuJoules, gi = d.idle.gpuJoules, h = d.direct.hostJoules + d.idle.hostJoules
            let latest = starts.last.map { byStart[$0]! }
            return Live(
                powerKW: latest.map { $0.joules / max($0.length, 1e-9) / 1000 } ?? 0, energyKWh: f / 3.6e6, carbonKg: totals.operationalCarbonGrams / 1000,
                intensity: latest?.intensity ?? 0, requests: count, requestsPerSecond: rate,
                joulesPerOutputToken: outputs > 0 ? joules / Double(outputs) : 0,
                latencyP50: p50, power: power, latencyCDF: cdf,
                breakdownKWh: [ga / 3.6e6, gi / 3.6e6, h / 3.6e6, max(0, f - ga - gi - h) / 3.6e6]
            )
        }
    }
}
