import Catalog
import Foundation
import GRDB
@testable import Ledger
import MoE
@testable import Reports
import Accounting
import Serving
import Testing
import Units

let dataDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Data").path
let library: SpecLibrary = {
    do { return try Catalog.load(from: dataDirectory) } catch { fatalError("Data/ must load: \(error)") }
}()

/// Records `scenario` for `duration` simulated seconds into `ledger`, with its summary, as `joule simulate --db` does:
/// in one batch, or with `batched` a batch at every checkpoint (as a long run commits).
func record(_ scenario: String, duration: Double, into ledger: Ledger, batched: Bool = false) throws -> Int64 {
    let path = try Catalog.scenarioPath(scenario, dataDirectory: dataDirectory)
    let loaded = try Catalog.loadScenario(at: path, library: library, dataDirectory: dataDirectory)
    let run = try Catalog.prepare(loaded, overrides: RunOverrides(duration: duration))
    let id = try ledger.beginRun(RunSpec(
        name: run.scenario.name, source: "test", scenarioFile: loaded.file, scenarioText: loaded.text, overrides: "{}",
        seed: run.scenario.seed, startEpochSeconds: run.scenario.startEpochSeconds, intervalSeconds: run.scenario.intervalSeconds
    ), at: 0)
    let recorder = RunRecorder(ledger: ledger, run: id, startEpochSeconds: run.scenario.startEpochSeconds)
    let outcome = try run.run(onRecord: { recorder.add($0) }, onInterval: { recorder.add($0) }, hooks: RunHooks(onCheckpoint: { cp in
        recorder.set(cp)
        if batched { try? recorder.commit(at: 1, background: true) }
    }))
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
                           sum(promptTokens) AS inTokens
                    FROM request WHERE runId = ? AND inFlight = 0
                    """, arguments: [c.run])!
            }
            let grams = try storedCarbonGrams(ledger, where: "runId = \(c.run) AND inFlight = 0")
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
            #expect(close(c.carbonPerRequestGrams.value, grams.sum / Double(q["n"] as Int)))
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
        let r = try storedCarbonGrams(ledger, where: """
            inFlight = 0 AND c.startEpochSeconds + arrivalSeconds >= \(Self.from) AND c.startEpochSeconds + arrivalSeconds < \(Self.to)
            """)
        #expect(abs(plain.facilityKWh - (q["j"] as Double) / 3.6e6) < 1e-9 * plain.facilityKWh)
        #expect(abs(plain.locationBasedKg - (q["g"] as Double) / 1000) < 1e-9 * plain.locationBasedKg)
        // The pair runs at CN's annual life-cycle factor (ecologits-2025): none of it is Scope 2.
        #expect(plain.runs.allSatisfy { $0.carbonFactor == "lifecycle" })
        #expect(plain.scope2LocationBasedKg == 0 && abs(plain.lifecycleGridKg - plain.locationBasedKg) <= 1e-12 * plain.locationBasedKg && plain.unstatedFactorGridKg == 0)
        #expect(plain.sci.requests == r.count)
        #expect(abs(plain.sci.perRequestGrams! - r.sum / Double(r.count)) < 1e-12)
        #expect(abs(plain.itKWh + plain.facilityOverheadKWh - plain.facilityKWh) < 1e-9 * plain.facilityKWh)
        #expect(plain.embodiedKg > 0)
        #expect(plain.scope2MarketBased == nil)
        #expect(market.scope2MarketBased?.kg == 0 && market.scope2MarketBased?.instrument == "wind PPA")
        #expect(market.sci.perRequestGrams == plain.sci.perRequestGrams)
        #expect(market.locationBasedKg == plain.locationBasedKg)
        // Restricting to one run gives that run's share; the runs' shares add up.
        let one = try SustainabilityReport.build(ledger: ledger, path: "r.sqlite", from: Self.from, to: Self.to, runs: [1])
        let two = try SustainabilityReport.build(ledger: ledger, path: "r.sqlite", from: Self.from, to: Self.to, runs: [2])
        #expect(abs(one.facilityKWh + two.facilityKWh - plain.facilityKWh) < 1e-9 * plain.facilityKWh)
        // Each run's line is its part, as the restricted report gives it; the lines add up to the totals.
        for (line, alone) in zip(plain.runs, [one, two]) {
            #expect(abs(line.facilityKWh - alone.facilityKWh) <= 1e-12 * alone.facilityKWh)
            #expect(abs(line.locationBasedKg - alone.locationBasedKg) <= 1e-12 * alone.locationBasedKg)
            #expect(abs(line.embodiedKg - alone.embodiedKg) <= 1e-12 * alone.embodiedKg)
            #expect(line.requests == alone.sci.requests)
        }
        #expect(plain.runs.reduce(0) { $0 + $1.requests } == plain.sci.requests)
        #expect(plain.byWriter == nil, "a one-writer ledger has no per-writer section")
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

    @Test("By default a disclosure covers what was served: what-if simulations only when named or asked for")
    func servedScope() throws {
        let (ledger, _) = ReportTests.fixture
        // The pair was recorded by simulations: nothing was served.
        #expect { try SustainabilityReport.build(ledger: ledger, path: "r.sqlite", from: Self.from, to: Self.to, scope: .served) } throws: {
            "\($0)".contains("--all-runs")
        }
        let named = try SustainabilityReport.build(ledger: ledger, path: "r.sqlite", from: Self.from, to: Self.to, runs: [2], scope: .served)
        #expect(named.runs.map(\.run) == [2] && named.scope.contains("named"))
        let all = try SustainabilityReport.build(ledger: ledger, path: "r.sqlite", from: Self.from, to: Self.to, scope: .all)
        #expect(all.runs.count == 2 && all.scope.contains("what-if simulations included"))
    }

    /// Records `mixtral-single-node` for 60 s at a stated intensity and factor into a fresh ledger.
    func factorRun(_ carbon: String) throws -> SustainabilityReport {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("joule-factor-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let source = try String(contentsOfFile: try Catalog.scenarioPath("mixtral-single-node", dataDirectory: dataDirectory), encoding: .utf8)
        var lines = source.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let start = lines.firstIndex { $0.hasPrefix("carbon:") }!
        var end = start + 1
        while end < lines.count, lines[end].hasPrefix("  ") { end += 1 }
        lines.replaceSubrange(start..<end, with: ["carbon:"] + carbon.split(separator: "\n").map { "  " + $0 })
        let path = "\(folder)/factor.yaml"
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let loaded = try Catalog.loadScenario(at: path, library: library, dataDirectory: dataDirectory)
        let run = try Catalog.prepare(loaded, overrides: RunOverrides(duration: 60))
        let ledger = try Ledger(path: "\(folder)/f.sqlite")
        let id = try ledger.beginRun(RunSpec(
            name: "factor", source: "daemon", scenarioFile: path, scenarioText: loaded.text, overrides: "{}", seed: 1,
            startEpochSeconds: run.scenario.startEpochSeconds, intervalSeconds: 60
        ), at: 0)
        let recorder = RunRecorder(ledger: ledger, run: id, startEpochSeconds: run.scenario.startEpochSeconds)
        let outcome = try run.run(onRecord: { recorder.add($0) }, onInterval: { recorder.add($0) }, hooks: RunHooks(onCheckpoint: { recorder.set($0) }))
        try recorder.commit(at: 1)
        if case .finished(let summary) = outcome {
            try ledger.setStatus(.finished, run: id, at: 2, summary: String(decoding: try JSONEncoder().encode(summary), as: UTF8.self))
        }
        let t0 = run.scenario.startEpochSeconds
        return try SustainabilityReport.build(ledger: ledger, path: "f.sqlite", from: t0, to: t0 + 3600, scope: .served)
    }

    @Test("A life-cycle series is labelled life cycle and kept out of Scope 2; a direct one is Scope 2; an unstated one is neither", arguments: [
        ("region: US\ngramsPerKWh: 400\nfactor: lifecycle\nsource: test life-cycle mix", "lifecycle"),
        ("region: US\ngramsPerKWh: 400\nfactor: direct\nsource: test combustion factor", "direct"),
        ("region: US\ngramsPerKWh: 400\nsource: test unlabelled", "unspecified"),
        ("region: DE\ngrid: DE\nfactor: lifecycle", "lifecycle"),
    ])
    func factorLabels(_ carbon: String, _ expected: String) throws {
        let report = try factorRun(carbon)
        #expect(report.runs.map(\.carbonFactor) == [expected])
        #expect(report.locationBasedKg > 0)
        #expect(report.scope2LocationBasedKg == (expected == "direct" ? report.locationBasedKg : 0))
        #expect(report.lifecycleGridKg == (expected == "lifecycle" ? report.locationBasedKg : 0))
        #expect(report.unstatedFactorGridKg == (expected == "unspecified" ? report.locationBasedKg : 0))
        let md = Render.markdown(report)
        switch expected {
        case "direct": #expect(md.contains("| Scope 2, location-based (direct combustion factors) | \(Render.number(report.scope2LocationBasedKg)) kgCO2e |"))
        case "lifecycle":
            #expect(md.contains("| Grid emissions at life-cycle factors (reported apart from Scope 2) |"))
            #expect(md.contains("no run in scope uses direct factors"))
        default: #expect(md.contains("factor type not stated by the source (not classed as Scope 2)"))
        }
        #expect(report.disclosures["factorType"]!.contains(expected == "direct" ? "Scope 2 location-based" : expected == "lifecycle" ? "reported apart from Scope 2" : "not classed as Scope 2"))
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

    @Test("Coordinates read as %.2f writes them, but at a tie of two hundredths within rounding", arguments: 0..<10)
    func coordinates(seed: UInt64) {
        var g = SplitMix64(seed: seed)
        var ties = 0
        for k in 0..<5000 {
            let v: Double = switch k % 4 {
            case 0: Double.random(in: -1000...1000, using: &g)
            case 1: Double(Int.random(in: -100_000...100_000, using: &g)) / 1000  // many exact and near ties
            case 2: Double.random(in: -1e-3...1e-3, using: &g)
            default: Double.random(in: 0...1e12, using: &g)
            }
            let expected = String(format: "%.2f", v), made = SVG.n(v)
            if made != expected {
                // Only where v × 100 is within a rounding error of a half: then either neighbour is right.
                let frac = abs(v * 100) - (abs(v * 100)).rounded(.down)
                #expect(abs(frac - 0.5) < 1e-6 * max(1, abs(v * 100)), "\(v): \(made), %.2f gives \(expected)")
                ties += 1
            }
        }
        #expect(ties < 100)
        #expect(SVG.n(-0.001) == String(format: "%.2f", -0.001) && SVG.n(.infinity) == String(format: "%.2f", Double.infinity))
    }

    @Test("Escaping is the four HTML replacements, and leaves other text as it is")
    func escaping() {
        #expect(SVG.esc(#"a<b & "c">d é"#) == "a&lt;b &amp; &quot;c&quot;&gt;d é")
        #expect(SVG.esc("plain text, 100 %") == "plain text, 100 %")
    }
}

/// Reports read a run's request figures from the rollups written with its batches; the full scan
/// of every request row is the reference. The two give the same figures: counts and token sums
/// exactly, energy and carbon sums to rounding (1e-12), distributions bucket for bucket.
@Suite("Rollups against the full scan", .serialized)
struct RollupTests {
    static func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-12 * max(abs(a), abs(b)) }

    @Test("RunMetrics from rollups equals RunMetrics from every row, for both runs of the pair")
    func runMetrics() throws {
        let (ledger, _) = ReportTests.fixture
        for run in [Int64(1), 2] {
            let fast = try RunMetrics.load(ledger, run: run)
            let scan = try RunMetrics.load(ledger, run: run, fullScan: true)
            #expect(fast.requests == scan.requests && fast.requests > 100)
            #expect(fast.inFlight == scan.inFlight)
            #expect(fast.promptTokens == scan.promptTokens && fast.outputTokens == scan.outputTokens)
            #expect(Self.close(fast.facilityJoules, scan.facilityJoules))
            #expect(Self.close(fast.operationalGrams, scan.operationalGrams))
            #expect(Self.close(fast.embodiedGrams, scan.embodiedGrams))
            #expect(fast.energy == scan.energy && fast.ttft == scan.ttft && fast.tpot == scan.tpot && fast.e2e == scan.e2e)
            for q in [0.5, 0.9, 0.99] { #expect(fast.ttft.quantile(q) == scan.ttft.quantile(q)) }
            #expect(fast.sample == scan.sample)
            #expect(fast.power.map(\.kilowatts) == scan.power.map(\.kilowatts))
        }
    }

    @Test("The comparison from rollups equals the comparison from every row")
    func comparison() throws {
        let (ledger, _) = ReportTests.fixture
        func build(_ fullScan: Bool) throws -> ComparisonReport {
            Comparison.build(baseline: try RunMetrics.load(ledger, run: 1, fullScan: fullScan),
                             candidates: [try RunMetrics.load(ledger, run: 2, fullScan: fullScan)], ledger: "r.sqlite")
        }
        let fast = try build(false), scan = try build(true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Figures printed to fewer digits than the sums' rounding are identical; compare the JSON with the time stamps out.
        func figures(_ r: ComparisonReport) throws -> [String: Any] {
            var o = try JSONSerialization.jsonObject(with: encoder.encode(r)) as! [String: Any]
            o["generatedAt"] = nil
            return o
        }
        let a = try figures(fast), b = try figures(scan)
        #expect(Self.differences(a, b, path: "").isEmpty, "\(Self.differences(a, b, path: "").prefix(5))")
    }

    @Test("The sustainability report from rollups equals the one from every row; a period not on whole minutes reads the rows")
    func sustainability() throws {
        let (ledger, _) = ReportTests.fixture
        for (from, to) in [(SustainabilityTests.from, SustainabilityTests.to), (SustainabilityTests.from, SustainabilityTests.from + 60), (SustainabilityTests.from - 30, SustainabilityTests.from + 30)] {
            for runs in [[], [Int64(1)], [2]] {
                let fast = try SustainabilityReport.build(ledger: ledger, path: "r.sqlite", from: from, to: to, runs: runs, now: Date(timeIntervalSince1970: 0))
                let scan = try SustainabilityReport.build(ledger: ledger, path: "r.sqlite", from: from, to: to, runs: runs, now: Date(timeIntervalSince1970: 0), fullScan: true)
                #expect(fast.sci.requests == scan.sci.requests && fast.sci.requests > 0)
                #expect(fast.sci.tokens == scan.sci.tokens)
                #expect(Self.close(fast.sci.operationalGrams, scan.sci.operationalGrams) && Self.close(fast.sci.embodiedGrams, scan.sci.embodiedGrams))
                #expect(fast.trend.map(\.requests) == scan.trend.map(\.requests))
                #expect(zip(fast.trend, scan.trend).allSatisfy { Self.close($0.sciGramsPerRequest ?? 0, $1.sciGramsPerRequest ?? 0) })
            }
        }
        #expect(try ledger.rollups(RowScope(runs: [1], from: SustainabilityTests.from + 30, to: SustainabilityTests.to)) == nil)
    }

    @Test("Reconcile checks the rollups against the rows, and a changed rollup is caught by the audit")
    func audit() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("joule-rollup-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let ledger = try Ledger(path: "\(folder)/r.sqlite")
        let run = try record("deepseek-v3-dense-hour", duration: 4, into: ledger)
        let r = try ledger.reconcile(run: run)
        #expect(r.balances && r.rollupRequests == r.requestRows && r.rollupsMatch)
        #expect(try ledger.verify().ok && (try ledger.verify().rollupRows) > 0)
        try DatabaseQueue(path: ledger.path).write { db in try db.execute(sql: "UPDATE requestRollup SET requests = requests + 1 WHERE id = 1") }
        let tampered = try ledger.reconcile(run: run)
        #expect(!tampered.rollupsMatch && !tampered.balances)
        let problems = try ledger.verify().problems
        #expect(problems.first?.kind == .changedRow && problems.first?.table == "requestRollup", "\(problems)")
    }

    /// Paths at which two JSON values differ beyond rounding (numbers within 1e-12 relative are equal).
    static func differences(_ a: Any, _ b: Any, path: String) -> [String] {
        switch (a, b) {
        case let (x as [String: Any], y as [String: Any]):
            return Set(x.keys).union(y.keys).sorted().flatMap { k in
                x[k].flatMap { xv in y[k].map { differences(xv, $0, path: path + "." + k) } } ?? [path + "." + k + " (missing)"]
            }
        case let (x as [Any], y as [Any]):
            guard x.count == y.count else { return [path + " (lengths)"] }
            return zip(x, y).enumerated().flatMap { differences($1.0, $1.1, path: path + "[\($0)]") }
        case let (x as NSNumber, y as NSNumber):
            return close(x.doubleValue, y.doubleValue) ? [] : [path + ": \(x) vs \(y)"]
        case let (x as String, y as String):
            return x == y ? [] : [path + ": \(x) vs \(y)"]
        default:
            return "\(a)" == "\(b)" ? [] : [path]
        }
    }
}

@Suite struct SelectionTests {
    /// Selection gives exactly the sorted array's element at every rank, on values with ties,
    /// sorted and reversed runs, and random ones.
    @Test(arguments: [1, 2, 3, 10, 101, 1000])
    func selectionIsTheSortedElement(count: Int) {
        var rng = SplitMix64(seed: UInt64(count))
        let inputs: [[Double]] = [
            (0..<count).map { _ in Double(rng.next() % 1000) / 7 },
            (0..<count).map { Double($0) },
            (0..<count).map { Double(count - $0) },
            (0..<count).map { Double($0 % 3) },
            Array(repeating: 4.5, count: count),
        ]
        for values in inputs {
            let sorted = values.sorted()
            for rank in Set([0, count / 4, count / 2, count - 1, (count * 39) / 40]) {
                var copy = values
                #expect(Comparison.select(&copy, rank: rank) == sorted[rank], "rank \(rank) of \(count)")
            }
            for q in [0.0, 0.025, 0.5, 0.975, 1.0] {
                #expect(Comparison.quantile(values, q) == sorted[min(count - 1, max(0, Int((q * Double(count)).rounded(.up)) - 1))])
            }
        }
    }
}

/// Retention: `prune` deletes the request rows of batches that ended by a date and keeps their
/// rollups and digests; everything that reads the rollups answers as before.
@Suite("Pruning request rows", .serialized)
struct PruneTests {
    @Test("After a prune the reports, the summaries, reconcile and verify answer as before; the pruning is audited")
    func pruneKeepsTheFigures() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("joule-prune-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let ledger = try Ledger(path: "\(folder)/p.sqlite")
        let run = try record("mixtral-single-node", duration: 300, into: ledger, batched: true)
        let start = try ledger.run(run).startEpochSeconds
        let before = try RunMetrics.load(ledger, run: run)
        let sustainBefore = try SustainabilityReport.build(ledger: ledger, path: "p", from: start, to: start + 300, now: Date(timeIntervalSince1970: 0))
        let rowsBefore = try ledger.sql { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM request")! }

        let result = try ledger.prune(before: start + 150, at: 10)
        #expect(result.pruning == 1 && result.batches > 0 && result.requestRows > 0, "\(result)")
        let rowsAfter = try ledger.sql { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM request")! }
        #expect(rowsAfter == rowsBefore - result.requestRows)

        let after = try RunMetrics.load(ledger, run: run)
        #expect(after.requests == before.requests && after.inFlight == before.inFlight && after.facilityJoules == before.facilityJoules)
        #expect(after.energy == before.energy && after.e2e == before.e2e && after.ttft == before.ttft)
        let sustainAfter = try SustainabilityReport.build(ledger: ledger, path: "p", from: start, to: start + 300, now: Date(timeIntervalSince1970: 0))
        #expect(sustainAfter.sci.requests == sustainBefore.sci.requests && sustainAfter.sci.operationalGrams == sustainBefore.sci.operationalGrams)
        #expect(try ledger.progress(run: run).storedRequests == rowsBefore)

        let r = try ledger.reconcile(run: run)
        #expect(r.balances && r.prunedRequestRows == result.requestRows && r.requestRows == rowsAfter, "\(r)")
        let v = try ledger.verify()
        #expect(v.ok && v.prunedBatches == result.batches, "\(v.problems)")

        // Again with the same date: nothing left to prune. A pruned request is a clear error.
        #expect(try ledger.prune(before: start + 150, at: 11).pruning == nil)
        let gone = try ledger.sql { db in try Int.fetchOne(db, sql: "SELECT min(requestId) FROM request")! } - 1
        #expect(throws: LedgerError.self) { try ledger.breakdown(request: gone, run: run) }

        // The pruning is under the entry chain: changed or deleted, it is caught, and the rows it removed show.
        try DatabaseQueue(path: ledger.path).write { db in try db.execute(sql: "UPDATE requestPruning SET beforeEpochSeconds = beforeEpochSeconds + 60") }
        #expect(try ledger.verify().problems.contains { $0.kind == .changedRow && $0.table == "requestPruning" })
        try DatabaseQueue(path: ledger.path).write { db in try db.execute(sql: "DELETE FROM requestPruning") }
        let problems = try ledger.verify(limit: 1_000_000, anchor: nil).problems
        #expect(problems.contains { $0.kind == .removedRow && $0.table == "requestPruning" })
        #expect(problems.contains { $0.kind == .removedRow && $0.table == "request" })
    }

    @Test("A run's last batch and batches recorded before rollups keep their rows")
    func prunedNeverTakesTheResumePoint() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("joule-prune-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let ledger = try Ledger(path: "\(folder)/p.sqlite")
        let run = try record("mixtral-single-node", duration: 120, into: ledger, batched: true)
        let result = try ledger.prune(before: 1e12, at: 10)
        #expect(result.keptAsResumePoints == 1 && result.batches > 0)
        #expect(try ledger.progress(run: run).lastRequestID != nil)
        #expect(try ledger.reconcile(run: run).balances)
        #expect(throws: LedgerError.self) { try ledger.prune(before: .nan, at: 10) }
    }
}

/// Operational plus embodied grams of the request rows matching `condition` (SQL over `request`
/// and its run's coding `c`), restored from their stored residuals here, apart from the
/// ledger's reader: the rows' count and sum.
func storedCarbonGrams(_ ledger: Ledger, where condition: String) throws -> (count: Int, sum: Double) {
    try ledger.sql { db in
        var count = 0, sum = 0.0
        let rows = try Row.fetchCursor(db, sql: """
            SELECT facilityJoules, gpuSeconds, c.intensityGramsPerKWh AS reference, intensityResidual, operationalCarbonResidual,
                   c.embodiedGramsPerGPUSecond AS rate, embodiedCarbonResidual
            FROM request JOIN requestCoding c USING (runId) WHERE \(condition)
            """)
        while let row = try rows.next() {
            let intensity = restore(row["reference"], row["intensityResidual"])
            let operational = restore((row["facilityJoules"] as Double) / 3.6e6 * intensity, row["operationalCarbonResidual"])
            let embodied = restore((row["gpuSeconds"] as Double) * (row["rate"] as Double), row["embodiedCarbonResidual"])
            count += 1
            sum += operational + embodied
        }
        return (count, sum)
    }
}
