import Accounting
import Foundation
import GRDB
@testable import Ledger
import Testing

/// Every table the ledger holds, every kind of edit (issue "Hardening"): each is caught by
/// `audit verify` as docs/ledger.md says, or, where the docs say a chain alone cannot see it,
/// caught against an anchor or with the HMAC key and missed without.
@Suite("Ledger: tampering with every table")
struct TamperTests {
    static let key = try! AuditKey("a test key of more than sixteen bytes")

    /// Two finished runs (one with a summary), a carbon series of 24 samples and a scheduled job.
    static func ledger(
        _ folder: TemporaryFolder, key: AuditKey? = nil, name: String = "l.sqlite", summary: String = #"{"requests": 480}"#
    ) throws -> (Ledger, String) {
        let path = folder.file(name)
        let ledger = try Ledger(path: path, auditKey: .some(key))
        let first = try record(try prepared("mixtral-single-node", duration: 60).0, try prepared("mixtral-single-node", duration: 60).1, into: ledger, commitEvery: 100)
        try ledger.setStatus(.finished, run: first.run, at: 3, message: nil, summary: summary)
        let second = try record(try prepared("mixtral-single-node", duration: 30, seed: 4).0, try prepared("mixtral-single-node", duration: 30, seed: 4).1, into: ledger, commitEvery: 100)
        try ledger.setStatus(.finished, run: second.run, at: 4)
        let steps = (0..<24).map { CarbonSeries.Step(epochSeconds: 1_740_000_000 + Double($0) * 3600, intensity: CarbonIntensity(gramsPerKWh: 300 + Double($0))) }
        try ledger.store([CarbonSeries(region: "DE", signal: .average, source: "test", points: steps)], at: 5)
        try ledger.store(ScheduledJob(
            name: "eval", createdAt: 6, region: "DE", signal: .average, forecastSeriesId: 1, forecastOrigin: "test", earliestStart: 1_740_000_000,
            deadline: 1_740_050_000, durationSeconds: 7200, energyKWh: 500, interruptible: false,
            slices: [TimedValue(start: 1_740_003_600, duration: 7200, value: 301.5)], forecastGramsPerKWh: 301.5, baselineRegion: "DE",
            startNowGramsPerKWh: 300
        ))
        let clean = try ledger.verify()
        #expect(clean.ok, "\(clean.problems)")
        return (ledger, path)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var sql: String
        var kind: AuditProblem.Kind
        var table: String
        var testDescription: String { name }
    }

    static let copyRun = "INSERT INTO run SELECT NULL, name, source, scenarioFile, scenarioText, overrides, scenarioHash, codeVersion, seed, startEpochSeconds, intervalSeconds, pacing, createdAt, updatedAt, endedAt, status, message, resumedFrom, summary FROM run WHERE id = 1"

    static let cases: [Case] = [
        // run: what it was, how it ended, and the summary the API serves.
        Case(name: "run: summary changed", sql: #"UPDATE run SET summary = '{"requests": 999}' WHERE id = 1"#, kind: .changedRow, table: "run"),
        Case(name: "run: status changed", sql: "UPDATE run SET status = 'failed' WHERE id = 2", kind: .changedRow, table: "run"),
        Case(name: "run: seed changed", sql: "UPDATE run SET seed = 77 WHERE id = 1", kind: .changedRow, table: "run"),
        Case(name: "run: scenario text changed", sql: "UPDATE run SET scenarioText = scenarioText || ' ' WHERE id = 1", kind: .changedRow, table: "run"),
        Case(name: "run: scenario hash changed", sql: "UPDATE run SET scenarioHash = 'x' WHERE id = 2", kind: .changedRow, table: "run"),
        Case(name: "run: inserted", sql: copyRun, kind: .insertedRow, table: "run"),
        Case(name: "run: deleted with its events", sql: "PRAGMA foreign_keys = OFF; DELETE FROM runEvent WHERE runId = 2; DELETE FROM run WHERE id = 2", kind: .removedRow, table: "run"),
        // run events: status transitions are appended, so each one is a row to check.
        Case(name: "run event: status changed", sql: "UPDATE runEvent SET status = 'finished' WHERE id = 1", kind: .changedRow, table: "runEvent"),
        Case(name: "run event: deleted", sql: "DELETE FROM runEvent WHERE id = 2", kind: .removedRow, table: "runEvent"),
        Case(name: "run event: inserted", sql: "INSERT INTO runEvent (runId, at, status) VALUES (1, 9, 'failed')", kind: .insertedRow, table: "runEvent"),
        Case(name: "run events: reordered", sql: "UPDATE runEvent SET at = 100 - at", kind: .changedRow, table: "runEvent"),
        // carbon series and samples.
        Case(name: "series: origin changed", sql: "UPDATE intensitySeries SET origin = 'official' WHERE id = 1", kind: .changedRow, table: "intensitySeries"),
        Case(name: "series: sample value changed", sql: "UPDATE intensitySample SET gramsPerKWh = 10 WHERE startEpochSeconds = 1740036000", kind: .changedRow, table: "intensitySeries"),
        Case(name: "series: sample deleted", sql: "DELETE FROM intensitySample WHERE startEpochSeconds = 1740036000", kind: .changedRow, table: "intensitySeries"),
        Case(name: "series: sample inserted", sql: "INSERT INTO intensitySample VALUES (1, 1739996400, 3600, 5)", kind: .changedRow, table: "intensitySeries"),
        Case(name: "series: samples reordered", sql: "UPDATE intensitySample SET gramsPerKWh = 623 - gramsPerKWh", kind: .changedRow, table: "intensitySeries"),
        Case(name: "series: deleted with its samples", sql: "PRAGMA foreign_keys = OFF; DELETE FROM intensitySample; DELETE FROM intensitySeries", kind: .removedRow, table: "intensitySeries"),
        Case(name: "series: inserted", sql: "INSERT INTO intensitySeries (region, signal, factor, kind, source, resolutionSeconds, origin, storedAt) VALUES ('FR', 'average', 'direct', 'forecast', 'x', 3600, 'x', 1)", kind: .insertedRow, table: "intensitySeries"),
        // scheduled jobs.
        Case(name: "job: planned intensity changed", sql: "UPDATE scheduledJob SET forecastGramsPerKWh = 1", kind: .changedRow, table: "scheduledJob"),
        Case(name: "job: deleted", sql: "DELETE FROM scheduledJob", kind: .removedRow, table: "scheduledJob"),
        Case(name: "job: inserted", sql: "INSERT INTO scheduledJob SELECT NULL, name || '2', createdAt, region, signal, forecastSeriesId, forecastOrigin, earliestStart, deadline, durationSeconds, energyKWh, interruptible, slices, forecastGramsPerKWh, baselineRegion, startNowGramsPerKWh FROM scheduledJob", kind: .insertedRow, table: "scheduledJob"),
        // requests and intervals (the batch chain), and the two chains themselves.
        Case(name: "request: energy moved between two requests", sql: "UPDATE request SET facilityJoules = facilityJoules + 1 WHERE id = 5; UPDATE request SET facilityJoules = facilityJoules - 1 WHERE id = 6", kind: .changedRow, table: "request"),
        Case(name: "requests: two rows swapped", sql: "UPDATE request SET id = -id WHERE id IN (7, 8); UPDATE request SET id = 15 + id WHERE id IN (-7, -8)", kind: .changedRow, table: "request"),
        Case(name: "request: deleted", sql: "DELETE FROM request WHERE id = 9", kind: .removedRow, table: "request"),
        Case(name: "request: inserted (a copy with a new id)", sql: """
            CREATE TEMP TABLE copied AS SELECT * FROM request WHERE id = 5;
            UPDATE copied SET id = (SELECT max(id) + 1 FROM request), requestId = 999999;
            INSERT INTO request SELECT * FROM copied
            """, kind: .insertedRow, table: "request"),
        Case(name: "request: deleted, and a forged one put in its place", sql: """
            CREATE TEMP TABLE copied AS SELECT * FROM request WHERE id = 5;
            DELETE FROM request WHERE id = 5;
            UPDATE copied SET facilityJoules = facilityJoules / 2;
            INSERT INTO request SELECT * FROM copied
            """, kind: .changedRow, table: "request"),
        Case(name: "interval: energy changed", sql: "UPDATE clusterInterval SET facilityJoules = facilityJoules * 1.01 WHERE id = 2", kind: .changedRow, table: "clusterInterval"),
        Case(name: "interval: deleted", sql: "DELETE FROM clusterInterval WHERE id = 1", kind: .removedRow, table: "clusterInterval"),
        Case(name: "interval: inserted (a copy with a new id)", sql: """
            CREATE TEMP TABLE copied AS SELECT * FROM clusterInterval WHERE id = 1;
            UPDATE copied SET id = (SELECT max(id) + 1 FROM clusterInterval);
            INSERT INTO clusterInterval SELECT * FROM copied
            """, kind: .insertedRow, table: "clusterInterval"),
        Case(name: "runs: two swapped", sql: """
            PRAGMA foreign_keys = OFF;
            UPDATE run SET id = -id WHERE id IN (1, 2); UPDATE run SET id = 3 + id WHERE id IN (-1, -2)
            """, kind: .changedRow, table: "run"),
        Case(name: "rollup: a count changed", sql: "UPDATE requestRollup SET requests = requests + 1 WHERE id = 2", kind: .changedRow, table: "requestRollup"),
        Case(name: "rollup: a sketch changed", sql: "UPDATE requestRollup SET e2eSketch = ttftSketch WHERE id = 1", kind: .changedRow, table: "requestRollup"),
        Case(name: "rollup: deleted", sql: "DELETE FROM requestRollup WHERE id = 1", kind: .removedRow, table: "requestRollup"),
        Case(name: "rollup: inserted", sql: "INSERT INTO requestRollup SELECT NULL, runId, minuteSeconds + 60, minuteEpochSeconds + 60, requests, inFlight, facilityJoules, promptTokens, cachedTokens, outputTokens, operationalCarbonGrams, embodiedCarbonGrams, gpuSeconds, inFlightFacilityJoules, trained, trainingTokens, trainingFacilityJoules, trainingCarbonGrams, trainingGPUSeconds, energySketch, ttftSketch, tpotSketch, e2eSketch FROM requestRollup WHERE id = 1", kind: .insertedRow, table: "requestRollup"),
        Case(name: "batches: reordered", sql: "UPDATE auditBatch SET seq = -seq WHERE seq IN (2, 3); UPDATE auditBatch SET seq = 5 + seq WHERE seq IN (-2, -3)", kind: .brokenChain, table: "auditBatch"),
        Case(name: "batches: a run's tail cut with its rows", sql: """
            DELETE FROM request WHERE id >= (SELECT firstRequestRow FROM auditBatch WHERE seq = (SELECT max(seq) FROM auditBatch WHERE requestCount > 0));
            DELETE FROM auditBatch WHERE seq >= (SELECT max(seq) FROM auditBatch WHERE requestCount > 0)
            """, kind: .changedRow, table: "run"),
        Case(name: "batches and rows: all deleted, runs kept", sql: "DELETE FROM request; DELETE FROM clusterInterval; DELETE FROM auditBatch", kind: .changedRow, table: "run"),
        // The job's row outlives its entry: a row no entry records.
        Case(name: "entries: tail cut", sql: "DELETE FROM auditEntry WHERE seq > (SELECT max(seq) - 3 FROM auditEntry)", kind: .insertedRow, table: "scheduledJob"),
        Case(name: "entries: one changed", sql: "UPDATE auditEntry SET committedAt = 12345 WHERE seq = 2", kind: .changedBatch, table: "auditEntry"),
        Case(name: "entries: one deleted", sql: "DELETE FROM auditEntry WHERE seq = 2", kind: .brokenChain, table: "auditEntry"),
    ]

    @Test("Each edit to each table is caught, and named by its table", arguments: cases)
    func detects(_ c: Case) throws {
        let folder = TemporaryFolder()
        let (ledger, path) = try Self.ledger(folder)
        try tamper(path, c.sql)
        let result = try ledger.verify()
        #expect(!result.ok)
        #expect(result.problems.contains { $0.kind == c.kind && $0.table == c.table }, "\(result.problems)")
    }

    @Test("A cut tail that leaves a consistent earlier ledger, and a wipe: missed by the chain, caught against an anchor")
    func anchorCatchesCutsAndWipes() throws {
        let folder = TemporaryFolder()
        let (ledger, path) = try Self.ledger(folder)
        let earlier = folder.file("earlier.sqlite")
        try tamper(path, "VACUUM INTO '\(earlier)'")
        _ = try record(try prepared("mixtral-single-node", duration: 20, seed: 8).0, try prepared("mixtral-single-node", duration: 20, seed: 8).1, into: ledger, commitEvery: 50)
        let anchor = try ledger.anchor(at: 10)
        #expect(try ledger.verify(limit: 20, anchor: anchor).ok)

        // The ledger put back to its earlier, consistent state: the chain cannot tell.
        let restored = try Ledger(path: earlier, auditKey: .some(nil))
        #expect(try restored.verify().ok)
        let cut = try restored.verify(limit: 20, anchor: anchor)
        #expect(cut.problems.contains { $0.kind == .anchorMismatch && $0.table == "auditBatch" }, "\(cut.problems)")
        #expect(cut.problems.contains { $0.kind == .anchorMismatch && $0.table == "auditEntry" }, "\(cut.problems)")

        // Everything deleted: an empty ledger verifies, and fails against the anchor.
        try tamper(path, "DELETE FROM request; DELETE FROM clusterInterval; DELETE FROM requestRollup; DELETE FROM auditBatch; DELETE FROM auditEntry; DELETE FROM runEvent; DELETE FROM scheduledJob; DELETE FROM intensitySample; DELETE FROM intensitySeries; DELETE FROM requestCoding; DELETE FROM run")
        let wiped = try ledger.verify(limit: 20, anchor: anchor)
        let empty = try ledger.verify()
        #expect(empty.ok && empty.batches == 0 && empty.entries == 0)
        #expect(wiped.problems.contains { $0.kind == .anchorMismatch }, "\(wiped.problems)")
    }

    @Test("A chain rewritten by someone without the key verifies without the key, fails with it, and fails against an anchor")
    func keyCatchesRewrites() throws {
        let folder = TemporaryFolder()
        let (keyed, path) = try Self.ledger(folder, key: Self.key)
        let clean = try keyed.verify()
        #expect(clean.ok && clean.authenticated)
        let anchor = try keyed.anchor(at: 10)
        // The forger rewrites the whole history with Joule's own code, but no key, and a summary of their choosing.
        try FileManager.default.removeItem(atPath: path)
        for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        let (forged, _) = try Self.ledger(folder, key: nil, name: "l.sqlite", summary: #"{"requests": 400}"#)
        #expect(try forged.verify().ok)
        let withKey = try Ledger(path: path, auditKey: .some(Self.key)).verify()
        #expect(withKey.problems.contains { $0.kind == .unauthenticated && $0.table == "auditBatch" }, "\(withKey.problems)")
        #expect(withKey.problems.contains { $0.kind == .unauthenticated && $0.table == "auditEntry" })
        // Without the key, an anchor taken before the rewrite still tells.
        let anchored = try forged.verify(limit: 20, anchor: anchor)
        #expect(anchored.problems.contains { $0.kind == .anchorMismatch && $0.table == "auditEntry" }, "\(anchored.problems)")
        // The wrong key is no key.
        let wrong = try Ledger(path: path, auditKey: .some(try AuditKey("another key, also long enough"))).verify()
        #expect(wrong.problems.contains { $0.kind == .unauthenticated })
    }

    @Test("Reconcile does not call a finished run without batches balanced")
    func reconcileNeedsBatches() throws {
        let folder = TemporaryFolder()
        let (ledger, path) = try Self.ledger(folder)
        #expect(try ledger.reconcile(run: 1).balances)
        try tamper(path, "DELETE FROM request WHERE runId = 1; DELETE FROM clusterInterval WHERE runId = 1; DELETE FROM auditBatch WHERE runId = 1")
        #expect(try !ledger.reconcile(run: 1).balances)
    }

    @Test("A short audit key is an error naming the variable")
    func shortKey() throws {
        #expect { try AuditKey.fromEnvironment(["JOULE_AUDIT_KEY": "short"]) } throws: { "\($0)".contains("JOULE_AUDIT_KEY") && "\($0)".contains("16 bytes") }
        #expect(try AuditKey.fromEnvironment([:]) == nil)
        #expect(try AuditKey.fromEnvironment(["JOULE_AUDIT_KEY": ""]) == nil)
    }
}

/// A value of the wrong type put into any column of any table with the sqlite3 shell (text where
/// a number belongs) is an error from every read of the ledger contract, or a value: never a trap.
/// A trap here would end the test process, which is the failure this suite exists to catch.
@Suite("Ledger: a wrong-typed value in any column never traps a reader")
struct WrongTypeTests {
    static let tables = ["request", "requestCoding", "clusterInterval", "run", "runEvent", "intensitySeries", "intensitySample", "scheduledJob", "auditBatch", "auditEntry"]

    @Test("Every read of the contract gives a value or an error", arguments: tables)
    func everyRead(table: String) throws {
        let folder = TemporaryFolder()
        let (_, path) = try TamperTests.ledger(folder)
        let columns = try DatabaseQueue(path: path).read { db in
            try String.fetchAll(db, sql: "SELECT name FROM pragma_table_info(?) WHERE pk = 0", arguments: [table])
        }
        #expect(!columns.isEmpty)
        var errors = 0, tampered = 0
        for column in columns {
            let copy = folder.file("\(table)-\(column).sqlite")
            try tamper(path, "VACUUM INTO '\(copy)'")
            // A column whose constraints refuse the text (a CHECK, a UNIQUE key) cannot hold it.
            guard (try? tamper(copy, "PRAGMA foreign_keys = OFF; UPDATE \(table) SET \"\(column)\" = 'abc'")) != nil else { continue }
            tampered += 1
            let ledger: Ledger
            do { ledger = try Ledger(path: copy, auditKey: .some(nil)) } catch { errors += 1; continue }
            let reads: [() throws -> Void] = [
                { _ = try ledger.runs() }, { _ = try ledger.overviews() }, { _ = try ledger.run(1) }, { _ = try ledger.progress(run: 1) },
                { _ = try ledger.requests(run: 1, RequestQuery(limit: 50)) }, { _ = try ledger.breakdown(request: 3, run: 1) },
                { try ledger.forEachRequest(.run(1)) { _ in } }, { try ledger.forEachInterval(.run(1)) { _ in } },
                { _ = try ledger.intervalTotals(run: 1) }, { _ = try ledger.embodiedGramsPerGPUSecond(run: 1) },
                { _ = try ledger.latestFinishedRequests(run: 1, limit: 10) }, { _ = try ledger.spreadRequests(run: 1, count: 10) },
                { _ = try ledger.requests(after: 0, limit: 10, runs: []) }, { _ = try ledger.rollups(after: 0, limit: 10) }, { _ = try ledger.runsWithoutRollups() }, { _ = try ledger.intervals(after: 0, limit: 10) }, { _ = try ledger.lastCommits() },
                { _ = try ledger.storedSeries() }, { _ = try ledger.series(id: 1) }, { _ = try ledger.planningSeries(region: "DE") },
                { _ = try ledger.scheduledJobs() },
                { _ = try ledger.realisedIntensity(region: "DE", signal: .average, spans: [(1_740_000_000, 1_740_007_200)]) },
                { _ = try ledger.verify() }, { _ = try ledger.reconcile(run: 1) }, { _ = try ledger.anchor(at: 1) },
            ]
            for read in reads {
                do { try read() } catch { errors += 1 }
            }
            // The edit itself is caught by the audit, except where the text reads back as what was
            // committed (SQLite reads 'abc' as 0 in a number column, and these held 0 at the end of
            // a finished run, or as the smallest request id of a batch of a run's first requests),
            // or in an HMAC column, which is checked only with the key.
            let unseen = [
                "auditBatch.pendingRequests", "auditBatch.pendingFacilityJoules", "auditBatch.unattributedFacilityJoules", "auditBatch.minRequestId",
                "auditBatch.mac", "auditEntry.mac",
            ]
            if let verified = try? ledger.verify(), verified.ok {
                #expect(unseen.contains("\(table).\(column)"), "\(table).\(column): verify missed it")
            }
        }
        #expect(tampered > 0)
        print("\(table): \(tampered) columns made text, \(errors) reads answered with an error, none trapped")
    }
}
