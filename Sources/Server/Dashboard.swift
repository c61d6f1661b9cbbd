import CarbonData
import Foundation
import Hummingbird
import Ledger
import Reports
import Accounting
import Scheduling
import Serving
import Synchronization

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
            .mode { display: inline-block; padding: 0 .45rem; border-radius: 4px; font-size: .8rem; font-weight: 600; }
            .mode.measured { background: #dff0d8; color: #2b5d1f; } .mode.simulated { background: #e8eef7; color: #294a78; }
            """)
        if let refresh { head = head.replacingOccurrences(of: "<meta charset=\"utf-8\">", with: "<meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"\(refresh)\">") }
        return TextBody(text: head + nav + "<h1>\(SVG.esc(title))</h1>\n" + body + "\n</body></html>\n", contentType: "text/html; charset=utf-8")
    }

    /// The run's mode as a badge: measured runs and simulated ones never look alike.
    static func modeBadge(_ mode: RunMode) -> String { "<span class=\"mode \(mode.rawValue)\">\(mode.rawValue)</span>" }

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
            let live = try Self.live(ledger, run: run, cache: server.runFigures)
            var body = "<p class=\"note\">Run \(run.id!) <b>\(e(run.name))</b> \(Self.modeBadge(run.mode)) (\(e(run.status.rawValue)), \(e(run.source))); refreshes every 5 s. "
            body += "Figures are the run's so far, from the same ledger queries as the reports. <a href=\"/runs/\(run.id!)\">Run page</a>.</p>"
            body += Self.cards(live.cards(n))
            body += "<div class=\"charts\" style=\"margin-top:1rem\">" + live.powerChart(name: run.name) + live.carbonChart() + "</div>"
            return Self.page("Joule — live", refresh: 5, body)
        }
        router.get("runs") { _, _ in
            var body = "<table><thead><tr><th>Run</th><th>Name</th><th>Mode</th><th>Source</th><th>Status</th><th>Started (UTC)</th><th>Requests</th><th>Export</th></tr></thead><tbody>"
            for r in try ledger.runs() {
                let p = try ledger.progress(run: r.id!)
                body += "<tr><td><a href=\"/runs/\(r.id!)\">\(r.id!)</a></td><td>\(e(r.name))</td><td>\(Self.modeBadge(r.mode))</td><td>\(e(r.source))</td><td>\(e(r.status.rawValue))</td>"
                body += "<td>\(e(iso(r.startEpochSeconds)))</td><td>\(p.storedRequests.formatted())</td>"
                body += "<td><a href=\"/runs/\(r.id!)/requests.csv\">requests CSV</a> · <a href=\"/runs/\(r.id!)/emissions.csv\">CodeCarbon CSV</a></td></tr>"
            }
            return Self.page("Runs", body + "</tbody></table>")
        }
        router.get("runs/:id") { _, context in
            let id = try context.parameters.require("id", as: Int64.self)
            let run = try Self.lookup { try ledger.run(id) }
            let live = try Self.live(ledger, run: run, distribution: true, cache: server.runFigures)
            var body = "<p class=\"note\">\(e(run.name)) \(Self.modeBadge(run.mode)), \(e(run.status.rawValue)) (\(e(run.source))); \(run.mode == .measured ? "metered GPU energy, modelled host; description" : "scenario") hash <code>\(e(String(run.scenarioHash.prefix(12))))</code>. "
            body += "Download: <a href=\"/runs/\(id)/requests.csv\">every request (CSV)</a> · <a href=\"/runs/\(id)/emissions.csv\">CodeCarbon emissions.csv</a> · "
            body += "JSON: <a href=\"/api/runs/\(id)\">/api/runs/\(id)</a>.</p>"
            body += Self.cards(live.cards(n))
            body += "<div class=\"charts\" style=\"margin-top:1rem\">" + live.powerChart(name: run.name) + live.carbonChart()
            body += SVG.lineChart(title: "End-to-end latency (CDF, sample)", xLabel: run.mode == .measured ? "seconds" : "simulated seconds", yLabel: "share of requests", series: [(run.name, live.latencyCDF)])
            body += SVG.stackedBars(title: "Energy breakdown", unit: "kWh", parts: ["GPU active", "GPU idle", "host", "facility overhead (PUE)"], bars: [(run.name, live.breakdownKWh)])
            return Self.page("Run \(id)", body + "</div>")
        }
        router.get("runs/:id/requests.csv") { request, context in
            let id = try context.parameters.require("id", as: Int64.self)
            _ = try Self.lookup { try ledger.run(id) }
            // Streamed a page of rows at a time: each page is written before the next is read.
            return Response(
                status: .ok,
                headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"run-\(id)-requests.csv\""],
                body: ResponseBody { writer in
                    let export = RequestExport(format: .csv)
                    try await writer.write(ByteBuffer(string: export.header))
                    var cursor: Int64? = nil
                    repeat {
                        let page = try ledger.requests(run: id, RequestQuery(after: cursor, limit: 5000))
                        var text = ""
                        for row in page.items { text += try export.line(row) }
                        try await writer.write(ByteBuffer(string: text))
                        cursor = page.next
                    } while cursor != nil
                    try await writer.finish(nil)
                }
            )
        }
        router.get("runs/:id/emissions.csv") { _, context in
            let id = try context.parameters.require("id", as: Int64.self)
            _ = try Self.lookup { try ledger.run(id) }
            guard let export = try CodeCarbonExport.build(ledger, run: id, per: .interval) else {
                throw HTTPError(.notFound, message: "run \(id) has no accounting intervals yet")
            }
            return Response(
                status: .ok,
                headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"run-\(id)-emissions.csv\""],
                body: .init(byteBuffer: ByteBuffer(string: export.csv))
            )
        }
        router.get("compare") { request, _ in
            let q = Query(request: request)
            for name in ["baseline", "candidate"] {
                if let text = q.string(name), Int64(text) == nil { throw HTTPError(.badRequest, message: "\(name): expected a run id, got '\(text)'") }
            }
            guard let baseline = q.string("baseline").flatMap(Int64.init), let candidate = q.string("candidate").flatMap(Int64.init) else {
                // Runs newest first: the candidate defaults to the newest, the baseline to the one before it.
                let runs = try ledger.runs()
                func options(_ selected: Int64?) -> String {
                    runs.map { "<option value=\"\($0.id!)\"\($0.id == selected ? " selected" : "")>\($0.id!) \(e($0.name))</option>" }.joined()
                }
                var body = "<form method=\"get\" action=\"/compare\">Baseline run <select name=\"baseline\">" + options(runs.dropFirst().first?.id ?? runs.first?.id)
                body += "</select> Candidate run <select name=\"candidate\">" + options(runs.first?.id)
                body += "</select><button type=\"submit\">Compare</button></form><p class=\"note\">Any run against a baseline (a pruned configuration against its dense one, say): the same report as <code>joule report compare --format html</code>.</p>"
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
                return Render.html(try Comparison.build(ledger, metrics: metrics, location: ledger.location))
            }
            let download = "<p class=\"note\">Download: <a href=\"/compare.csv?baseline=\(baseline)&amp;candidate=\(candidate)\">this comparison (CSV)</a>.</p>"
            return TextBody(text: html.replacingOccurrences(of: "<body>\n", with: "<body>\n" + Self.nav).replacingOccurrences(of: "<h2>Figures</h2>", with: download + "<h2>Figures</h2>"),
                            contentType: "text/html; charset=utf-8")
        }
        router.get("compare.csv") { request, _ in
            let q = Query(request: request)
            guard let baseline = q.string("baseline").flatMap(Int64.init), let candidate = q.string("candidate").flatMap(Int64.init) else {
                throw HTTPError(.badRequest, message: "baseline, candidate: expected two run ids")
            }
            let csv = try await server.bounded(request) {
                let metrics = try [baseline, candidate].map { id in
                    try Task.checkCancellation()
                    return try Self.lookup { try RunMetrics.load(ledger, run: id) }
                }
                guard metrics.allSatisfy({ $0.requests > 0 }) else { throw HTTPError(.badRequest, message: "both runs need finished requests") }
                return Render.csv(try Comparison.build(ledger, metrics: metrics, location: ledger.location))
            }
            return Response(
                status: .ok,
                headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"compare-\(candidate)-vs-\(baseline).csv\""],
                body: .init(byteBuffer: ByteBuffer(string: csv))
            )
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
            let plan = try? CarbonPlanner.plan([found.series], duration: minutes * 60)
            let chosen = plan.map { (start: $0.chosen.chosen.start, end: $0.chosen.chosen.end, label: "best \(n(minutes))-min window") }
            body += "<div class=\"charts\" style=\"margin-top:1rem\">"
            body += SVG.timeLineChart(title: "Carbon intensity, \(region) (series \(found.stored.id))", yLabel: "gCO2e/kWh",
                                      series: [(found.series.metadata.sourceLabel, points.flatMap { [($0.start, $0.value), ($0.end, $0.value)] })], mark: chosen)
            body += "</div>"
            if let plan {
                let r = plan.chosen
                body += "<p>Best start <b data-best-start=\"\(e(iso(r.chosen.start)))\">\(e(iso(r.chosen.start)))</b>: \(n(r.chosen.value)) g/kWh over \(n(minutes)) min, against \(n(r.startingNow.value)) g/kWh "
                body += "at the series' start (saving \(n(plan.savingPercent)) %). \(r.best.count) window(s) share the minimum.</p>"
            } else {
                body += "<p>A \(n(minutes))-minute window does not fit in this series.</p>"
            }
            return Self.page("Scheduler", body)
        }
    }

    /// A run's figures for the dashboard, from the queries the reports use: the interval totals
    /// (energy and location-based carbon, as `report sustainability`), and the run's request
    /// figures folded from its rollups (as `report compare`, through `RunMetrics`). A page stays
    /// quick however long the run: no request row is read, but for a latency sample.
    struct Live {
        var metrics: RunMetrics
        var start: Double
        /// Per accounting interval: wall-clock start, length, facility joules, operational grams.
        var intervals: [(start: Double, length: Double, joules: Double, grams: Double)]
        var latencyCDF: [(Double, Double)]

        var latest: (start: Double, length: Double, joules: Double, grams: Double)? { intervals.last }
        var energyKWh: Double { metrics.clusterFacilityJoules / 3.6e6 }
        var carbonKg: Double { intervals.reduce(0) { $0 + $1.grams } / 1000 }
        var breakdownKWh: [Double] {
            [metrics.gpuActiveJoules / 3.6e6, metrics.gpuIdleJoules / 3.6e6, metrics.hostJoules / 3.6e6, max(0, metrics.facilityOverheadJoules) / 3.6e6]
        }

        func cards(_ n: (Double) -> String) -> [(String, String)] {
            let l = latest
            return [
                ("Facility power (latest interval)", l.map { "\(n($0.joules / max($0.length, 1e-9) / 1000)) kW" } ?? "—"),
                ("Energy so far", "\(n(energyKWh)) kWh"),
                ("Carbon so far (location-based)", "\(n(carbonKg)) kgCO2e"),
                ("Grid intensity (latest interval)", l.map { $0.joules > 0 ? "\(n($0.grams / ($0.joules / 3.6e6))) gCO2e/kWh" : "—" } ?? "—"),
                ("Requests finished", metrics.requests.formatted()),
                ("Energy per request (mean)", "\(n(metrics.meanEnergyWh)) Wh"),
                ("Energy per output token", "\(n(metrics.joulesPerOutputToken)) J"),
                ("Carbon per request (SCI)", "\(n(metrics.carbonGramsPerRequest)) gCO2e"),
                ("Latency p50 (end to end)", metrics.e2e.quantile(0.5).map { "\(n($0)) s" } ?? "—"),
            ]
        }

        func powerChart(name: String) -> String {
            SVG.timeLineChart(title: "Facility power", yLabel: "kW", series: [(name, intervals.flatMap { i in
                let kw = i.joules / max(i.length, 1e-9) / 1000
                return [(i.start, kw), (i.start + i.length, kw)]
            })])
        }

        func carbonChart() -> String {
            let bucket = intervals.map(\.length).max() ?? 60
            return SVG.timeBars(title: "Carbon per accounting interval (location-based)", unit: "gCO2e", bucketSeconds: max(bucket, 1e-3),
                                bars: intervals.map { ($0.start, $0.grams) })
        }
    }

    /// Run `run`'s dashboard figures (see `Live`); with `distribution`, a latency CDF from up to
    /// 5,000 finished requests spread over the run (fetched by row id).
    static func live(_ ledger: some LedgerQueries, run: StoredRun, distribution: Bool = false, cache: RunFiguresCache? = nil) throws -> Live {
        let id = run.id!
        let sampleSize = distribution ? 5000 : 0
        // The run's figures change only when a batch commits: read again then, not per page view.
        let progress = try ledger.progress(run: id)
        let key = "\(progress.batches)|\(progress.storedIntervals)|\(run.status.rawValue)|\(sampleSize)"
        let metrics = try cache?.figures(run: id, key: key) ?? {
            let m = try RunMetrics.load(ledger, run: id, sampleSize: sampleSize)
            cache?.store(m, run: id, key: key)
            return m
        }()
        var byStart: [Double: (length: Double, joules: Double, grams: Double)] = [:]
        for p in try ledger.facilityPower(run: id) {
            byStart[p.start] = (p.length, p.facilityJoules, p.operationalCarbonGrams)
        }
        let intervals = byStart.keys.sorted().map { t in (start: run.startEpochSeconds + t, length: byStart[t]!.length, joules: byStart[t]!.joules, grams: byStart[t]!.grams) }
        let latencies = metrics.sample.compactMap(\.endToEnd).sorted()
        let cdf = latencies.isEmpty ? [] : (1...100).map { i -> (Double, Double) in
            (latencies[min(latencies.count - 1, Int(Double(latencies.count) * Double(i) / 100.0))], Double(i) / 100)
        }
        return Live(metrics: metrics, start: run.startEpochSeconds, intervals: intervals, latencyCDF: cdf)
    }

    static func cards(_ items: [(String, String)]) -> String {
        "<div class=\"cards\">" + items.map { "<div class=\"card\"><div class=\"k\">\(SVG.esc($0.0))</div><div class=\"v\">\(SVG.esc($0.1))</div></div>" }.joined() + "</div>"
    }
}

/// A run's report figures, kept until its next commit: the dashboard reloads every few seconds,
/// and the figures change only when a batch commits (or the run's status does).
final class RunFiguresCache: Sendable {
    private let entries = Mutex<[String: RunMetrics]>([:])

    func figures(run: Int64, key: String) -> RunMetrics? {
        entries.withLock { $0["\(run)|\(key)"] }
    }

    func store(_ metrics: RunMetrics, run: Int64, key: String) {
        entries.withLock { e in
            // Older keys of the run are stale once a newer one is stored.
            for k in e.keys where k.hasPrefix("\(run)|") && k.hasSuffix(key.split(separator: "|").last.map { "|\($0)" } ?? "") { e[k] = nil }
            if e.count > 64 { e.removeAll() }
            e["\(run)|\(key)"] = metrics
        }
    }
}
