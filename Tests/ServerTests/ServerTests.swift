import CarbonData
import Catalog
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GRDB
import Ledger
import Logging
import MoE
import Scheduling
import Reports
@testable import Server
import Reports
import Accounting
import Serving
import Units
import Testing

let dataDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Data").path
let library: SpecLibrary = {
    do { return try Catalog.load(from: dataDirectory) } catch { fatalError("Data/ must load: \(error)") }
}()

/// A ledger with one recorded run and carbon series, served on an ephemeral loopback port for the
/// whole suite; calls go over a real socket with URLSession.
final class Fixture: Sendable {
    let ledger: Ledger
    let base: String
    let runId: Int64
    static let token = "test-token-123"

    init() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("joule-server-tests-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        ledger = try Ledger(path: "\(folder)/s.sqlite")
        let path = try Catalog.scenarioPath("mixtral-single-node", dataDirectory: dataDirectory)
        let loaded = try Catalog.loadScenario(at: path, library: library, dataDirectory: dataDirectory)
        let run = try Catalog.prepare(loaded, overrides: RunOverrides(duration: 120))
        runId = try ledger.beginRun(RunSpec(
            name: run.scenario.name, source: "test", scenarioFile: loaded.file, scenarioText: loaded.text, overrides: "{}",
            seed: run.scenario.seed, startEpochSeconds: run.scenario.startEpochSeconds, intervalSeconds: run.scenario.intervalSeconds
        ), at: 0)
        let recorder = RunRecorder(ledger: ledger, run: runId, startEpochSeconds: run.scenario.startEpochSeconds)
        _ = try run.run(onRecord: { recorder.add($0) }, onInterval: { recorder.add($0) }, hooks: RunHooks(onCheckpoint: { recorder.set($0) }))
        try recorder.commit(at: 1)
        // The Carbon Aware SDK's test data: 5-minute points 10, 20, 30, 40 (a forecast), and actuals for two locations.
        func series(_ region: String, _ kind: SeriesKind, _ values: [Double], start: Double = 1_700_000_000) -> CarbonSeries {
            CarbonSeries(
                metadata: SeriesMetadata(region: region, signal: .average, factor: .direct, kind: kind, source: "test", issuedAt: kind == .forecast ? start : nil, origin: "test"),
                checkedPoints: values.enumerated().map { TimedValue(start: start + Double($0.offset) * 300, duration: 300, value: $0.element) }
            )
        }
        try ledger.store(series("sdk", .forecast, [10, 20, 30, 40]), at: 1)
        try ledger.store(series("eastus", .actual, [50, 30, 70]), at: 1)
        try ledger.store(series("westus", .actual, [40, 30, 90]), at: 1)
        // The SDK's averaging vector: actuals 10, 20, 30, 40 (its average over [00:04, 00:20] is 28.75).
        try ledger.store(series("sdk-actuals", .actual, [10, 20, 30, 40]), at: 1)
        let server = JouleServer(ledger: ledger, token: Self.token)
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        let app = server.application(host: "127.0.0.1", port: 0, logger: Logger(label: "test")) { continuation.yield($0) }
        Task { try await app.runService() }
        var iterator = stream.makeAsyncIterator()
        guard let port = await iterator.next() else { throw URLError(.cannotConnectToHost) }
        base = "http://127.0.0.1:\(port)"
    }

    func get(_ path: String) async throws -> (Int, Data) {
        let (status, data, _) = try await getWithType(path)
        return (status, data)
    }

    /// The status, body and Content-Type of a GET.
    func getWithType(_ path: String) async throws -> (Int, Data, String?) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: base + path)!)
        let http = response as! HTTPURLResponse
        return (http.statusCode, data, http.value(forHTTPHeaderField: "Content-Type"))
    }

    func post(_ path: String, _ body: String, token: String?) async throws -> (Int, Data) {
        var request = URLRequest(url: URL(string: base + path)!)
        request.httpMethod = "POST"
        request.httpBody = Data(body.utf8)
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as! HTTPURLResponse).statusCode, data)
    }

    func json(_ data: Data) throws -> Any { try JSONSerialization.jsonObject(with: data) }
}

let shared = Task { try await Fixture() }

@Suite("HTTP API over loopback")
struct ServerTests {
    @Test("Runs list and one run's detail")
    func runs() async throws {
        let f = try await shared.value
        let (status, data) = try await f.get("/api/runs")
        #expect(status == 200)
        let runs = try f.json(data) as! [[String: Any]]
        #expect(runs.map { $0["name"] as? String } == ["mixtral-single-node"])
        let (s2, d2) = try await f.get("/api/runs/\(f.runId)")
        #expect(s2 == 200)
        #expect((try f.json(d2) as! [String: Any])["storedRequests"] as? Int ?? 0 > 0)
        #expect(try await f.get("/api/runs/99").0 == 404)
    }

    @Test("Cursor pagination visits every request once; filters hold on every item")
    func pagination() async throws {
        let f = try await shared.value
        var seen: [Int] = []
        var cursor: String? = nil
        repeat {
            let (status, data) = try await f.get("/api/runs/\(f.runId)/requests?limit=137" + (cursor.map { "&cursor=\($0)" } ?? ""))
            #expect(status == 200)
            let page = try f.json(data) as! [String: Any]
            seen += (page["items"] as! [[String: Any]]).map { $0["row"] as! Int }
            cursor = page["nextCursor"] as? String
        } while cursor != nil
        let count = try f.ledger.sql { try Int.fetchOne($0, sql: "SELECT count(*) FROM request WHERE runId = ?", arguments: [f.runId])! }
        #expect(seen.count == count && Set(seen).count == count && seen == seen.sorted())
        let (_, data) = try await f.get("/api/runs/\(f.runId)/requests?limit=1000&minEnergyWh=0.2&minLatencySeconds=1")
        let items = (try f.json(data) as! [String: Any])["items"] as! [[String: Any]]
        #expect(!items.isEmpty)
        #expect(items.allSatisfy { ($0["facilityJoules"] as! Double) >= 720 && ($0["endToEnd"] as! Double) >= 1 })
    }

    @Test("A bad parameter is a 400 that names it; nothing reaches SQL", arguments: [
        "/api/runs/1/requests?limit=0", "/api/runs/1/requests?limit=abc", "/api/runs/1/requests?from=2025'%20OR%201=1",
        "/api/runs/1/requests?minEnergyWh=-1", "/api/runs/1/requests?cursor=x", "/api/carbon",
    ])
    func badParameters(_ path: String) async throws {
        let f = try await shared.value
        let (status, data) = try await f.get(path.replacingOccurrences(of: "/runs/1/", with: "/runs/\(f.runId)/"))
        #expect(status == 400)
        #expect(String(decoding: data, as: UTF8.self).contains("message"))
    }

    /// Every query parameter and path value of every read route, at absurd values: an answer or
    /// a 4xx, never a 5xx or a dropped connection (a trap would take the whole suite's server down).
    @Test("Absurd values in every parameter of every read route: an answer or a 4xx, never a 5xx")
    func absurdParameters() async throws {
        let f = try await shared.value
        let run = "\(f.runId)"
        let absurd = ["0", "-1", "1e300", "nan", "inf", "1e-300", "9223372036854775807", "9223372036854775808", "", "abc",
                      "2025-02-30T00:00:00Z", "99999-01-01T00:00:00Z", "%00", String(repeating: "9", count: 400)]
        let routes: [(path: String, fixed: [String: String], parameters: [String])] = [
            ("/api/runs/{v}", [:], []), ("/api/runs/{v}/requests", [:], []), ("/api/runs/\(run)/requests/{v}", [:], []), ("/runs/{v}", [:], []),
            ("/api/runs/\(run)/requests", [:], ["from", "to", "minLatencySeconds", "minEnergyWh", "cursor", "limit"]),
            ("/api/compare", ["baseline": run, "candidate": run], ["baseline", "candidate"]),
            ("/compare", ["baseline": run, "candidate": run], ["baseline", "candidate"]),
            ("/api/carbon", ["region": "sdk"], ["region", "kind", "from", "to"]),
            ("/emissions/bylocations/best", ["location": "eastus"], ["location", "time", "toTime"]),
            ("/emissions/forecasts/current", ["location": "sdk"], ["location", "dataStartAt", "dataEndAt", "windowSize"]),
            ("/scheduler", ["region": "sdk"], ["region", "windowMinutes", "signal"]),
        ]
        func encoded(_ v: String) -> String { v.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? v }
        var probes = 0
        for route in routes {
            var paths: [String] = []
            if route.path.contains("{v}") { paths += absurd.map { route.path.replacingOccurrences(of: "{v}", with: encoded($0)) } }
            for name in route.parameters {
                for v in absurd where !(v == route.fixed[name]) {
                    var query = route.fixed
                    query[name] = v
                    paths.append(route.path + "?" + query.sorted { $0.key < $1.key }.map { "\($0.key)=\(encoded($0.value))" }.joined(separator: "&"))
                }
            }
            for path in paths {
                let (status, data) = try await f.get(path)
                probes += 1
                #expect(status < 500, "\(path): \(status) \(String(decoding: data.prefix(200), as: UTF8.self))")
            }
        }
        #expect(probes > 200)
        #expect(try await f.get("/api/health").0 == 200)
    }

    @Test("One request with its audit breakdown")
    func breakdown() async throws {
        let f = try await shared.value
        let (_, page) = try await f.get("/api/runs/\(f.runId)/requests?limit=1")
        let first = ((try f.json(page) as! [String: Any])["items"] as! [[String: Any]])[0]
        let (status, data) = try await f.get("/api/runs/\(f.runId)/requests/\(first["id"] as! Int)")
        #expect(status == 200)
        #expect(String(decoding: data, as: UTF8.self).contains("\"scenario\""))
    }

    @Test("A value a ledger holds never traps a route: a point lasting 1e300 s, a window of 1e-9 minutes")
    func absurdValuesAreAnswered() async throws {
        let f = try await shared.value
        // The ledger refuses such a point now; a ledger written before it did may still hold one.
        let huge = CarbonSeries(
            metadata: SeriesMetadata(region: "huge", signal: .average, factor: .direct, kind: .actual, source: "test", origin: "test"),
            checkedPoints: [TimedValue(start: 1_700_000_000, duration: 1e300, value: 12)]
        )
        #expect(throws: LedgerError.self) { try f.ledger.store(huge, at: 1) }
        let id = try f.ledger.store(CarbonSeries(metadata: huge.metadata, checkedPoints: [TimedValue(start: 1_700_000_000, duration: 3600, value: 12)]), at: 1)
        let writer = try DatabaseQueue(path: f.ledger.path)
        try await writer.write { try $0.execute(sql: "UPDATE intensitySample SET durationSeconds = 1e300 WHERE seriesId = ?", arguments: [id]) }
        let (status, data) = try await f.get("/emissions/bylocations/best?location=huge")
        #expect(status == 200, "\(String(decoding: data, as: UTF8.self))")
        #expect(String(decoding: data, as: UTF8.self).contains("99999:59:59"))
        for minutes in ["1e-9", "0.001", "1e300"] {
            let (status, data) = try await f.post("/api/schedule", "{\"region\": \"sdk\", \"windowMinutes\": \(minutes)}", token: Fixture.token)
            #expect(status == 400, "windowMinutes \(minutes): \(String(decoding: data, as: UTF8.self))")
            #expect(String(decoding: data, as: UTF8.self).contains("window"))
        }
        for energy in ["1e308", "-1"] {
            let (status, data) = try await f.post("/api/schedule", "{\"region\": \"sdk\", \"windowMinutes\": 10, \"energyKWh\": \(energy)}", token: Fixture.token)
            #expect(status == 400, "energyKWh \(energy): \(String(decoding: data, as: UTF8.self))")
            #expect(String(decoding: data, as: UTF8.self).contains("energyKWh"))
        }
    }

    @Test("A comparison reads at most four candidate runs: more is a 400 naming the limit")
    func compareIsCapped() async throws {
        let f = try await shared.value
        let many = (0..<5).map { _ in "candidate=\(f.runId)" }.joined(separator: "&")
        let (status, data) = try await f.get("/api/compare?baseline=\(f.runId)&\(many)")
        #expect(status == 400)
        #expect(String(decoding: data, as: UTF8.self).contains("at most 4 runs"))
    }

    @Test("Ledger-heavy requests beyond the server's limit are a 503 with Retry-After at once, and served once a place is free")
    func heavyWorkIsGated() async throws {
        let f = try await shared.value
        // A server of its own with one place, so that holding it does not disturb the other tests.
        let server = JouleServer(ledger: f.ledger, token: nil, heavyRequests: 1)
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        let app = server.application(host: "127.0.0.1", port: 0, logger: Logger(label: "test")) { continuation.yield($0) }
        let service = Task { try await app.runService() }
        defer { service.cancel() }
        var ports = stream.makeAsyncIterator()
        let port = try #require(await ports.next())
        func get(_ path: String) async throws -> (Int, String?, String) {
            let (data, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)\(path)")!)
            let http = response as! HTTPURLResponse
            return (http.statusCode, http.value(forHTTPHeaderField: "Retry-After"), String(decoding: data, as: UTF8.self))
        }
        #expect(await server.heavyWork.enter())
        for path in ["/api/compare?baseline=\(f.runId)&candidate=\(f.runId)", "/compare?baseline=\(f.runId)&candidate=\(f.runId)"] {
            let (status, retry, body) = try await get(path)
            #expect(status == 503 && retry == "5" && body.contains("busy"), "\(path): \(status) \(body)")
        }
        #expect(try await get("/api/health").0 == 200)
        // Run overviews come from the runs and their batches, not the rows: never gated.
        #expect(try await get("/api/runs").0 == 200)
        await server.heavyWork.leave()
        #expect(try await get("/api/runs").0 == 200)
        #expect(try await get("/api/compare?baseline=\(f.runId)&candidate=\(f.runId)").0 == 200)
        // Each finished request gave its place back.
        #expect(await server.heavyWork.enter())
        await server.heavyWork.leave()
    }

    @Test("A carbon query over more than 366 days, or backwards, is a 400 naming the limit")
    func carbonRangeIsCapped() async throws {
        let f = try await shared.value
        for (from, to) in [("2020-01-01T00:00Z", "2025-01-01T00:00Z"), ("2025-01-02T00:00Z", "2025-01-01T00:00Z")] {
            let (status, data) = try await f.get("/api/carbon?region=sdk&from=\(from)&to=\(to)")
            #expect(status == 400)
            #expect(String(decoding: data, as: UTF8.self).contains("at most 366 days"))
        }
        let (status, _) = try await f.get("/api/carbon?region=sdk&from=2025-01-01T00:00Z&to=2025-06-01T00:00Z")
        #expect(status == 200)
    }

    @Test("POST /api/schedule needs the bearer token and answers as the window search does")
    func schedule() async throws {
        let f = try await shared.value
        let job = #"{"region":"sdk","windowMinutes":10,"energyKWh":100}"#
        #expect(try await f.post("/api/schedule", job, token: nil).0 == 401)
        #expect(try await f.post("/api/schedule", job, token: "wrong").0 == 401)
        #expect(try await f.post("/api/schedule", "{not json", token: Fixture.token).0 == 400)
        let (status, data) = try await f.post("/api/schedule", job, token: Fixture.token)
        #expect(status == 200)
        let plan = try f.json(data) as! [String: Any]
        #expect((plan["best"] as! [String: Any])["intensityGramsPerKWh"] as? Double == 15)
        #expect(plan["emissionsKg"] as? Double == 1.5)
        #expect(plan["windowsCompared"] as? Int == 3)
    }
}

@Suite("Prometheus /metrics over loopback")
struct MetricsTests {
    /// Parses the text exposition format strictly: `# TYPE name kind`, `# HELP …`, or
    /// `name{label="value",…} number`; returns the samples and the declared types.
    static func parse(_ text: String) throws -> (samples: [(name: String, labels: [String: String], value: Double)], types: [String: String]) {
        var samples: [(String, [String: String], Double)] = []
        var types: [String: String] = [:]
        let sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? ([-+]?[0-9.eE+-]+|NaN|[+-]Inf)$/
        let label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/
        for line in text.split(separator: "\n") where !line.isEmpty {
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]) else { throw CancellationError() }
                types[String(parts[2])] = String(parts[3])
                continue
            }
            if line.hasPrefix("#") { continue }
            guard let m = try sample.wholeMatch(in: String(line)), let value = Double(m.output.4) ?? (m.output.4 == "+Inf" ? .infinity : nil) else {
                Issue.record("not a sample line: \(line)")
                continue
            }
            var labels: [String: String] = [:]
            if let body = m.output.3 { for l in String(body).matches(of: label) { labels[String(l.output.1)] = String(l.output.2) } }
            samples.append((String(m.output.1), labels, value))
        }
        return (samples, types)
    }

    @Test("The exposition parses, every family is typed, and the totals equal the ledger's; scraping again counts nothing twice")
    func metrics() async throws {
        let f = try await shared.value
        let (status, data) = try await f.get("/metrics")
        #expect(status == 200)
        let (samples, types) = try Self.parse(String(decoding: data, as: UTF8.self))
        for s in samples {
            let family = ["_bucket", "_sum", "_count"].reduce(s.name) { $0.hasSuffix($1) && types[String($0.dropLast($1.count))] == "histogram" ? String($0.dropLast($1.count)) : $0 }
            #expect(types[family] != nil, "\(s.name) has no TYPE")
        }
        for family in ["joule_energy_joules_total", "joule_facility_energy_joules_total", "joule_carbon_grams_total", "joule_requests_total",
                       "joule_tokens_total", "joule_request_latency_seconds", "joule_ttft_seconds", "joule_request_energy_joules",
                       "joule_run_simulated_seconds_total", "joule_embodied_carbon_grams_total", "joule_run_info", "joule_build_info"] {
            #expect(types[family] != nil, "missing \(family)")
        }
        // Every family has HELP; counters end in _total; no label is one Prometheus reserves.
        let text = String(decoding: data, as: UTF8.self)
        for family in types.keys { #expect(text.contains("# HELP \(family) "), "\(family) has no HELP") }
        for (family, kind) in types where kind == "counter" { #expect(family.hasSuffix("_total"), "\(family)") }
        for s in samples {
            #expect(s.labels["instance"] == nil && s.labels["job"] == nil, "\(s.name) has a label Prometheus reserves")
            if s.name != "joule_build_info" && !s.name.hasPrefix("joule_grid_intensity") { #expect(s.labels["run"] != nil, "\(s.name) has no run label") }
        }
        // The fixture's run is being written (never marked finished): its gauges are shown.
        for family in ["joule_power_watts", "joule_ledger_last_commit_timestamp_seconds", "joule_grid_intensity_grams_per_joule"] {
            #expect(types[family] == "gauge", "\(family) missing for a running run")
        }
        #expect(samples.filter { $0.name == "joule_run_info" }.map { $0.labels["status"] } == ["running"])
        func total(_ name: String, _ where: (String, String)? = nil) -> Double {
            samples.filter { s in s.name == name && (`where`.map { w in s.labels[w.0] == w.1 } ?? true) }.reduce(0) { $0 + $1.value }
        }
        let (requests, facility) = try f.ledger.sql { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM request WHERE inFlight = 0")!,
             try Double.fetchOne(db, sql: "SELECT sum(facilityJoules) FROM clusterInterval")!)
        }
        #expect(total("joule_requests_total") == Double(requests))
        #expect(total("joule_request_latency_seconds_count") == Double(requests))
        // Histograms come from the rollups' sketches: at bounds that are sketch bucket edges (a
        // power of two times k/128), each bucket holds exactly the requests below it.
        for le in ["0.25", "0.5", "1.0", "2.5", "5.0", "10.0"] {
            let below = try f.ledger.sql { db in
                try Int.fetchOne(db, sql: "SELECT count(*) FROM request WHERE inFlight = 0 AND finishSeconds - arrivalSeconds < ?", arguments: [Double(le)!])!
            }
            #expect(total("joule_request_latency_seconds_bucket", ("le", le)) == Double(below), "le \(le)")
        }
        #expect(abs(total("joule_facility_energy_joules_total") - facility) <= 1e-9 * facility)
        // The parts add up to the facility total (none of them is the total).
        #expect(abs(total("joule_energy_joules_total") - facility) <= 1e-9 * facility)
        #expect(Set(samples.filter { $0.name == "joule_energy_joules_total" }.compactMap { $0.labels["part"] }).isSubset(of: ["gpu_active", "gpu_idle", "host", "facility_overhead"]))
        // The Grafana dashboard loads as JSON and has a panel for every family /metrics emits.
        let grafana = URL(fileURLWithPath: dataDirectory).deletingLastPathComponent().appendingPathComponent("Dashboards/grafana/joule.json")
        let dashboard = try JSONSerialization.jsonObject(with: try Data(contentsOf: grafana)) as! [String: Any]
        let exprs = (dashboard["panels"] as! [[String: Any]]).flatMap { ($0["targets"] as! [[String: Any]]).map { $0["expr"] as! String } }
        for family in types.keys { #expect(exprs.contains { $0.contains(family) }, "no Grafana panel for \(family)") }
        let again = try Self.parse(String(decoding: try await f.get("/metrics").1, as: UTF8.self)).samples
        #expect(again.filter { $0.name == "joule_requests_total" }.map(\.value) == samples.filter { $0.name == "joule_requests_total" }.map(\.value))
    }
}

@Suite("Prometheus metrics of runs that stop")
struct MetricsLifecycleTests {
    @Test("A run that finishes loses its gauges and keeps its counters; its info series changes status, never doubles")
    func finishedRunsGauges() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("joule-metrics-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let ledger = try Ledger(path: "\(folder)/m.sqlite")
        let loaded = try Catalog.loadScenario(at: try Catalog.scenarioPath("mixtral-single-node", dataDirectory: dataDirectory), library: library, dataDirectory: dataDirectory)
        let run = try Catalog.prepare(loaded, overrides: RunOverrides(duration: 30))
        let id = try ledger.beginRun(RunSpec(
            name: "m", source: "test", scenarioFile: loaded.file, scenarioText: loaded.text, overrides: "{}",
            seed: run.scenario.seed, startEpochSeconds: run.scenario.startEpochSeconds, intervalSeconds: 5
        ), at: 0)
        let recorder = RunRecorder(ledger: ledger, run: id, startEpochSeconds: run.scenario.startEpochSeconds)
        _ = try run.run(onRecord: { recorder.add($0) }, onInterval: { recorder.add($0) }, hooks: RunHooks(onCheckpoint: { recorder.set($0) }))
        try recorder.commit(at: 1)
        let metrics = LedgerMetrics(ledger: ledger)
        let before = try MetricsTests.parse(try metrics.scrape())
        #expect(before.types["joule_power_watts"] == "gauge" && before.types["joule_grid_intensity_grams_per_joule"] == "gauge")
        try ledger.setStatus(.finished, run: id, at: 2)
        let after = try MetricsTests.parse(try metrics.scrape())
        for family in ["joule_power_watts", "joule_ledger_last_commit_timestamp_seconds", "joule_grid_intensity_grams_per_joule"] {
            #expect(after.types[family] == nil, "\(family) kept for a finished run")
        }
        func values(_ parsed: (samples: [(name: String, labels: [String: String], value: Double)], types: [String: String])) -> [String: Double] {
            var out: [String: Double] = [:]
            for s in parsed.samples where parsed.types[s.name] == "counter" { out[s.name + s.labels.sorted { $0.key < $1.key }.description] = s.value }
            return out
        }
        #expect(!values(after).isEmpty && values(after) == values(before))
        #expect(after.samples.filter { $0.name == "joule_run_info" }.map { $0.labels["status"] } == ["finished"])
        // The simulated clock reached the run's length.
        #expect(after.samples.first { $0.name == "joule_run_simulated_seconds_total" }?.value == 30)
    }
}

@Suite("Dashboard pages over loopback")
struct DashboardTests {
    @Test("Every page answers with self-contained HTML; the live view refreshes itself", arguments: ["/", "/runs", "/runs/1", "/compare", "/scheduler", "/scheduler?region=sdk&windowMinutes=10"])
    func pages(_ path: String) async throws {
        let f = try await shared.value
        let (status, data) = try await f.get(path.replacingOccurrences(of: "/runs/1", with: "/runs/\(f.runId)"))
        #expect(status == 200)
        let html = String(decoding: data, as: UTF8.self)
        #expect(html.hasPrefix("<!DOCTYPE html>") && html.contains("<nav"))
        #expect(!html.contains("src=\"http") && !html.contains("href=\"http") && !html.contains("<link") && !html.contains("<script src"))
        if path == "/" { #expect(html.contains("http-equiv=\"refresh\"")) }
        if path.hasPrefix("/scheduler?") { #expect(html.contains("Best start") && html.contains("data-window=\"chosen\"")) }
        if path == "/" { #expect(html.contains("Carbon so far") && html.contains("Carbon per accounting interval")) }
    }

    @Test("The dashboard's figures are the reports': energy, carbon and per-request figures from the same queries")
    func figuresAgree() async throws {
        let f = try await shared.value
        let html = String(decoding: try await f.get("/runs/\(f.runId)").1, as: UTF8.self)
        let metrics = try RunMetrics.load(f.ledger, run: f.runId)
        let run = try f.ledger.run(f.runId)
        let report = try SustainabilityReport.build(ledger: f.ledger, path: "s", from: run.startEpochSeconds, to: run.startEpochSeconds + 86_400, runs: [f.runId])
        for text in ["\(Render.number(metrics.joulesPerOutputToken)) J", "\(Render.number(metrics.meanEnergyWh)) Wh", "\(Render.number(metrics.carbonGramsPerRequest)) gCO2e",
                     "\(Render.number(report.facilityKWh)) kWh", "\(Render.number(report.locationBasedKg)) kgCO2e", metrics.requests.formatted()] {
            #expect(html.contains(">\(text)<"), "the run page lacks \(text)")
        }
    }

    @Test("CSV downloads: every request, CodeCarbon's emissions.csv, a comparison")
    func downloads() async throws {
        let f = try await shared.value
        let (status, data) = try await f.get("/runs/\(f.runId)/requests.csv")
        #expect(status == 200)
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
        let stored = try f.ledger.sql { try Int.fetchOne($0, sql: "SELECT count(*) FROM request WHERE runId = ?", arguments: [f.runId])! }
        #expect(lines.count == stored + 1 && lines[0].hasPrefix("run,arrivalTime,"))
        let (s2, d2) = try await f.get("/runs/\(f.runId)/emissions.csv")
        #expect(s2 == 200 && String(decoding: d2, as: UTF8.self).hasPrefix(CodeCarbonExport.columns.joined(separator: ",") + "\n"))
        let (s3, d3) = try await f.get("/compare.csv?baseline=\(f.runId)&candidate=\(f.runId)")
        #expect(s3 == 200 && String(decoding: d3, as: UTF8.self).contains("Energy per output token"))
        #expect(try await f.get("/runs/999/requests.csv").0 == 404)
        #expect(try await f.get("/compare.csv?baseline=x&candidate=1").0 == 400)
        // A run id that is not one is refused, not answered with the picker (schemathesis found it).
        #expect(try await f.get("/compare?baseline=1&candidate=abc").0 == 400)
    }

    @Test("An unknown run's page is a 404")
    func unknown() async throws {
        let f = try await shared.value
        #expect(try await f.get("/runs/999").0 == 404)
    }
}

@Suite("Server: the request page's JSON")
struct RequestPageJSONTests {
    /// A double of every kind a row can hold: integral, tiny, huge, negative, any finite pattern.
    static func double(_ g: inout SplitMix64) -> Double {
        switch g.next() % 6 {
        case 0: return Double(Int(truncatingIfNeeded: g.next() % 100_000))
        case 1: return Double.random(in: 0..<1e-6, using: &g)
        case 2: return Double.random(in: 1e15..<1e22, using: &g)
        case 3: return -Double.random(in: 0..<5000, using: &g)
        case 4:
            let v = Double(bitPattern: g.next())
            return v.isFinite ? v : 0.5
        default: return Double.random(in: 0..<4000, using: &g)
        }
    }

    static func row(_ g: inout SplitMix64) -> RequestRow {
        func maybe<T>(_ v: T) -> T? { g.next() % 4 == 0 ? nil : v }
        var r = RequestRecord(
            id: Int(g.next() % 10_000_000), inFlight: g.next() % 2 == 0, arrival: double(&g), prefillStart: maybe(double(&g)),
            firstToken: maybe(double(&g)), finish: maybe(double(&g)), prefillUnit: maybe(Int(g.next() % 300)), decodeUnit: maybe(Int(g.next() % 300)),
            promptTokens: Int(g.next() % 100_000), cachedTokens: Int(g.next() % 1000), outputTokens: Int(g.next() % 5000),
            gpuActiveJoules: double(&g), gpuIdleJoules: double(&g), hostJoules: double(&g), facilityOverheadJoules: double(&g),
            facilityJoules: double(&g), gpuSeconds: double(&g), intensityGramsPerKWh: double(&g), operationalCarbonGrams: double(&g),
            embodiedCarbonGrams: double(&g), meanPowerWatts: double(&g)
        )
        if g.next() % 2 == 0 {
            r.training = TrainingShare(tokens: double(&g), facilityJoules: double(&g), carbonGrams: double(&g), gpuSeconds: double(&g))
        }
        return RequestRow(rowID: Int64(g.next() % 1_000_000_000), runID: Int64(g.next() % 100), epochSeconds: double(&g), record: r)
    }

    @Test("The hand-made page is byte for byte what JSONEncoder gives with sorted keys", arguments: 0..<20)
    func sameBytes(seed: UInt64) throws {
        var g = SplitMix64(seed: seed)
        let page = RequestPageJSON(items: (0..<50).map { _ in Self.row(&g) }, nextCursor: seed % 2 == 0 ? String(g.next() % 1_000_000) : nil)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let expected = try encoder.encode(page)
        let made = try #require(page.json())
        #expect(made == [UInt8](expected), "\(String(decoding: made.prefix(600), as: UTF8.self))\n\(String(decoding: expected.prefix(600), as: UTF8.self))")
    }

    @Test("A figure that is not finite leaves the page to JSONEncoder, which refuses it")
    func notFinite() {
        var g = SplitMix64(seed: 1)
        var row = Self.row(&g)
        row.record.gpuSeconds = .infinity
        #expect(RequestPageJSON(items: [row], nextCursor: nil).json() == nil)
    }
}
