import Catalog
import Foundation
import GRDB
@testable import Ledger
import MoE
import Accounting
import Serving

/// The repository's Data directory, found from this file's path.
let dataDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Data").path

let library: SpecLibrary = {
    do { return try Catalog.load(from: dataDirectory) } catch { fatalError("Data/ must load: \(error)") }
}()

/// A shipped scenario, prepared with `overrides`.
func prepared(_ name: String, duration: Double? = nil, seed: UInt64? = nil) throws -> (LoadedScenario, PreparedRun) {
    let path = try Catalog.scenarioPath(name, dataDirectory: dataDirectory)
    let loaded = try Catalog.loadScenario(at: path, library: library, dataDirectory: dataDirectory)
    return (loaded, try Catalog.prepare(loaded, overrides: RunOverrides(duration: duration, seed: seed)))
}

/// A fresh folder for one test's ledger files, removed when the value is released.
final class TemporaryFolder {
    let path: String
    init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("joule-ledger-tests-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { "\(path)/\(name)" }
}

func spec(_ loaded: LoadedScenario, _ run: PreparedRun) -> RunSpec {
    RunSpec(
        name: run.scenario.name, source: "test", scenarioFile: loaded.file, scenarioText: loaded.text, overrides: "{}",
        seed: run.scenario.seed, startEpochSeconds: run.scenario.startEpochSeconds, intervalSeconds: run.scenario.intervalSeconds
    )
}

/// Runs `run` into `ledger`, committing after a checkpoint whenever `commitEvery` requests are
/// waiting; stops before the event at `stopAt` when given. Returns the run id and what the
/// simulator emitted.
func record(
    _ loaded: LoadedScenario, _ run: PreparedRun, into ledger: any LedgerWriter, commitEvery: Int, stopAt: Double? = nil
) throws -> (run: Int64, records: [RequestRecord], intervals: [ClusterInterval], outcome: RunOutcome) {
    let id = try ledger.beginRun(spec(loaded, run), at: 0)
    let recorder = RunRecorder(ledger: ledger, run: id, startEpochSeconds: run.scenario.startEpochSeconds)
    var records: [RequestRecord] = []
    var intervals: [ClusterInterval] = []
    var failure: Error?
    let outcome = try run.run(
        onRecord: { records.append($0); recorder.add($0) },
        onInterval: { intervals.append($0); recorder.add($0) },
        hooks: RunHooks(
            pace: { t in (stopAt.map { t >= $0 } ?? false) ? .stop : .proceed },
            onCheckpoint: { cp in
                recorder.set(cp)
                if recorder.pendingRequests >= commitEvery {
                    do { try recorder.commit(at: 1) } catch { failure = error }
                }
            }
        )
    )
    if let failure { throw failure }
    try recorder.commit(at: 2)
    return (id, records, intervals, outcome)
}

/// Changes the file behind the ledger's back, as someone with the sqlite3 shell would.
func tamper(_ path: String, _ sql: String) throws {
    let queue = try DatabaseQueue(path: path)
    // Outside a transaction, as the shell runs it: PRAGMA foreign_keys and VACUUM take effect.
    try queue.writeWithoutTransaction { try $0.execute(sql: sql) }
}
