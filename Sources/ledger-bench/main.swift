// Ingest benchmark: per-request rows per second into a file database through Joule's ledger
// (GRDB, prepared statements, one transaction per batch, audit digests and chain entry), side by
// side with a plain sqlite3 C-API loop inserting the same rows into the same schema, with the same
// batch size and pragmas, in the same process. Run through Scripts/bench (release build).
//
// Usage: ledger-bench [--data DIR] [--seconds S] [--batch N] [--runs R]
//        ledger-bench --sketch   (QuantileSketch.add: ns per value, median of 5 runs of 10M values)
import Catalog
import Foundation
import GRDBSQLite
import Ledger
import MoE
import Accounting
import Serving
import Units

func benchmark() throws {
    let arguments = Array(CommandLine.arguments.dropFirst())
    func option(_ name: String, _ fallback: String) -> String {
        guard let i = arguments.firstIndex(of: name), i + 1 < arguments.count else { return fallback }
        return arguments[i + 1]
    }
    if arguments.contains("--sketch") { return sketchBenchmark() }
    let dataDirectory = option("--data", "Data")
    let seconds = Double(option("--seconds", "60"))!
    let batchSize = Int(option("--batch", "10000"))!
    let runs = Int(option("--runs", "5"))!

    // The rows: a minute of DeepSeek's average load, simulated once.
    let library = try Catalog.load(from: dataDirectory)
    let path = try Catalog.scenarioPath("deepseek-v3-average-hour", dataDirectory: dataDirectory)
    let loaded = try Catalog.loadScenario(at: path, library: library, dataDirectory: dataDirectory)
    let prepared = try Catalog.prepare(loaded, overrides: RunOverrides(duration: seconds))
    var records: [RequestRecord] = []
    var intervals: [ClusterInterval] = []
    _ = try prepared.run(onRecord: { records.append($0) }, onInterval: { intervals.append($0) })
    let start = prepared.scenario.startEpochSeconds

    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("joule-ledger-bench-\(getpid())").path
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }

    func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    func spec() -> RunSpec {
        RunSpec(
            name: "bench", source: "bench", scenarioFile: path, scenarioText: loaded.text, overrides: "{}", seed: 1,
            startEpochSeconds: start, intervalSeconds: prepared.scenario.intervalSeconds
        )
    }

    /// Joule's ledger: `append` per batch of requests.
    func ledgerRun(_ file: String) throws -> Double {
        let ledger = try Ledger(path: file)
        let run = try ledger.beginRun(spec(), at: 0)
        let t0 = now()
        var i = 0
        while i < records.count {
            let slice = Array(records[i..<min(i + batchSize, records.count)])
            try ledger.append(LedgerBatch(records: slice), run: run, startEpochSeconds: start, at: 0)
            i += batchSize
        }
        return now() - t0
    }

    /// The same rows through the sqlite3 C API: prepare once, bind, step, reset; BEGIN/COMMIT per batch.
    func rawRun(_ file: String) throws -> Double {
        // The schema comes from the ledger's migrations, so both sides insert into identical tables.
        let ledger = try Ledger(path: file)
        _ = try ledger.beginRun(spec(), at: 0)
        var db: OpaquePointer?
        guard sqlite3_open_v2(file, &db, SQLITE_OPEN_READWRITE, nil) == SQLITE_OK else { fatalError("open \(file)") }
        defer { sqlite3_close_v2(db) }
        sqlite3_exec(db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL", nil, nil, nil)
        // The rows as the ledger stores them (schema v9's compact row), computed before the clock starts.
        let coding = RequestCoding.learned(from: records, startEpochSeconds: start)
        let stored = records.map { CompactRequest(RequestRow(rowID: 0, runID: 1, epochSeconds: start + $0.arrival, record: $0), coding: coding) }
        let columns = CompactRequest.columns
        let sql = "INSERT INTO request (\(columns.joined(separator: ", "))) VALUES (\(Array(repeating: "?", count: columns.count).joined(separator: ", ")))"
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &statement, nil) == SQLITE_OK else { fatalError(String(cString: sqlite3_errmsg(db))) }
        defer { sqlite3_finalize(statement) }
        func real(_ i: Int32, _ v: Double?) {
            if let v { sqlite3_bind_double(statement, i, v) } else { sqlite3_bind_null(statement, i) }
        }
        func int(_ i: Int32, _ v: Int?) {
            if let v { sqlite3_bind_int64(statement, i, Int64(v)) } else { sqlite3_bind_null(statement, i) }
        }
        let t0 = now()
        var i = 0
        while i < records.count {
            sqlite3_exec(db, "BEGIN", nil, nil, nil)
            for r in stored[i..<min(i + batchSize, records.count)] {
                int(1, Int(r.runID)); int(2, r.requestId); int(3, r.inFlight ? 1 : 0)
                real(4, r.arrival); real(5, r.prefillStart); real(6, r.firstToken); real(7, r.finish)
                int(8, r.prefillUnit); int(9, r.decodeUnit); int(10, r.promptTokens); int(11, r.cachedTokens); int(12, r.outputTokens)
                real(13, r.gpuActiveJoules); real(14, r.gpuIdleJoules); real(15, r.hostJoules); real(16, r.facilityJoules); real(17, r.gpuSeconds)
                int(18, Int(r.arrivalEpochResidual)); int(19, Int(r.facilityOverheadResidual)); int(20, Int(r.intensityResidual))
                int(21, Int(r.operationalCarbonResidual)); int(22, Int(r.embodiedCarbonResidual)); int(23, Int(r.meanPowerResidual))
                real(24, r.trainingTokens); int(25, r.trainingFacilityResidual); int(26, r.trainingCarbonResidual); int(27, r.trainingGPUSecondsResidual)
                guard sqlite3_step(statement) == SQLITE_DONE else { fatalError(String(cString: sqlite3_errmsg(db))) }
                sqlite3_reset(statement)
            }
            guard sqlite3_exec(db, "COMMIT", nil, nil, nil) == SQLITE_OK else { fatalError(String(cString: sqlite3_errmsg(db))) }
            i += batchSize
        }
        return now() - t0
    }

    func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    var ledgerTimes: [Double] = []
    var rawTimes: [Double] = []
    for k in 0..<runs {
        // Alternate which goes first, so neither always meets a warm page cache.
        let a = "\(folder)/ledger-\(k).sqlite", b = "\(folder)/raw-\(k).sqlite"
        if k % 2 == 0 {
            ledgerTimes.append(try ledgerRun(a))
            rawTimes.append(try rawRun(b))
        } else {
            rawTimes.append(try rawRun(b))
            ledgerTimes.append(try ledgerRun(a))
        }
    }
    let n = Double(records.count)
    let ledgerRate = n / median(ledgerTimes), rawRate = n / median(rawTimes)
    print(String(format: "ingest: %d request rows, batches of %d, median of %d runs", records.count, batchSize, runs))
    print(String(format: "  Joule ledger (GRDB + audit chain)  %9.0f rows/s  (%.3f s)", ledgerRate, median(ledgerTimes)))
    print(String(format: "  sqlite3 C API, same rows           %9.0f rows/s  (%.3f s)", rawRate, median(rawTimes)))
    print(String(format: "  ratio                              %9.1f %%  (target ≥ 80 %%)", 100 * ledgerRate / rawRate))
}

/// QuantileSketch.add on log-normal latencies (what the simulator and reports feed it).
func sketchBenchmark() {
    var rng = SplitMix64(seed: 7)
    let values = (0..<10_000_000).map { _ in exp(rng.normal() * 1.5) * 0.05 }
    var times: [Double] = []
    var check = 0.0
    for _ in 0..<5 {
        var sketch = QuantileSketch()
        let t0 = DispatchTime.now().uptimeNanoseconds
        for v in values { sketch.add(v) }
        times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / Double(values.count))
        check += sketch.quantile(0.99) ?? 0
    }
    times.sort()
    print(String(format: "QuantileSketch.add: %.1f ns per value (median of 5 runs of %d values; p99 %.4f)", times[2], values.count, check / 5))
}

try benchmark()
