import Accounting
import Foundation
import GRDB
import Ledger
import Testing

@testable import Reports

@Suite("Exports: requests as CSV and JSON Lines, runs as CodeCarbon's emissions.csv", .serialized)
struct ExportTests {
    static let fixture: (Ledger, Int64) = {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("joule-export-tests-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let ledger = try! Ledger(path: "\(folder)/e.sqlite")
        // 65 minutes over two wall-clock hours, accounting interval 60 s.
        let run = try! record("mixtral-single-node", duration: 3900, into: ledger)
        return (ledger, run)
    }()

    func export(_ format: RequestExport.Format, from: Double? = nil, to: Double? = nil) throws -> (text: String, count: Int, progress: [Double]) {
        let (ledger, run) = Self.fixture
        var text = "", progress: [Double] = []
        let count = try RequestExport(format: format).stream(ledger, run: run, from: from, to: to, write: { text += $0 }, progress: { progress.append($0) })
        return (text, count, progress)
    }

    @Test("Every stored request once, in both formats; the figures read back equal the ledger's; progress only grows to 1")
    func requests() throws {
        let (ledger, run) = Self.fixture
        let (rows, joules) = try ledger.sql { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM request WHERE runId = ?", arguments: [run])!,
             try Double.fetchOne(db, sql: "SELECT sum(facilityJoules) FROM request WHERE runId = ?", arguments: [run])!)
        }
        let csv = try export(.csv)
        let lines = csv.text.split(separator: "\n")
        #expect(csv.count == rows && lines.count == rows + 1)
        let header = lines[0].split(separator: ",").map(String.init)
        #expect(header == RequestExport.leadingColumns + RequestExport.recordColumns)
        let column = header.firstIndex(of: "facilityJoules")!, id = header.firstIndex(of: "id")!
        var sum = 0.0, ids = Set<Int>()
        for line in lines.dropFirst() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            #expect(fields.count == header.count)
            sum += Double(fields[column])!
            ids.insert(Int(fields[id])!)
        }
        #expect(ids.count == rows && abs(sum - joules) <= 1e-9 * joules)
        let jsonl = try export(.jsonl)
        let objects = try jsonl.text.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(objects.count == rows && objects.allSatisfy { $0["run"] as? Int == Int(run) && $0["arrivalTime"] is String && $0["facilityJoules"] is Double })
        #expect(abs(objects.reduce(0.0) { $0 + ($1["facilityJoules"] as! Double) } - joules) <= 1e-9 * joules)
        #expect(csv.progress.last == 1 && zip(csv.progress, csv.progress.dropFirst()).allSatisfy { $0 <= $1 })
    }

    @Test("A time range keeps exactly the requests arriving in it; ranges that tile the run tile its requests")
    func ranges() throws {
        let (ledger, run) = Self.fixture
        let start = try ledger.run(run).startEpochSeconds
        let cuts = [start, start + 600, start + 1800, start + 3900]
        var total = 0
        for (a, b) in zip(cuts, cuts.dropFirst()) {
            let part = try export(.jsonl, from: a, to: b)
            let arrivals = try part.text.split(separator: "\n").map { (try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["arrivalEpochSeconds"] as! Double }
            #expect(arrivals.allSatisfy { $0 >= a && $0 < b })
            total += part.count
        }
        #expect(total == (try export(.csv)).count)
    }

    @Test("CodeCarbon rows: its columns in its order; per hour and per interval they add up to the run's row and to the ledger", arguments: CodeCarbonExport.Period.allCases)
    func codecarbon(_ period: CodeCarbonExport.Period) throws {
        let (ledger, run) = Self.fixture
        let export = try #require(try CodeCarbonExport.build(ledger, run: run, per: period))
        let lines = export.csv.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init) }
        #expect(lines[0] == CodeCarbonExport.columns && lines.dropFirst().allSatisfy { $0.count == CodeCarbonExport.columns.count })
        #expect(lines.count - 1 == (period == .run ? 1 : period == .hour ? 2 : 65))
        func total(_ name: String) -> Double {
            let k = CodeCarbonExport.columns.firstIndex(of: name)!
            return lines.dropFirst().reduce(0.0) { $0 + Double($1[k])! }
        }
        let totals = try ledger.intervalTotals(run: run)
        let kwh = totals.facilityJoules / 3.6e6
        #expect(abs(total("energy_consumed") - kwh) <= 1e-9 * kwh)
        // PUE applied to each component, as CodeCarbon does: the components add up to the total.
        #expect(abs(total("cpu_energy") + total("gpu_energy") + total("ram_energy") - kwh) <= 1e-9 * kwh)
        #expect(abs(total("emissions") - totals.operationalCarbonGrams / 1000) <= 1e-9 * totals.operationalCarbonGrams / 1000)
        #expect(abs(total("duration") - 3900) <= 1e-6)
        let summary = try #require(try ledger.run(run).decodedSummary)
        let pueColumn = CodeCarbonExport.columns.firstIndex(of: "pue")!
        #expect(lines.dropFirst().allSatisfy { abs(Double($0[pueColumn])! - summary.energyKWh / summary.itEnergyKWh) < 1e-9 })
        #expect(lines.dropFirst().allSatisfy { $0[CodeCarbonExport.columns.firstIndex(of: "region")!] == "US" && $0[2] == lines[1][2] })
    }

    @Test("A run with no intervals has nothing to export")
    func empty() throws {
        let (ledger, _) = Self.fixture
        let id = try ledger.beginRun(RunSpec(
            name: "empty", source: "test", scenarioFile: "x.yaml", scenarioText: "name: x", overrides: "{}", seed: 1, startEpochSeconds: 0, intervalSeconds: 1
        ), at: 5)
        #expect(try CodeCarbonExport.build(ledger, run: id, per: .run) == nil)
        #expect(try RequestExport(format: .csv).stream(ledger, run: id, write: { _ in }) == 0)
    }
}
