import Crypto
import Foundation
import GRDB

/// Something `audit verify` found that Joule did not write.
public struct AuditProblem: Hashable, Sendable, Codable, CustomStringConvertible {
    public enum Kind: String, Codable, Sendable {
        /// A row's values differ from what was committed.
        case changedRow = "changed row"
        /// A committed row is gone.
        case removedRow = "removed row"
        /// A row that no committed batch contains.
        case insertedRow = "inserted row"
        /// A batch's own fields or digests differ from what was committed.
        case changedBatch = "changed batch"
        /// A batch is missing from the chain, or links to the wrong predecessor.
        case brokenChain = "broken chain"
    }

    public var kind: Kind
    /// `request`, `clusterInterval` or `auditBatch`.
    public var table: String
    /// The row id in `table` (the batch's seq for `auditBatch`).
    public var rowID: Int64
    /// The audit batch the row belongs (or belonged) to.
    public var batch: Int64?
    public var detail: String

    public var description: String {
        "\(kind.rawValue): \(table) row \(rowID)" + (batch.map { " (batch \($0))" } ?? "") + ": \(detail)"
    }
}

/// The result of recomputing the audit chain.
public struct AuditVerification: Sendable, Codable {
    public var batches: Int
    public var requestRows: Int
    public var intervalRows: Int
    /// The hash of the last batch, hex: keep it outside the ledger to detect a truncated chain.
    public var headHash: String?
    /// Problems in ledger order; the first is the earliest. Capped at `limit` (see `truncated`).
    public var problems: [AuditProblem]
    public var truncated: Bool

    public var ok: Bool { problems.isEmpty }
}

/// Walks one table's rows in row-id order alongside the chain.
private struct RowWalk {
    let table: String
    let cursor: RowCursor
    var current: (id: Int64, digest: Data, detail: String)?
    var count = 0

    /// Trailing columns added by later migrations: a NULL there is left out of the encoding.
    let extensionColumns: Int

    init(db: Database, table: String, columns: [String], label: String, extensionColumns: Int = 0) throws {
        self.table = table
        self.extensionColumns = extensionColumns
        cursor = try Row.fetchCursor(db, sql: "SELECT id, \(label), \(columns.joined(separator: ", ")) FROM \(table) ORDER BY id")
        try advance()
    }

    mutating func advance() throws {
        guard let row = try cursor.next() else {
            current = nil
            return
        }
        count += 1
        let id: Int64 = row[0]
        var e = CanonicalEncoder()
        e.beginRow(table: table)
        for i in 2..<row.count {
            let value = row[i] as DatabaseValue
            if i >= row.count - extensionColumns && value.isNull { continue }
            e.stored(value)
        }
        let label = row[1] as DatabaseValue
        current = (id, Data(SHA256.hash(data: e.bytes)), String.fromDatabaseValue(label) ?? "\(label)")
    }
}

extension Ledger {
    /// Recomputes the audit chain and every row's digest.
    ///
    /// Reports rows changed, removed or inserted outside Joule, and batches changed or removed,
    /// in ledger order, up to `limit` problems. Reads in one transaction: a consistent snapshot
    /// even while a daemon writes.
    public func verify(limit: Int = 20) throws -> AuditVerification {
        try pool.read { db in
            var problems: [AuditProblem] = []
            var truncated = false
            func report(_ p: AuditProblem) {
                if problems.count < limit { problems.append(p) } else { truncated = true }
            }
            var requests = try RowWalk(db: db, table: RequestRow.table, columns: RequestRow.Columns.names, label: "'request ' || requestId || ' of run ' || runId",
                                       extensionColumns: RequestRow.Columns.extensionColumns)
            var intervals = try RowWalk(db: db, table: IntervalRow.table, columns: IntervalRow.Columns.names, label: "'unit ' || unit || ' at ' || startSeconds || ' s of run ' || runId")
            var previous = AuditBatch.genesis
            var expectedSeq: Int64 = 1
            var batches = 0
            let cursor = try AuditBatch.order(Column("seq")).fetchCursor(db)
            while let batch = try cursor.next() {
                batches += 1
                if batch.seq != expectedSeq {
                    report(AuditProblem(kind: .brokenChain, table: "auditBatch", rowID: batch.seq, batch: batch.seq,
                                        detail: "batches \(expectedSeq)…\(batch.seq - 1) are missing"))
                }
                if batch.previousHash != previous {
                    report(AuditProblem(kind: .brokenChain, table: "auditBatch", rowID: batch.seq, batch: batch.seq,
                                        detail: "its previous hash does not match batch \(batch.seq - 1)"))
                }
                if batch.computeHash(previous: batch.previousHash) != batch.hash {
                    report(AuditProblem(kind: .changedBatch, table: "auditBatch", rowID: batch.seq, batch: batch.seq,
                                        detail: "its fields or row digests were changed"))
                }
                let expectedDigests = 32 * (batch.requestCount + batch.intervalCount)
                if batch.rowDigests.count != expectedDigests {
                    report(AuditProblem(kind: .changedBatch, table: "auditBatch", rowID: batch.seq, batch: batch.seq,
                                        detail: "it holds \(batch.rowDigests.count / 32) row digests for \(batch.requestCount + batch.intervalCount) rows"))
                } else {
                    try check(&requests, first: batch.firstRequestRow, count: batch.requestCount, digestOffset: 0, batch: batch, report: report)
                    try check(&intervals, first: batch.firstIntervalRow, count: batch.intervalCount,
                              digestOffset: batch.requestCount, batch: batch, report: report)
                }
                previous = batch.hash
                expectedSeq = batch.seq + 1
            }
            for walk in [requests, intervals] {
                var w = walk
                while let row = w.current {
                    report(AuditProblem(kind: .insertedRow, table: w.table, rowID: row.id, batch: nil,
                                        detail: "\(row.detail) is after the last committed batch"))
                    try w.advance()
                }
            }
            return AuditVerification(
                batches: batches, requestRows: requests.count, intervalRows: intervals.count,
                headHash: batches > 0 ? hex(previous) : nil, problems: problems, truncated: truncated
            )
        }
    }

    private func check(
        _ walk: inout RowWalk, first: Int64?, count: Int, digestOffset: Int, batch: AuditBatch, report: (AuditProblem) -> Void
    ) throws {
        guard count > 0, let first else { return }
        for k in 0..<count {
            let expected = first + Int64(k)
            while let row = walk.current, row.id < expected {
                report(AuditProblem(kind: .insertedRow, table: walk.table, rowID: row.id, batch: nil,
                                    detail: "\(row.detail) is in no committed batch"))
                try walk.advance()
            }
            guard let row = walk.current, row.id == expected else {
                report(AuditProblem(kind: .removedRow, table: walk.table, rowID: expected, batch: batch.seq,
                                    detail: "row \(k + 1) of \(count) in batch \(batch.seq) of run \(batch.runId) is gone"))
                continue
            }
            let start = batch.rowDigests.startIndex + 32 * (digestOffset + k)
            if batch.rowDigests[start..<start + 32] != row.digest {
                report(AuditProblem(kind: .changedRow, table: walk.table, rowID: row.id, batch: batch.seq,
                                    detail: "\(row.detail) differs from what was committed"))
            }
            try walk.advance()
        }
    }
}
