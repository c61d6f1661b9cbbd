import Foundation
import GRDB
@testable import Ledger
import Testing

/// The audit chain across schema versions: every batch records the digest scheme and the columns
/// it covered, so a migration that adds a column leaves earlier rows verifying.
@Suite("Ledger: audit digests across schema changes")
struct SchemaEvolutionTests {
    /// Adds columns to both row tables the way a later migration would (docs/ledger.md).
    static func addColumns(_ path: String) throws {
        var migrator = LedgerSchema.migrator(key: nil)
        migrator.registerMigration("v99 columns a later version adds") { db in
            try db.execute(sql: """
                ALTER TABLE request ADD COLUMN futureWatts REAL NOT NULL DEFAULT 7;
                ALTER TABLE clusterInterval ADD COLUMN futureNote TEXT DEFAULT 'later';
                """)
        }
        try migrator.migrate(DatabaseQueue(path: path))
    }

    @Test("Rows recorded before a migration adds a column still verify, and changes to them are still caught")
    func addedColumnKeepsOldRowsVerifying() throws {
        let folder = TemporaryFolder()
        let (_, path) = try AuditChainTests.ledger(folder)
        try Self.addColumns(path)
        let ledger = try Ledger(path: path)
        let after = try ledger.verify()
        #expect(after.ok, "\(after.problems)")
        #expect(after.batches > 2)
        // A batch written after the migration verifies beside the old ones.
        let (loaded, run) = try prepared("mixtral-single-node", duration: 30, seed: 4)
        _ = try record(loaded, run, into: ledger, commitEvery: 100)
        #expect(try ledger.verify().ok)
        // What the old digests cover is still covered.
        try tamper(path, "UPDATE request SET outputTokens = outputTokens + 1 WHERE id = 77")
        let tampered = try ledger.verify()
        #expect(tampered.problems.first?.kind == .changedRow && tampered.problems.first?.rowID == 77, "\(tampered.problems)")
    }

    @Test("A batch's recorded column set is part of its hash")
    func columnSetIsHashed() throws {
        let folder = TemporaryFolder()
        let (ledger, path) = try AuditChainTests.ledger(folder)
        try tamper(path, "UPDATE auditBatch SET requestColumns = replace(requestColumns, 'facilityJoules,', '') WHERE seq = 2")
        let result = try ledger.verify()
        #expect(result.problems.first?.kind == .changedBatch && result.problems.first?.rowID == 2, "\(result.problems)")
    }

    @Test("A dropped column a batch covered is reported against the batch")
    func droppedColumnIsReported() throws {
        let folder = TemporaryFolder()
        let (ledger, path) = try AuditChainTests.ledger(folder)
        // (A request digest covers the record's figures, restored from whatever the row stores.)
        try tamper(path, "ALTER TABLE clusterInterval DROP COLUMN busyFraction")
        let result = try ledger.verify()
        #expect(result.problems.contains { $0.kind == .changedBatch && $0.detail.contains("busyFraction") }, "\(result.problems)")
    }

    @Test("A ledger recorded by Joule 0.5 (schema v3, digest scheme 1) migrates and verifies; a change to it is caught")
    func ledgerFromBeforeVersionedDigests() throws {
        let folder = TemporaryFolder()
        let path = folder.file("v3.sqlite")
        try FileManager.default.copyItem(atPath: fixturesDirectory + "/ledger/schema-v3.sqlite", toPath: path)
        let ledger = try Ledger(path: path)
        let before = try ledger.verify()
        #expect(before.ok, "\(before.problems)")
        #expect(before.requestRows > 0 && before.intervalRows > 0)
        #expect(try ledger.reconcile(run: 1).balances)
        // New batches (scheme 2) after old ones (scheme 1) verify together, also after a further migration.
        let (loaded, run) = try prepared("mixtral-single-node", duration: 20, seed: 5)
        _ = try record(loaded, run, into: ledger, commitEvery: 100)
        try Self.addColumns(path)
        #expect(try Ledger(path: path).verify().ok)
        try tamper(path, "UPDATE request SET facilityJoules = facilityJoules * 1.01 WHERE id = 3")
        let tampered = try ledger.verify()
        #expect(tampered.problems.first?.kind == .changedRow && tampered.problems.first?.rowID == 3, "\(tampered.problems)")
    }
}

/// The repository's test fixtures.
let fixturesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures").path
