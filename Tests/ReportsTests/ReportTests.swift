import Catalog
import Foundation
import GRDB
import Ledger
import MoE
import Reports
import Accounting
import Serving
import Testing

let dataDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Data").path
let library: SpecLibrary = {
    do { return try Catalog.load(from: dataDirectory) } catch { fatalError("Data/ must load: \(error)") }
}()

/// Records `scenario` for `duration` simulated seconds into `ledger`, with its summary, as `joule simulate --db` does.
func record(_ scenario: String, duration: Double, into ledger: Ledger) throws -> Int64 {
    let path = try Catalog.scenarioPath(scenario, dataDirectory: dataDirectory)
    let loaded = try Catalog.loadScenario(at: path, library: library, dataDirectory: dataDirectory)
    let run = try Catalog.prepare(loaded, overrides: RunOverrides(duration: duration))
    let id = try ledger.beginRun(RunSpec(
        name: run.scenario.name, source: "test", scenarioFile: loaded.file, scenarioText: loaded.text, overrides: "{}",
        seed: run.scenario.seed, startEpochSeconds: run.scenario.startEpochSeconds, intervalSeconds: run.scenario.intervalSeconds
    ), at: 0)
    let recorder = RunRecorder(ledger: ledger, run: id, startEpochSeconds: run.scenario.startEpochSeconds)
    let outcome = try run.run(onRecord: { recorder.add($0) }, onInterval: { recorder.add($0) }, hooks: RunHooks(onCheckpoint: { recorder.set($0) }))
    try recorder.commit(at: 1)
    guard case .finished(let summary) = outcome else { throw CancellationError() }
    let encoder = JSONEncoder()
    try ledger.setStatus(.finished, run: id, at: 2, summary: String(decoding: try encoder.encode(summary), as: UTF8.self))
    return id
}

@Suite("Pruned-vs-dense report", .serialized)
struct ReportTests {
    static let folder: String = {
        let p = FileManager.default.temporaryDirectory.appendingPathComponent("joule-report-tests-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
        return p
    }()
    static let fixture: (Ledger, ComparisonReport) = {
        let ledger = try! Ledger(path: "\(folder)/r.sqlite")
        let dense = try! record("deepseek-v3-dense-hour", duration: 8, into: ledger)
        let pruned = try! record("deepseek-v3-pruned-hour", duration: 8, into: ledger)
        let report = Comparison.build(
            baseline: try! RunMetrics.load(ledger, run: dense), candidates: [try! RunMetrics.load(ledger, run: pruned)], ledger: "r.sqlite"
        )
        return (ledger, report)
    }()

    @Test("Report numbers equal ledger queries")
    func numbersAreQueries() throws {
        let (ledger, report) = Self.fixture
        for c in [report.baseline] + report.candidates {
            let q = try ledger.sql { db in
                try Row.fetchOne(db, sql: """
                    SELECT count(*) AS n, avg(facilityJoules) AS meanJ, sum(facilityJoules) AS sumJ, sum(outputTokens) AS outTokens,
                           sum(promptTokens) AS inTokens, sum(operationalCarbonGrams) + sum(embodiedCarbonGrams) AS grams
                    FROM request WHERE runId = ? AND inFlight = 0
                    """, arguments: [c.run])!
            }
            let cluster = try ledger.sql { db in
                try Double.fetchOne(db, sql: "SELECT sum(facilityJoules) FROM clusterInterval WHERE runId = ?", arguments: [c.run])!
            }
            let median = try ledger.sql { db in
                try Double.fetchOne(db, sql: """
                    SELECT facilityJoules FROM request WHERE runId = ? AND inFlight = 0 ORDER BY facilityJoules
                    LIMIT 1 OFFSET (SELECT (count(*) + 1) / 2 - 1 FROM request WHERE runId = ? AND inFlight = 0)
                    """, arguments: [c.run, c.run])!
            }
            func close(_ a: Double?, _ b: Double, _ tolerance: Double = 1e-9) -> Bool { a.map { abs($0 - b) <= tolerance * abs(b) } ?? false }
            #expect(c.requests == q["n"] as Int)
            #expect(close(c.energyPerRequestMeanWh.value, (q["meanJ"] as Double) / 3600))
            #expect(close(c.joulesPerOutputToken.value, (q["sumJ"] as Double) / (q["outTokens"] as Double)))
            #expect(close(c.joulesPerInputToken.value, (q["sumJ"] as Double) / (q["inTokens"] as Double)))
            #expect(close(c.carbonPerRequestGrams.value, (q["grams"] as Double) / Double(q["n"] as Int)))
            #expect(close(c.energyKWh.value, cluster / 3.6e6))
            #expect(close(c.energyPerRequestP50Wh.value, median / 3600, 0.006))
            let breakdown = c.energyBreakdownKWh.values.reduce(0, +)
            #expect(close(breakdown, cluster / 3.6e6, 1e-9))
        }
    }

    @Test("Candidates carry deltas with intervals around them; the baseline carries none")
    func deltas() {
        let (_, report) = Self.fixture
        #expect(report.baseline.rows.allSatisfy { $0.figure.deltaPercent == nil })
        let c = report.candidates[0]
        #expect(c.rows.allSatisfy { $0.figure.deltaPercent != nil })
        for row in c.rows where row.figure.ciLowPercent != nil {
            #expect(row.figure.ciLowPercent! <= row.figure.deltaPercent! + 1e-9 && row.figure.deltaPercent! <= row.figure.ciHighPercent! + 1e-9, "\(row.label)")
        }
        #expect(c.fidelity!.relativeError > 0)
        #expect(report.baseline.fidelity!.relativeError == 0)
    }

    @Test("Every format carries every figure; the HTML stands alone")
    func formats() throws {
        let (_, report) = Self.fixture
        let md = Render.markdown(report), html = Render.html(report), csv = Render.csv(report)
        let json = String(decoding: try JSONEncoder().encode(report), as: UTF8.self)
        for row in report.baseline.rows {
            #expect(md.contains("| \(row.label) |"))
            #expect(html.contains(row.label.replacingOccurrences(of: "&", with: "&amp;")))
            #expect(csv.contains(row.label.contains(",") ? "\"\(row.label)\"" : row.label))
        }
        for key in ["energyPerRequestMeanWh", "ttftP99Seconds", "sciPerRequestGrams", "carbonPer1000TokensGrams", "ciLowPercent", "powerKW", "methodology"] {
            #expect(json.contains("\"\(key)\""), "\(key)")
        }
        #expect(csv.split(separator: "\n").count == 1 + 2 * (report.baseline.rows.count + 4 + 3))
        #expect(html.components(separatedBy: "<svg").count - 1 == 4)
        #expect(!html.contains("<script") && !html.contains("<link") && !html.contains("src=") && !html.contains("url("))
    }
}

@Suite("Sustainability report", .serialized)
struct SustainabilityTests {
    static let from = 1_740_628_800.0  // 2025-02-27T04:00Z, the pair's start
    static let to = from + 3600

    @Test("Energy, Scope 2, embodied and SCI equal ledger queries; a market-based factor is separate and leaves the SCI alone")
    func numbersAreQueries() throws {
        let (ledger, _) = ReportTests.fixture
        let plain = try SustainabilityReport.build(ledger: ledger, path: "r.sqlite", from: Self.from, to: Self.to)
        let market = try SustainabilityReport.build(ledger: ledger, path: "r.sqlite", from: Self.from, to: Self.to, market: (0, "wind PPA"))
        let q = try ledger.sql { db in
            try Row.fetchOne(db, sql: """
                SELECT sum(facilityJoules) AS j, sum(operationalCarbonGrams) AS g FROM clusterInterval WHERE startEpochSeconds >= ? AND startEpochSeconds < ?
                """, arguments: [Self.from, Self.to])!
        }
        let r = try ledger.sql { db in
            try Row.fetchOne(db, sql: """
                SELECT count(*) AS n, sum(operationalCarbonGrams) + sum(embodiedCarbonGrams) AS g FROM request
                WHERE inFlight = 0 AND arrivalEpochSeconds >= ? AND arrivalEpochSeconds < ?
                """, arguments: [Self.from, Self.to])!
        }
        #expect(abs(plain.facilityKWh - (q["j"] as Double) / 3.6e6) < 1e-9 * plain.facilityKWh)
        #expect(abs(plain.scope2LocationBasedKg - (q["g"] as Double) / 1000) < 1e-9 * plain.scope2LocationBasedKg)
        #expect(plain.sci.requests == r["n"] as Int)
        #expect(abs(plain.sci.perRequestGrams! - (r["g"] as Double) / Double(r["n"] as Int)) < 1e-12)
        #expect(abs(plain.itKWh + plain.facilityOverheadKWh - plain.facilityKWh) < 1e-9 * plain.facilityKWh)
        #expect(plain.embodiedKg > 0)
        #expect(plain.scope2MarketBased == nil)
        #expect(market.scope2MarketBased?.kg == 0 && market.scope2MarketBased?.instrument == "wind PPA")
        #expect(market.sci.perRequestGrams == plain.sci.perRequestGrams)
        #expect(market.scope2LocationBasedKg == plain.scope2LocationBasedKg)
        // Restricting to one run gives that run's share; the runs' shares add up.
        let one = try SustainabilityReport.build(ledger: ledger, path: "r.sqlite", from: Self.from, to: Self.to, runs: [1])
        let two = try SustainabilityReport.build(ledger: ledger, path: "r.sqlite", from: Self.from, to: Self.to, runs: [2])
        #expect(abs(one.facilityKWh + two.facilityKWh - plain.facilityKWh) < 1e-9 * plain.facilityKWh)
    }

    @Test("Every SCI disclosure is present and says no market-based measure reduced the score")
    func disclosures() throws {
        let (ledger, _) = ReportTests.fixture
        let report = try SustainabilityReport.build(ledger: ledger, path: "r.sqlite", from: Self.from, to: Self.to)
        for key in ["score", "functionalUnit", "softwareBoundary", "energyMethod", "intensitySignal", "factorType", "embodiedModel", "conversionFactors", "marketBasedStatement", "period"] {
            #expect(!(report.disclosures[key] ?? "").isEmpty, "\(key)")
        }
        #expect(report.disclosures["marketBasedStatement"]!.contains("No market-based measure"))
        let html = Render.html(report)
        #expect(!html.contains("<script") && html.components(separatedBy: "<svg").count - 1 == 3)
        #expect(Render.markdown(report).contains("SCI per request"))
    }

    @Test("An empty period is an error that names it")
    func empty() {
        let (ledger, _) = ReportTests.fixture
        #expect { try SustainabilityReport.build(ledger: ledger, path: "r.sqlite", from: 0, to: 3600) } throws: { "\($0)".contains("1970-01-01T00:00:00Z") }
    }
}

@Suite("Charts whatever their data")
struct ChartTests {
    /// An empty run's chart (once a trap: the x axis unwrapped the maximum of no points), a single
    /// point, and values no ledger should hold all draw a chart.
    @Test("A line chart of no points, one point, or non-finite points is still a chart", arguments: [
        [(Double, Double)](), [(5, 2)], [(0, .nan), (1, .infinity), (.nan, 3)], [(0, 1), (1, -.infinity), (2, 3)],
    ])
    func lineChartNeverTraps(points: [(Double, Double)]) {
        let svg = SVG.lineChart(title: "Facility power", xLabel: "s", yLabel: "kW", series: [("run", points)])
        #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>"))
        #expect(!svg.contains("nan") && !svg.contains("inf"))
    }
}
