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
        /// With `JOULE_AUDIT_KEY`: a batch or entry without a valid HMAC (a rewritten chain).
        case unauthenticated
        /// The ledger does not extend the anchor it was checked against (a cut tail, a wipe).
        case anchorMismatch = "anchor mismatch"
    }

    public var kind: Kind
    /// `request`, `clusterInterval`, `auditBatch`, `auditEntry`, or a table the entries cover
    /// (`run`, `runEvent`, `intensitySeries`, `scheduledJob`).
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
    /// Request rollup rows (one per batch and minute of arrival; digest scheme 3).
    public var rollupRows: Int = 0
    /// Batches whose request rows a recorded pruning removed (their digests still check the rest).
    public var prunedBatches: Int = 0
    /// The hash of the last batch, hex: keep it outside the ledger to detect a truncated chain.
    public var headHash: String?
    /// Entries over runs, run events, series and jobs, and the hash of the last.
    public var entries: Int = 0
    public var entryHeadHash: String?
    /// Whether HMACs were checked (`JOULE_AUDIT_KEY` set), and whether an anchor was.
    public var authenticated = false
    public var anchored = false
    /// Problems in ledger order; the first is the earliest. Capped at `limit` (see `truncated`).
    public var problems: [AuditProblem]
    public var truncated: Bool

    public var ok: Bool { problems.isEmpty }
}

/// Which stored columns a batch's row digests cover, as positions in a `RowWalk`'s rows.
private struct DigestColumns {
    var positions: [Int]
    /// Positions encoded only when not NULL (scheme 1's tail).
    var optional: Set<Int>
    /// Columns the batch names that the table no longer has.
    var missing: [String]
}

/// Walks one table's rows in row-id order alongside the chain.
private struct RowWalk {
    let table: String
    let cursor: RowCursor
    /// Every column a digest may cover, by name: position in `current.values`.
    let positions: [String: Int]
    /// A selected row's id, the values digests cover (nil when it cannot be read), and its label.
    let read: (Row) -> (id: Int64, values: [DatabaseValue]?, detail: String)
    var current: (id: Int64, values: [DatabaseValue]?, detail: String)?
    var count = 0

    /// A table whose stored columns are what its digests cover.
    init(db: Database, table: String, label: String) throws {
        self.table = table
        let names = try Row.fetchAll(db, sql: "PRAGMA table_info(\(table))").map { $0["name"] as String }.filter { $0 != "id" }
        positions = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        cursor = try Row.fetchCursor(db, sql: "SELECT id, \(label), \(names.map { "\"\($0)\"" }.joined(separator: ", ")) FROM \(table) ORDER BY id")
        read = { row in
            let label = row[1] as DatabaseValue
            return (row[0], (2..<row.count).map { row[$0] as DatabaseValue }, String.fromDatabaseValue(label) ?? "\(label)")
        }
        try advance()
    }

    /// The request table: its digests cover the record's figures, restored from the stored row.
    init(requests db: Database) throws {
        table = RequestRow.table
        positions = Dictionary(uniqueKeysWithValues: RequestRow.columns.enumerated().map { ($1, $0) })
        cursor = try Row.fetchCursor(db, sql: CompactRequest.selectAll + " ORDER BY id")
        var reader = RequestReader(db)
        read = { row in
            let id: Int64 = row[0]
            let detail = "request \(row["requestId"] as DatabaseValue) of run \(row["runId"] as DatabaseValue)"
            guard var stored = try? reader.row(row) else { return (id, nil, detail) }
            var values = ValueCollector()
            stored.visit(&values)
            return (id, values.values, detail)
        }
        try advance()
    }

    mutating func advance() throws {
        guard let row = try cursor.next() else {
            current = nil
            return
        }
        count += 1
        current = read(row)
    }

    /// The positions of `names` in this walk's rows.
    func columns(_ names: [String], optionalTail: Int = 0) -> DigestColumns {
        var found: [Int] = []
        var optional: Set<Int> = []
        var missing: [String] = []
        for (k, name) in names.enumerated() {
            guard let p = positions[name] else {
                missing.append(name)
                continue
            }
            found.append(p)
            if k >= names.count - optionalTail { optional.insert(p) }
        }
        return DigestColumns(positions: found, optional: optional, missing: missing)
    }

    /// The digest of the current row over `columns` (nil when it cannot be read).
    func digest(_ columns: DigestColumns) -> Data? {
        guard let values = current?.values else { return nil }
        var e = CanonicalEncoder()
        e.beginRow(table: table)
        for p in columns.positions {
            let value = values[p]
            if value.isNull && columns.optional.contains(p) { continue }
            e.stored(value)
        }
        return Data(SHA256.hash(data: e.bytes))
    }
}

/// Collects a row's values as SQLite would return them.
private struct ValueCollector: RowSink {
    var values: [DatabaseValue] = []
    mutating func integer(_ value: Int64) { values.append(value.databaseValue) }
    mutating func real(_ value: Double) { values.append(value.isNaN ? .null : value.databaseValue) }
    mutating func text(_ value: String) { values.append(value.databaseValue) }
    mutating func blob(_ value: [UInt8]) { values.append(Data(value).databaseValue) }
    mutating func null() { values.append(.null) }
}

extension Ledger {
    /// Recomputes the audit chain and every row's digest.
    ///
    /// Reports rows changed, removed or inserted outside Joule, and batches changed or removed,
    /// in ledger order, up to `limit` problems. Reads in one transaction: a consistent snapshot
    /// even while a daemon writes.
    public func verify(limit: Int = 20, anchor: AuditAnchor? = nil) throws -> AuditVerification {
        if let anchor, anchor.writers != nil {
            throw LedgerError.anchor("this anchor names the chains of several writers (it was taken of a PostgreSQL ledger); an SQLite ledger keeps one chain: take its anchor with `joule audit anchor` on it")
        }
        return try pool.read { db in
            var problems: [AuditProblem] = []
            var truncated = false
            func report(_ p: AuditProblem) {
                if problems.count < limit { problems.append(p) } else { truncated = true }
            }
            var requests = try RowWalk(requests: db)
            var intervals = try RowWalk(db: db, table: IntervalRow.table, label: "'unit ' || unit || ' at ' || startSeconds || ' s of run ' || runId")
            var rollups = try RowWalk(db: db, table: RollupRow.table, label: "'minute at ' || minuteSeconds || ' s of run ' || runId")
            let schemeOne = (
                requests: requests.columns(LedgerSchema.schemeOneRequestColumns, optionalTail: LedgerSchema.schemeOneOptionalTail),
                intervals: intervals.columns(LedgerSchema.schemeOneIntervalColumns)
            )
            let pruned = try Ledger.prunedBatches(db)
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
                if let key = auditKey, !key.verifies(batch.mac, of: batch.hash) {
                    report(AuditProblem(
                        kind: .unauthenticated, table: "auditBatch", rowID: batch.seq, batch: batch.seq,
                        detail: batch.mac == nil ? "it carries no HMAC" : "its HMAC does not match (written without this JOULE_AUDIT_KEY)"
                    ))
                }
                if let anchor, batch.seq == anchor.batches, hex(batch.hash) != anchor.batchHead {
                    report(AuditProblem(kind: .anchorMismatch, table: "auditBatch", rowID: batch.seq, batch: batch.seq,
                                        detail: "its hash differs from the anchor's head (\(anchor.batchHead ?? "none"))"))
                }
                let rollupCount = batch.digestScheme >= 3 ? batch.rollupCount : 0
                let expectedDigests = batch.digestBytes * (batch.requestCount + batch.intervalCount + rollupCount)
                if batch.rowDigests.count != expectedDigests {
                    report(AuditProblem(kind: .changedBatch, table: "auditBatch", rowID: batch.seq, batch: batch.seq,
                                        detail: "it holds \(batch.rowDigests.count / batch.digestBytes) row digests for \(batch.requestCount + batch.intervalCount + rollupCount) rows"))
                } else if (1...4).contains(batch.digestScheme) {
                    let covered = batch.digestScheme == 1 ? schemeOne : (
                        requests: requests.columns(batch.requestColumns?.split(separator: ",").map(String.init) ?? []),
                        intervals: intervals.columns(batch.intervalColumns?.split(separator: ",").map(String.init) ?? [])
                    )
                    let rollupColumns = rollups.columns(batch.rollupColumns?.split(separator: ",").map(String.init) ?? [])
                    let missing = covered.requests.missing + covered.intervals.missing + (rollupCount > 0 ? rollupColumns.missing : [])
                    if !missing.isEmpty {
                        report(AuditProblem(kind: .changedBatch, table: "auditBatch", rowID: batch.seq, batch: batch.seq,
                                            detail: "its digests cover columns the ledger no longer has: \(missing.joined(separator: ", "))"))
                    }
                    try check(&requests, first: batch.firstRequestRow, count: batch.requestCount, digestOffset: 0, columns: covered.requests,
                              batch: batch, hash: batch.requestsHash, pruned: pruned.contains(batch.seq), report: report)
                    try check(&intervals, first: batch.firstIntervalRow, count: batch.intervalCount,
                              digestOffset: batch.requestCount, columns: covered.intervals, batch: batch, hash: batch.intervalsHash, report: report)
                    try check(&rollups, first: batch.firstRollupRow, count: rollupCount,
                              digestOffset: batch.requestCount + batch.intervalCount, columns: rollupColumns, batch: batch,
                              hash: batch.rollupsHash, report: report)
                } else {
                    report(AuditProblem(kind: .changedBatch, table: "auditBatch", rowID: batch.seq, batch: batch.seq,
                                        detail: "digest scheme \(batch.digestScheme) is not one this version of Joule knows (1 to 4)"))
                }
                previous = batch.hash
                expectedSeq = batch.seq + 1
            }
            for walk in [requests, intervals, rollups] {
                var w = walk
                while let row = w.current {
                    report(AuditProblem(kind: .insertedRow, table: w.table, rowID: row.id, batch: nil,
                                        detail: "\(row.detail) is after the last committed batch"))
                    try w.advance()
                }
            }
            let entries = try verifyEntries(db, report: report)
            if let anchor {
                let lastBatch = try Int64.fetchOne(db, sql: "SELECT max(seq) FROM auditBatch") ?? 0
                if lastBatch < anchor.batches {
                    report(AuditProblem(kind: .anchorMismatch, table: "auditBatch", rowID: lastBatch, batch: nil,
                                        detail: "the chain ends at batch \(lastBatch); the anchor (\(anchor.takenAt)) has \(anchor.batches)"))
                }
                let lastEntry = try Int64.fetchOne(db, sql: "SELECT max(seq) FROM auditEntry") ?? 0
                if lastEntry < anchor.entries {
                    report(AuditProblem(kind: .anchorMismatch, table: "auditEntry", rowID: lastEntry, batch: nil,
                                        detail: "the entries end at \(lastEntry); the anchor (\(anchor.takenAt)) has \(anchor.entries)"))
                } else if anchor.entries > 0,
                          let hash = try Data.fetchOne(db, sql: "SELECT hash FROM auditEntry WHERE seq = ?", arguments: [anchor.entries]),
                          hex(hash) != anchor.entryHead {
                    report(AuditProblem(kind: .anchorMismatch, table: "auditEntry", rowID: anchor.entries, batch: nil,
                                        detail: "its hash differs from the anchor's head (\(anchor.entryHead ?? "none"))"))
                }
            }
            return AuditVerification(
                batches: batches, requestRows: requests.count, intervalRows: intervals.count, rollupRows: rollups.count, prunedBatches: pruned.count,
                headHash: batches > 0 ? hex(previous) : nil, entries: entries.count, entryHeadHash: entries.head.map { hex($0) },
                authenticated: auditKey != nil, anchored: anchor != nil, problems: problems, truncated: truncated
            )
        }
    }

    /// Checks the `count` rows of `batch` from row `first` against its digests: each row's digest
    /// (or, from scheme 4, its tag), and from scheme 4 the hash of the table's digests, which finds
    /// a change that a tag missed.
    fileprivate func check(
        _ walk: inout RowWalk, first: Int64?, count: Int, digestOffset: Int, columns: DigestColumns, batch: AuditBatch,
        hash: Data?, pruned: Bool = false, report: (AuditProblem) -> Void
    ) throws {
        guard count > 0, let first else { return }
        let width = batch.digestBytes
        var whole = SHA256()
        var located = false
        for k in 0..<count {
            let expected = first + Int64(k)
            while let row = walk.current, row.id < expected {
                report(AuditProblem(kind: .insertedRow, table: walk.table, rowID: row.id, batch: nil,
                                    detail: "\(row.detail) is in no committed batch"))
                try walk.advance()
            }
            guard let row = walk.current, row.id == expected else {
                // A pruned batch's rows are gone by a recorded pruning; any still here are checked.
                if pruned { continue }
                report(AuditProblem(kind: .removedRow, table: walk.table, rowID: expected, batch: batch.seq,
                                    detail: "row \(k + 1) of \(count) in batch \(batch.seq) of run \(batch.runId) is gone"))
                located = true
                continue
            }
            let start = batch.rowDigests.startIndex + width * (digestOffset + k)
            let digest = walk.digest(columns)
            if let digest { whole.update(data: digest) }
            if digest.map({ $0.prefix(width) != batch.rowDigests[start..<start + width] }) ?? true {
                report(AuditProblem(kind: .changedRow, table: walk.table, rowID: row.id, batch: batch.seq,
                                    detail: "\(row.detail) differs from what was committed"))
                located = true
            }
            try walk.advance()
        }
        if batch.digestScheme >= 4, !located, !pruned, Data(whole.finalize()) != hash {
            report(AuditProblem(
                kind: .changedRow, table: walk.table, rowID: first, batch: batch.seq,
                detail: "a row among \(walk.table) rows \(first)…\(first + Int64(count) - 1) of batch \(batch.seq) differs from what was committed (its tag did not single it out)"
            ))
        }
    }
}
