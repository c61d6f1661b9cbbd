import CarbonData
import Foundation
import GRDB
import Hummingbird
import Ledger
import Reports
import Scheduling

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
        let e = SVG.esc
        let n = Render.number
        router.get("/") { _, _ in
            let runs = try ledger.runs()
            guard let run = runs.first(where: { $0.status == .running }) ?? runs.first else {
                return Self.page("Joule", refresh: 5, "<p>No runs in <code>\(e(ledger.path))</code> yet: start <code>joule daemon</code> or <code>joule simulate --db</code>.</p>")
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
            let live = try Self.live(ledger, run: id)
            var body = "<p class=\"note\">\(e(run.name)), \(e(run.status.rawValue)); scenario hash <code>\(e(String(run.scenarioHash.prefix(12))))</code>. "
            body += "JSON: <a href=\"/api/runs/\(id)\">/api/runs/\(id)</a>.</p><div class=\"cards\">"
            for (k, v) in [("Energy", "\(n(live.energyKWh)) kWh"), ("Requests recorded", live.requests.formatted()), ("Energy per output token (latest rows)", "\(n(live.joulesPerOutputToken)) J"),
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
            guard let baseline = q.string("baseline").flatMap(Int64.init), let candidate = q.string("candidate").flatMap(Int64.init) else {
                var body = "<form method=\"get\" action=\"/compare\">Baseline run <select name=\"baseline\">"
                let runs = try ledger.runs()
                body += runs.map { "<option value=\"\($0.id!)\">\($0.id!) \(e($0.name))</option>" }.joined()
                body += "</select> Candidate run <select name=\"candidate\">" + runs.map { "<option value=\"\($0.id!)\">\($0.id!) \(e($0.name))</option>" }.joined()
                body += "</select><button type=\"submit\">Compare</button></form><p class=\"note\">Pruned against dense: the same report as <code>joule report compare --format html</code>.</p>"
                return Self.page("Compare runs", body)
            }
            let metrics = try [baseline, candidate].map { id in try Self.lookup { try RunMetrics.load(ledger, run: id) } }
            guard metrics.allSatisfy({ $0.requests > 0 }) else { throw HTTPError(.badRequest, message: "both runs need finished requests") }
            let html = Render.html(Comparison.build(baseline: metrics[0], candidates: [metrics[1]], ledger: ledger.path))
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
            guard let region, let found = try ledger.newestSeries(SeriesFilter(region: region, kind: .forecast)) ?? ledger.newestSeries(SeriesFilter(region: region)) else {
                return Self.page("Scheduler", body + "<p>No carbon-intensity series in the ledger: <code>joule carbon fetch</code> or <code>joule carbon import</code> one.</p>")
            }
            let points = found.series.points
            let t0 = points[0].start
            body += "<div class=\"charts\" style=\"margin-top:1rem\">"
            body += SVG.lineChart(title: "Carbon intensity, \(region) (series \(found.stored.id))", xLabel: "hours from \(iso(t0))", yLabel: "gCO2/kWh",
                                  series: [(found.series.metadata.sourceLabel, points.flatMap { [(($0.start - t0) / 3600, $0.value), (($0.end - t0) / 3600, $0.value)] })])
            body += "</div>"
            if let plan = try? WindowSearch.plan(points, window: minutes * 60) {
                body += "<p>Best start <b>\(e(iso(plan.best[0].start)))</b>: \(n(plan.best[0].value)) g/kWh over \(n(minutes)) min, against \(n(plan.startingNow.value)) g/kWh "
                body += "at the series' start (saving \(n(plan.savingPercent)) %). \(plan.best.count) window(s) share the minimum.</p>"
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
    /// intervals, the request count from its audit batches, rates and latency from its latest
    /// committed rows, and the latency distribution from up to 5,000 rows spread over the run
    /// (fetched by row id). A page stays quick however long the run.
    static func live(_ ledger: Ledger, run: Int64) throws -> Live {
        try ledger.read { db in
            let totals = try Row.fetchOne(db, sql: """
                SELECT coalesce(sum(facilityJoules), 0) AS f, coalesce(sum(gpuActiveJoules), 0) AS ga, coalesce(sum(gpuIdleJoules), 0) AS gi,
                       coalesce(sum(hostActiveJoules + hostIdleJoules), 0) AS h, coalesce(sum(operationalCarbonGrams), 0) AS c
                FROM clusterInterval WHERE runId = ?
                """, arguments: [run])!
            var byStart: [Double: (joules: Double, length: Double, intensity: Double)] = [:]
            for r in try Row.fetchAll(db, sql: "SELECT startSeconds, endSeconds, facilityJoules, intensityGramsPerKWh FROM clusterInterval WHERE runId = ?", arguments: [run]) {
                let s: Double = r["startSeconds"]
                let old = byStart[s] ?? (0, 0, 0)
                byStart[s] = (old.joules + (r["facilityJoules"] as Double), max(old.length, (r["endSeconds"] as Double) - s), r["intensityGramsPerKWh"])
            }
            let starts = byStart.keys.sorted()
            let power = starts.flatMap { s -> [(Double, Double)] in
                let v = byStart[s]!
                return [(s, v.joules / max(v.length, 1e-9) / 1000), (s + v.length, v.joules / max(v.length, 1e-9) / 1000)]
            }
            // The run's request rows, as the audit batches name them: consecutive id ranges.
            let ranges = try Row.fetchAll(db, sql: """
                SELECT firstRequestRow AS a, requestCount AS n FROM auditBatch WHERE runId = ? AND requestCount > 0 ORDER BY seq
                """, arguments: [run]).map { (first: $0["a"] as Int64, count: $0["n"] as Int) }
            let count = ranges.reduce(0) { $0 + $1.count }
            // The latest finished rows (up to 2,000) for the recent rates; the rows of requests
            // still in flight at a run's end sit in its last batches and are skipped.
            var recent: [Row] = []
            for r in ranges.reversed() where recent.count < 2000 {
                recent += try Row.fetchAll(db, sql: """
                    SELECT arrivalSeconds, finishSeconds, outputTokens, facilityJoules FROM request
                    WHERE id BETWEEN ? AND ? AND inFlight = 0 ORDER BY id DESC LIMIT ?
                    """, arguments: [r.first, r.first + Int64(r.count) - 1, 2000 - recent.count])
            }
            let finishes = recent.compactMap { $0["finishSeconds"] as Double? }
            let span = (finishes.max() ?? 0) - (finishes.min() ?? 0)
            let outputs = recent.reduce(0) { $0 + ($1["outputTokens"] as Int) }
            let joules = recent.reduce(0.0) { $0 + ($1["facilityJoules"] as Double) }
            let recentLatencies = recent.compactMap { r in (r["finishSeconds"] as Double?).map { $0 - (r["arrivalSeconds"] as Double) } }.sorted()
            // Up to 5,000 rows evenly over the run.
            var ids: [Int64] = []
            if count > 0 {
                let step = max(1, count / 5000)
                var k = 0
                for r in ranges {
                    var offset = (step - k % step) % step
                    while offset < r.count { ids.append(r.first + Int64(offset)); offset += step }
                    k += r.count
                }
            }
            var latencies: [Double] = []
            for chunk in stride(from: 0, to: ids.count, by: 500) {
                let part = Array(ids[chunk..<min(chunk + 500, ids.count)])
                latencies += try Double.fetchAll(db, sql: """
                    SELECT finishSeconds - arrivalSeconds FROM request WHERE id IN (\(part.map { _ in "?" }.joined(separator: ","))) AND inFlight = 0
                    """, arguments: StatementArguments(part))
            }
            latencies.sort()
            let cdf = latencies.isEmpty ? [] : (1...100).map { i -> (Double, Double) in
                (latencies[min(latencies.count - 1, Int(Double(latencies.count) * Double(i) / 100.0))], Double(i) / 100)
            }
            let f: Double = totals["f"], ga: Double = totals["ga"], gi: Double = totals["gi"], h: Double = totals["h"]
            let latest = starts.last.map { byStart[$0]! }
            return Live(
                powerKW: latest.map { $0.joules / max($0.length, 1e-9) / 1000 } ?? 0, energyKWh: f / 3.6e6, carbonKg: (totals["c"] as Double) / 1000,
                intensity: latest?.intensity ?? 0, requests: count, requestsPerSecond: span > 0 ? Double(finishes.count) / span : 0,
                joulesPerOutputToken: outputs > 0 ? joules / Double(outputs) : 0,
                latencyP50: recentLatencies.isEmpty ? 0 : recentLatencies[recentLatencies.count / 2], power: power, latencyCDF: cdf,
                breakdownKWh: [ga / 3.6e6, gi / 3.6e6, h / 3.6e6, max(0, f - ga - gi - h) / 3.6e6]
            )
        }
    }
}
