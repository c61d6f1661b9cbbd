import Catalog
import Foundation
import GRDB
@testable import Ledger
import Accounting
import Serving
import Testing

@Suite("Ledger: storing runs")
struct LedgerStorageTests {
    @Test("What is committed reads back exactly, verifies, and reconciles", arguments: [1, 700, 5000])
    func roundTrip(commitEvery: Int) throws {
        let folder = TemporaryFolder()
        let ledger = try Ledger(path: folder.file("l.sqlite"))
        let (loaded, run) = try prepared("mixtral-single-node")
        let result = try record(loaded, run, into: ledger, commitEvery: commitEvery)
        let stored = try ledger.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM request WHERE runId = ? ORDER BY id", arguments: [result.run])
        }
        #expect(stored.count == result.records.count)
        for (row, record) in zip(stored, result.records) {
            let back: RequestRecord = try ledger.breakdown(request: row["requestId"], run: result.run).record
            #expect(back == record)
        }
        let verification = try ledger.verify()
        #expect(verification.ok, "\(verification.problems)")
        #expect(verification.requestRows == result.records.count)
        #expect(verification.intervalRows == result.intervals.count)
        let books = try ledger.reconcile(run: result.run)
        #expect(books.balances, "residual \(books.relativeResidual)")
        #expect(books.pendingRequests == 0)
    }

    @Test("A run that charges a training share stores it with every finished request, reads it back and verifies")
    func trainingShares() throws {
        let folder = TemporaryFolder()
        let ledger = try Ledger(path: folder.file("l.sqlite"))
        let (loaded, run) = try prepared("deepseek-v3-average-hour", duration: 8)
        #expect(loaded.scenario.training != nil)
        let result = try record(loaded, run, into: ledger, commitEvery: 500)
        let finished = result.records.filter { !$0.inFlight }
        #expect(!finished.isEmpty && finished.allSatisfy { $0.training != nil })
        #expect(result.records.filter(\.inFlight).allSatisfy { $0.training == nil })
        for r in finished.prefix(50) {
            #expect(try ledger.breakdown(request: r.id, run: result.run).record == r)
        }
        #expect(try ledger.verify().ok)
        try tamper(folder.file("l.sqlite"), "UPDATE request SET trainingCarbonResidual = trainingCarbonResidual + 1 WHERE id = 3")
        #expect(try ledger.verify().problems.first?.rowID == 3)
    }

    @Test("A run stopped at any moment reconciles at its last commit", arguments: [61.0, 125.5, 301.0, 599.0])
    func reconcileMidRun(stopAt: Double) throws {
        let folder = TemporaryFolder()
        let ledger = try Ledger(path: folder.file("l.sqlite"))
        let (loaded, run) = try prepared("mixtral-single-node")
        let result = try record(loaded, run, into: ledger, commitEvery: 300, stopAt: stopAt)
        guard case .stopped = result.outcome else {
            Issue.record("the run should have stopped at \(stopAt)")
            return
        }
        let books = try ledger.reconcile(run: result.run)
        #expect(books.balances, "residual \(books.relativeResidual)")
        #expect(books.pendingRequests > 0)
        #expect(books.pendingKWh > 0)
    }

    @Test("A request twice in a batch is refused and the batch leaves no trace; once more in a later batch, reconcile names the run")
    func duplicateRefused() throws {
        let folder = TemporaryFolder()
        let ledger = try Ledger(path: folder.file("l.sqlite"))
        let (loaded, run) = try prepared("mixtral-single-node", duration: 120)
        let result = try record(loaded, run, into: ledger, commitEvery: 1)
        let before = try ledger.progress(run: result.run)
        #expect(throws: LedgerError.self) {
            try ledger.append(LedgerBatch(records: [result.records[4], result.records[3], result.records[4]]), run: result.run, startEpochSeconds: 0, at: 3)
        }
        #expect(try ledger.progress(run: result.run) == before)
        #expect(try ledger.verify().ok)
        #expect(try ledger.reconcile(run: result.run).balances)
        // Across batches nothing is looked up while writing: the run's rows now outnumber its checkpoint.
        try ledger.append(LedgerBatch(records: [result.records[3]]), run: result.run, startEpochSeconds: 0, at: 3)
        #expect(try ledger.verify().ok)
        let books = try ledger.reconcile(run: result.run)
        #expect(!books.balances)
        #expect(books.requestRows == books.checkpointRecords + 1)
    }

    @Test("A full disk (here a size limit) fails the batch in hand and keeps every earlier one")
    func fullDisk() throws {
        let folder = TemporaryFolder()
        let path = folder.file("l.sqlite")
        let (loaded, run) = try prepared("deepseek-v3-day", duration: 60)
        var records: [RequestRecord] = []
        _ = try run.run(onRecord: { records.append($0) })
        let ledger = try Ledger(path: path, maximumBytes: 2 << 20)
        let id = try ledger.beginRun(spec(loaded, run), at: 0)
        var committed = 0
        var failure: Error?
        for chunk in stride(from: 0, to: records.count, by: 1000) {
            do {
                try ledger.append(LedgerBatch(records: Array(records[chunk..<min(chunk + 1000, records.count)])), run: id, startEpochSeconds: 0, at: 1)
                committed += min(1000, records.count - chunk)
            } catch {
                failure = error
                break
            }
        }
        let error = try #require(failure as? LedgerError)
        #expect("\(error)".contains("full"))
        #expect(committed > 0)
        #expect(try ledger.progress(run: id).storedRequests == committed)
        #expect(try ledger.verify().ok)
    }

    @Test("A ledger in a folder that does not exist is a clear error")
    func missingFolder() {
        #expect {
            try Ledger(path: "/nonexistent-joule-folder/l.sqlite")
        } throws: { error in
            "\(error)".contains("/nonexistent-joule-folder") && "\(error)".contains("does not exist")
        }
    }

    @Test("The schema's columns are the ones rows are written and hashed by")
    func columnsMatchSchema() throws {
        let folder = TemporaryFolder()
        let ledger = try Ledger(path: folder.file("l.sqlite"))
        let (requestColumns, intervalColumns) = try ledger.read { db in
            (try db.columns(in: "request").map(\.name), try db.columns(in: "clusterInterval").map(\.name))
        }
        #expect(requestColumns == ["id"] + CompactRequest.columns)
        #expect(intervalColumns == ["id"] + IntervalRow.columns)
    }
}

@Suite("Ledger: the audit chain")
struct AuditChainTests {
    /// A ledger with two runs in many batches, and its path.
    static func ledger(_ folder: TemporaryFolder) throws -> (Ledger, String) {
        let path = folder.file("l.sqlite")
        let ledger = try Ledger(path: path)
        let (loaded, run) = try prepared("mixtral-single-node")
        _ = try record(loaded, run, into: ledger, commitEvery: 400)
        _ = try record(loaded, try prepared("mixtral-single-node", seed: 9).1, into: ledger, commitEvery: 900)
        #expect(try ledger.verify().ok)
        return (ledger, path)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var sql: String
        var kind: AuditProblem.Kind
        var table: String
        /// The row reported; −1 for the row the change inserts.
        var rowID: Int64
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "a request's energy edited", sql: "UPDATE request SET facilityJoules = facilityJoules + 1e-6 WHERE id = 1500",
             kind: .changedRow, table: "request", rowID: 1500),
        Case(name: "a request's id edited", sql: "UPDATE request SET requestId = 999999 WHERE id = 2000", kind: .changedRow, table: "request", rowID: 2000),
        Case(name: "a request deleted", sql: "DELETE FROM request WHERE id = 321", kind: .removedRow, table: "request", rowID: 321),
        Case(name: "an interval edited", sql: "UPDATE clusterInterval SET intensityGramsPerKWh = 0 WHERE id = 4",
             kind: .changedRow, table: "clusterInterval", rowID: 4),
        Case(name: "a request inserted", sql: """
            CREATE TEMP TABLE copied AS SELECT * FROM request WHERE id = 10;
            UPDATE copied SET id = NULL, requestId = requestId + 100000;
            INSERT INTO request SELECT * FROM copied
            """, kind: .insertedRow, table: "request", rowID: -1),
        // A training share set on a row that had none: its NULL training columns are part of its digest.
        Case(name: "a training share added to a request", sql: "UPDATE request SET trainingTokens = 1 WHERE id = 10", kind: .changedRow, table: "request", rowID: 10),
        // A derived figure: its residual, and the run's coding it is restored with.
        Case(name: "a request's carbon residual edited", sql: "UPDATE request SET operationalCarbonResidual = operationalCarbonResidual + 1 WHERE id = 11",
             kind: .changedRow, table: "request", rowID: 11),
        Case(name: "a run's coding edited", sql: "UPDATE requestCoding SET embodiedGramsPerGPUSecond = embodiedGramsPerGPUSecond * 1.5 WHERE runId = 1",
             kind: .changedRow, table: "request", rowID: 1),
        Case(name: "a batch's checkpoint edited", sql: "UPDATE auditBatch SET pendingFacilityJoules = 0 WHERE seq = 3",
             kind: .changedBatch, table: "auditBatch", rowID: 3),
        Case(name: "a batch removed with its rows", sql: "DELETE FROM request WHERE id IN (SELECT id FROM request WHERE id >= (SELECT firstRequestRow FROM auditBatch WHERE seq = 2) AND id < (SELECT firstRequestRow FROM auditBatch WHERE seq = 3)); DELETE FROM auditBatch WHERE seq = 2",
             kind: .brokenChain, table: "auditBatch", rowID: 3),
    ]

    @Test("Each kind of change outside Joule is reported, first, with its row", arguments: cases)
    func detects(_ c: Case) throws {
        let folder = TemporaryFolder()
        let (ledger, path) = try Self.ledger(folder)
        let lastRow = try ledger.read { db in try Int64.fetchOne(db, sql: "SELECT max(rowid) FROM \(c.table)") ?? 0 }
        try tamper(path, c.sql)
        let result = try ledger.verify()
        let first = try #require(result.problems.first)
        #expect(!result.ok)
        #expect(first.kind == c.kind, "\(result.problems)")
        #expect(first.table == c.table)
        #expect(first.rowID == (c.rowID < 0 ? lastRow + 1 : c.rowID), "\(first)")
    }

    @Test("Rewriting a value with the same value leaves the chain intact")
    func identicalRewrite() throws {
        let folder = TemporaryFolder()
        let (ledger, path) = try Self.ledger(folder)
        try tamper(path, "UPDATE request SET facilityJoules = facilityJoules, finishSeconds = finishSeconds")
        #expect(try ledger.verify().ok)
    }
}
