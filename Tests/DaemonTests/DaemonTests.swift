import Catalog
@testable import Daemon
import Foundation
import Ledger
import Logging
import MoE
import Accounting
import Serving
import Testing

let dataDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Data").path
let library: SpecLibrary = {
    do { return try Catalog.load(from: dataDirectory) } catch { fatalError("Data/ must load: \(error)") }
}()

final class TemporaryFolder {
    let path: String
    init() {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("joule-daemon-tests-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func write(_ name: String, _ text: String) -> String {
        let file = "\(path)/\(name)"
        try! text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }
}

@Suite("Daemon configuration")
struct DaemonConfigurationTests {
    @Test("Pacing reads realtime, max and accelerations", arguments: [
        ("realtime", Pacing.realtime), ("max", .max), ("60x", .accelerated(60)), ("accelerated 2.5", .accelerated(2.5)), ("1x", .realtime),
    ])
    func pacing(_ text: String, _ expected: Pacing) {
        #expect(Pacing(text) == expected)
    }

    @Test("Pacing refuses what is not a speed", arguments: ["fast", "0x", "-3x", "", "x"])
    func badPacing(_ text: String) {
        #expect(Pacing(text) == nil)
    }

    @Test("A full file reads back every key")
    func full() throws {
        let folder = TemporaryFolder()
        let file = folder.write("d.yaml", """
            database: x.sqlite
            commitSeconds: 0.5
            maxDatabaseMB: 10
            retainRequestDays: 30
            log: {level: debug, format: json}
            carbon: {refreshSeconds: 60, source: ledger}
            jobs:
              - scenario: deepseek-v3-day
                pacing: {accelerated: 30}
                start: 2025-02-27T12:00:00+08:00
                duration: 600
                seed: 4
                intervalSeconds: 5
                resume: false
            """)
        let c = try DaemonConfiguration.load(at: file)
        #expect(c.database == "x.sqlite" && c.commitSeconds == 0.5 && c.maximumDatabaseMB == 10 && c.retainRequestDays == 30)
        #expect(c.logLevel == "debug" && c.logFormat == "json" && c.carbonRefreshSeconds == 60 && c.carbonSource == "ledger")
        let job = try #require(c.jobs.first)
        #expect(job.pacing == .accelerated(30) && job.duration == 600 && job.seed == 4 && job.intervalSeconds == 5 && !job.resume)
        #expect(job.effectiveStart == .at(1_740_628_800))
    }

    @Test("A bad value names the file, the key, the line and what was expected", arguments: [
        ("jobs:\n  - scenario: x\n    pacing: fast\n", "jobs[0].pacing", 3, "expected realtime, max"),
        ("commitSeconds: 5\n", "commitSeconds", 1, "at most 1"),
        ("databse: x.sqlite\n", "databse", 1, "unknown field"),
        ("log:\n  level: loud\n", "log.level", 2, "expected one of trace"),
        ("jobs:\n  - scenario: x\n    start: yesterday\n", "jobs[0].start", 3, "ISO 8601"),
        ("jobs:\n  - scenario: a\n  - scenario: a\n", "jobs", 2, "distinct name"),
        // A size limit that trapped converting to SQLite's page count.
        ("maxDatabaseMB: 1e30\n", "maxDatabaseMB", 1, "from 1 to 1,000,000,000 megabytes"),
        ("maxDatabaseMB: 0.5\n", "maxDatabaseMB", 1, "from 1 to 1,000,000,000 megabytes"),
        ("retainRequestDays: 0\n", "retainRequestDays", 1, "0.0417 (one hour) to 36525 days"),
        ("retainRequestDays: 1e300\n", "retainRequestDays", 1, "0.0417 (one hour) to 36525 days"),
        // Values that would trap a sleep's Duration, or stall a job for ever.
        ("carbon: {refreshSeconds: 1e300}\n", "carbon.refreshSeconds", 1, "1 to 604800 seconds"),
        ("progressSeconds: 1e-300\n", "progressSeconds", 1, "0.001 to 604800 seconds"),
        ("jobs:\n  - scenario: x\n    pacing: 1e-300x\n", "jobs[0].pacing", 3, "from 0.001x to 1000000000x"),
        ("jobs:\n  - scenario: x\n    duration: 1e300\n", "jobs[0].duration", 3, "(366 days)"),
        ("jobs:\n  - scenario: x\n    intervalSeconds: 1e-300\n", "jobs[0].intervalSeconds", 3, "0.001 to 86400 seconds"),
    ])
    func errors(_ yaml: String, _ field: String, _ line: Int, _ expected: String) {
        let folder = TemporaryFolder()
        let file = folder.write("d.yaml", yaml)
        #expect {
            try DaemonConfiguration.load(at: file)
        } throws: { error in
            guard case .invalidField(let f, let k, let l, let message) = error as? CatalogError else { return false }
            return f == file && k == field && l == line && message.contains(expected)
        }
    }
}

@Suite("Daemon runs")
struct DaemonRunTests {
    func configuration(_ db: String, pacing: Pacing) -> DaemonConfiguration {
        var c = DaemonConfiguration()
        c.database = db
        c.commitSeconds = 0.1
        var a = DaemonJob(scenario: "mixtral-single-node")
        a.pacing = pacing
        var b = DaemonJob(scenario: "mixtral-single-node")
        b.name = "b"
        b.seed = 5
        b.intervalSeconds = 2
        b.pacing = pacing
        c.jobs = [a, b]
        return c
    }

    /// Every stored request and interval, by job name, in a stable order.
    func contents(_ ledger: Ledger) throws -> [String] {
        try ledger.sql { db in
            try String.fetchAll(db, sql: """
                SELECT r.name || ' ' || q.requestId || ' ' || q.facilityJoules || ' ' || q.intensityResidual || ' ' || q.operationalCarbonResidual
                    || ' ' || coalesce(q.finishSeconds, '-')
                FROM request q JOIN run r ON r.id = q.runId ORDER BY r.name, q.requestId
                """) + String.fetchAll(db, sql: """
                SELECT r.name || ' ' || i.unit || ' ' || i.startSeconds || ' ' || i.facilityJoules FROM clusterInterval i JOIN run r ON r.id = i.runId
                ORDER BY r.name, i.startSeconds, i.unit
                """)
        }
    }

    @Test("Retention prunes request rows older than retainRequestDays back from the newest batch, and the ledger still verifies and balances")
    func retention() async throws {
        let folder = TemporaryFolder()
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        var c = DaemonConfiguration()
        c.database = "\(folder.path)/r.sqlite"
        c.retainRequestDays = 1.0 / 24
        c.commitSeconds = 0.005
        var job = DaemonJob(scenario: "mixtral-single-node")
        job.pacing = .max
        job.duration = 7200
        c.jobs = [job]
        let daemon = try Daemon(configuration: c, library: library, dataDirectory: dataDirectory, logger: logger)
        try await daemon.run(signals: false)
        let ledger = daemon.ledger as! Ledger
        let run = try #require(try ledger.runs().first?.id)
        let stored = try ledger.sql { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM request")! }
        // The job pruned at its first commit (nothing yet); a later pass prunes the first hour.
        daemon.drivers[0].retain(days: 1.0 / 24, now: 1)
        let after = try ledger.sql { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM request")! }
        #expect(after < stored && after > 0)
        // No batch that ended an hour or more before the newest keeps a row.
        let cutoff = try #require(try ledger.newestBatchEnd()) - 3600
        let kept = try ledger.sql { db in
            try Int.fetchOne(db, sql: """
                SELECT count(*) FROM auditBatch b JOIN run r ON r.id = b.runId
                WHERE b.requestCount > 0 AND r.startEpochSeconds + b.simulatedSeconds <= ?
                  AND EXISTS (SELECT 1 FROM request WHERE id BETWEEN b.firstRequestRow AND b.firstRequestRow + b.requestCount - 1)
                """, arguments: [cutoff])!
        }
        #expect(kept == 0)
        #expect(try ledger.verify().ok)
        #expect(try ledger.reconcile(run: run).balances)
        #expect(try ledger.progress(run: run).storedRequests == stored)
    }

    @Test("Stopped several times and resumed, the daemon stores what an uninterrupted run stores")
    func stopAndResume() async throws {
        let folder = TemporaryFolder()
        let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        let reference = try Daemon(configuration: configuration("\(folder.path)/ref.sqlite", pacing: .max), library: library, dataDirectory: dataDirectory, logger: logger)
        try await reference.run(signals: false)

        let path = "\(folder.path)/stopped.sqlite"
        var stops = 0
        while true {
            let daemon = try Daemon(configuration: configuration(path, pacing: .accelerated(150)), library: library, dataDirectory: dataDirectory, logger: logger)
            // The stop comes from a timer on a dispatch thread, not from this task: with the other
            // suites busy, a task's sleep can wake seconds late, after the job (4 s at 150×) ended.
            // Each start replays what is stored first, so later starts get longer to make progress.
            let drivers = daemon.drivers
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(300 + 200 * stops)) {
                drivers.forEach { $0.requestStop() }
            }
            try await daemon.run(signals: false)
            let runs = try daemon.ledger.runs()
            #expect(runs.count == 2)
            if runs.allSatisfy({ $0.status == .finished }) { break }
            #expect(runs.contains { $0.status == .stopped })
            stops += 1
            try #require(stops < 25, "the daemon makes no progress between stops")
        }
        #expect(stops >= 2)
        let stopped = try Ledger(path: path)
        let expected = try contents(reference.ledger as! Ledger)
        #expect(try contents(stopped) == expected)
        #expect(expected.count > 1000)
        #expect(try stopped.verify().ok)
        for run in try stopped.runs() {
            #expect(try stopped.reconcile(run: run.id!).balances)
        }
    }
}
