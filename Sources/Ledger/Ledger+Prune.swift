import Foundation
import GRDB

/// What `prune(before:at:)` did.
public struct PruneResult: Sendable, Codable, Hashable {
    /// The pruning's id in `requestPruning` (nil when there was nothing to prune).
    public var pruning: Int64?
    /// Batches that ended at or before this time (seconds since 1970) lose their request rows.
    public var beforeEpochSeconds: Double
    public var batches: Int
    public var requestRows: Int
    /// Batches before the date that keep their rows: recorded before rollups (nothing would
    /// answer for them), or the last batch of a run that had requests (its resume point).
    public var keptWithoutRollups: Int
    public var keptAsResumePoints: Int
}

extension Ledger {
    /// Deletes the request rows of every batch that ended (its run's start plus the batch's
    /// simulated time) at or before `before`, keeping the batches, their rollups and their
    /// digests: reports, the API summaries and `/metrics` read the rollups, and `audit verify`
    /// knows the rows are gone by the pruning it records (an entry in the audit chain).
    ///
    /// Never pruned: batches written before rollups (schema v7), and each run's last batch with
    /// requests, which a resumed run checks itself against.
    public func prune(before: Double, at wallClock: Double) throws -> PruneResult {
        guard before.isFinite else { throw LedgerError.outOfRange("before: expected a time, got \(before)") }
        return try write { db in
            var result = PruneResult(pruning: nil, beforeEpochSeconds: before, batches: 0, requestRows: 0, keptWithoutRollups: 0, keptAsResumePoints: 0)
            let through = try Int64.fetchOne(db, sql: "SELECT max(seq) FROM auditBatch") ?? 0
            let already = try Ledger.prunedBatches(db)
            let candidates = try Ledger.prunable(before: before, through: through, db)
            for c in candidates where !already.contains(c.seq) {
                switch c.verdict {
                case .withoutRollups: result.keptWithoutRollups += 1
                case .resumePoint: result.keptAsResumePoints += 1
                case .pruned:
                    try db.execute(sql: "DELETE FROM request WHERE id BETWEEN ? AND ?", arguments: [c.firstRow, c.firstRow + Int64(c.count) - 1])
                    result.requestRows += db.changesCount
                    result.batches += 1
                }
            }
            guard result.batches > 0 else { return result }
            try db.execute(sql: """
                INSERT INTO requestPruning (beforeEpochSeconds, throughBatch, prunedAt, batches, requestRows) VALUES (?, ?, ?, ?, ?)
                """, arguments: [before, through, wallClock, result.batches, result.requestRows])
            let id = db.lastInsertedRowID
            result.pruning = id
            try Ledger.recordEntry(.requestPruning, id, at: wallClock, key: auditKey, db)
            return result
        }
    }

    enum PruneVerdict { case pruned, withoutRollups, resumePoint }

    /// The batches with requests among the first `through` that ended at or before `before`, and
    /// what a pruning then does with each: a rule of the batches alone, so `audit verify` can
    /// recompute which rows a recorded pruning removed.
    static func prunable(before: Double, through: Int64, _ db: Database) throws -> [(seq: Int64, firstRow: Int64, count: Int, verdict: PruneVerdict)] {
        let last = Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: """
            SELECT runId, max(seq) AS seq FROM auditBatch WHERE requestCount > 0 AND seq <= ? GROUP BY runId
            """, arguments: [through]).map { (try $0.value("runId", in: "auditBatch") as Int64, try $0.value("seq", in: "auditBatch") as Int64) })
        return try Row.fetchAll(db, sql: """
            SELECT b.seq, b.runId, b.firstRequestRow, b.requestCount, b.digestScheme FROM auditBatch b JOIN run r ON r.id = b.runId
            WHERE b.seq <= ? AND b.requestCount > 0 AND r.startEpochSeconds + b.simulatedSeconds <= ? ORDER BY b.seq
            """, arguments: [through, before]).map { row in
            let t = "auditBatch"
            let seq: Int64 = try row.value("seq", in: t)
            let run: Int64 = try row.value("runId", in: t)
            let scheme: Int = try row.value("digestScheme", in: t)
            let verdict: PruneVerdict = scheme < 3 ? .withoutRollups : last[run] == seq ? .resumePoint : .pruned
            return (seq, try row.value("firstRequestRow", in: t), try row.value("requestCount", in: t), verdict)
        }
    }

    /// Every batch whose request rows a recorded pruning removed.
    static func prunedBatches(_ db: Database) throws -> Set<Int64> {
        var out: Set<Int64> = []
        for p in try Row.fetchAll(db, sql: "SELECT beforeEpochSeconds, throughBatch FROM requestPruning ORDER BY id") {
            let t = "requestPruning"
            for c in try prunable(before: try p.value("beforeEpochSeconds", in: t), through: try p.value("throughBatch", in: t), db) where c.verdict == .pruned {
                out.insert(c.seq)
            }
        }
        return out
    }

    /// The newest batch end in the ledger (seconds since 1970): "now" on the ledger's time axis,
    /// which retention counts back from.
    public func newestBatchEnd() throws -> Double? {
        try pool.read { db in
            try Double.fetchOne(db, sql: "SELECT max(r.startEpochSeconds + b.simulatedSeconds) FROM auditBatch b JOIN run r ON r.id = b.runId")
        }
    }
}
