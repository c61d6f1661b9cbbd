import Crypto
import Foundation
import GRDB
import GRDBSQLite
import Accounting
import Serving

/// What one commit writes: the records and intervals a run emitted since its last commit, and the
/// checkpoint that follows them.
public struct LedgerBatch: Sendable {
    public var records: [RequestRecord] = []
    public var intervals: [ClusterInterval] = []
    public var checkpoint: Checkpoint?

    public init(records: [RequestRecord] = [], intervals: [ClusterInterval] = [], checkpoint: Checkpoint? = nil) {
        self.records = records
        self.intervals = intervals
        self.checkpoint = checkpoint
    }

    public var isEmpty: Bool { records.isEmpty && intervals.isEmpty && checkpoint == nil }

    public mutating func removeAll() {
        records.removeAll(keepingCapacity: true)
        intervals.removeAll(keepingCapacity: true)
        checkpoint = nil
    }
}

/// One audit-chain entry: a committed batch.
public struct AuditBatch: Codable, Sendable, Hashable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "auditBatch"

    public var seq: Int64
    public var runId: Int64
    public var committedAt: Double
    public var firstRequestRow: Int64?
    public var requestCount: Int
    public var firstIntervalRow: Int64?
    public var intervalCount: Int
    /// The checkpoint after the batch: simulated time, records and intervals emitted since the run's
    /// start, requests held and their energy, idle energy not yet attributed.
    public var simulatedSeconds: Double
    public var recordsEmitted: Int
    public var intervalsEmitted: Int
    public var pendingRequests: Int
    public var pendingFacilityJoules: Double
    public var unattributedFacilityJoules: Double
    /// SHA-256 of each row's canonical encoding: requests, then intervals, in row order.
    public var rowDigests: Data
    public var previousHash: Data
    public var hash: Data
    /// How the row digests were computed. 1: the columns of schema v3, a NULL training column
    /// left out (batches written before digests were versioned). 2: exactly the columns named in
    /// `requestColumns` and `intervalColumns`, in that order, NULLs encoded.
    public var digestScheme: Int = AuditBatch.currentScheme
    /// The columns each request and interval digest covers (comma-separated; scheme 2).
    public var requestColumns: String?
    public var intervalColumns: String?
    /// HMAC-SHA256 of `hash` under `JOULE_AUDIT_KEY`, when the writer had the key.
    public var mac: Data?
    /// Scheme 3: the batch's request rollups (`requestRollup` rows, one per minute of arrival),
    /// named by id range like its rows, their digests after the intervals', over `rollupColumns`.
    public var firstRollupRow: Int64?
    public var rollupCount: Int = 0
    public var rollupColumns: String?
    /// Scheme 4: `rowDigests` holds the first `tagBytes` of each row's digest, which locate a
    /// changed row; each table's whole digests are hashed in row order into these, which the
    /// batch's hash covers. The smallest and largest request id of the batch find a request.
    public var minRequestId: Int?
    public var maxRequestId: Int?
    public var requestsHash: Data?
    public var intervalsHash: Data?
    public var rollupsHash: Data?

    /// The scheme new batches are written with.
    public static let currentScheme = 4

    /// Bytes `rowDigests` holds per row: the whole SHA-256 before scheme 4, a tag from it after.
    public var digestBytes: Int { digestScheme >= 4 ? AuditBatch.tagBytes : 32 }
    static let tagBytes = 4

    public var checkpoint: Checkpoint {
        Checkpoint(
            time: simulatedSeconds, records: recordsEmitted, intervals: intervalsEmitted, pendingRequests: pendingRequests,
            pendingFacilityJoules: pendingFacilityJoules, unattributedFacilityJoules: unattributedFacilityJoules
        )
    }

    /// The chain's value for the first batch's `previousHash`.
    static let genesis = Data(repeating: 0, count: 32)

    /// SHA-256 over the previous hash, the canonical encoding of this entry's fields, and the row digests.
    func computeHash(previous: Data) -> Data {
        var e = CanonicalEncoder()
        e.text("auditBatch")
        e.integer(seq)
        e.integer(runId)
        e.real(committedAt)
        e.integer(firstRequestRow.map(Int.init))
        e.integer(requestCount)
        e.integer(firstIntervalRow.map(Int.init))
        e.integer(intervalCount)
        e.real(simulatedSeconds)
        e.integer(recordsEmitted)
        e.integer(intervalsEmitted)
        e.integer(pendingRequests)
        e.real(pendingFacilityJoules)
        e.real(unattributedFacilityJoules)
        if digestScheme >= 2 {
            e.integer(digestScheme)
            e.text(requestColumns ?? "")
            e.text(intervalColumns ?? "")
        }
        if digestScheme >= 3 {
            e.integer(firstRollupRow.map(Int.init))
            e.integer(rollupCount)
            e.text(rollupColumns ?? "")
        }
        if digestScheme >= 4 {
            e.integer(minRequestId)
            e.integer(maxRequestId)
            for h in [requestsHash, intervalsHash, rollupsHash] {
                if let h { e.blob([UInt8](h)) } else { e.null() }
            }
        }
        var h = SHA256()
        h.update(data: previous)
        h.update(data: e.bytes)
        h.update(data: rowDigests)
        return Data(h.finalize())
    }
}

/// Computes the digests of a batch's rows (requests, then intervals), and its rollups with their
/// digests, off the writing thread: each row's tag, and each table's hash (digest scheme 4).
final class DigestJob: @unchecked Sendable {
    /// Written by `compute` before its dispatch group leaves; read after waiting on the group.
    var tags = Data()
    var rollups: [RollupRow] = []
    var rollupTags = Data()
    var requestsHash = Data()
    var intervalsHash = Data()
    var rollupsHash = Data()

    /// Appends the tag of the row `encoder` holds to `tags`, and its whole digest to `table`.
    private static func add(_ encoder: CanonicalEncoder, to tags: inout Data, _ table: inout SHA256) {
        let digest = SHA256.hash(data: encoder.bytes)
        digest.withUnsafeBytes { bytes in
            tags.append(contentsOf: bytes.prefix(AuditBatch.tagBytes))
            table.update(bufferPointer: bytes)
        }
    }

    /// Refuses a batch that holds a request id twice (`LedgerError.duplicateRequest`), then
    /// starts its digests on another core, to be waited for on the returned group: the rows'
    /// digests do not depend on where the rows land, so they are computed while they are written.
    static func start(_ batch: LedgerBatch, run: Int64, startEpochSeconds: Double) throws -> (DigestJob, DispatchGroup) {
        var ids = Set<Int>(minimumCapacity: batch.records.count)
        for r in batch.records where !ids.insert(r.id).inserted {
            throw LedgerError.duplicateRequest(id: r.id, run: run)
        }
        let job = DigestJob()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { job.compute(batch, run: run, startEpochSeconds: startEpochSeconds) }
        return (job, group)
    }

    func compute(_ batch: LedgerBatch, run: Int64, startEpochSeconds: Double) {
        var out = Data(capacity: AuditBatch.tagBytes * (batch.records.count + batch.intervals.count))
        var encoder = CanonicalEncoder()
        var requests = SHA256(), intervals = SHA256(), rollupHash = SHA256()
        for record in batch.records {
            encoder.beginRow(table: RequestRow.table)
            var row = RequestRow(runID: run, runStartEpochSeconds: startEpochSeconds, record: record)
            row.visit(&encoder)
            Self.add(encoder, to: &out, &requests)
        }
        for interval in batch.intervals {
            encoder.beginRow(table: IntervalRow.table)
            var row = IntervalRow(runID: run, runStartEpochSeconds: startEpochSeconds, record: interval)
            row.visit(&encoder)
            Self.add(encoder, to: &out, &intervals)
        }
        tags = out
        // What the requests add up to, per minute of arrival; a digest does not depend on row ids.
        rollups = RequestRollup.of(batch.records, runStartEpochSeconds: startEpochSeconds).map {
            RollupRow(runID: run, runStartEpochSeconds: startEpochSeconds, record: $0)
        }
        for var row in rollups {
            encoder.beginRow(table: RollupRow.table)
            row.visit(&encoder)
            Self.add(encoder, to: &rollupTags, &rollupHash)
        }
        requestsHash = Data(requests.finalize())
        intervalsHash = Data(intervals.finalize())
        rollupsHash = Data(rollupHash.finalize())
    }
}

/// Binds a row's values straight to a GRDB statement's SQLite statement, parameter by parameter,
/// and steps it: the hot path of `append`, which skips building `StatementArguments` (an array of
/// `DatabaseValue`s) for every row. It runs inside GRDB's write transaction, on GRDB's connection,
/// and turns a failed step into GRDB's `DatabaseError`.
struct StatementBinder: RowSink {
    let statement: SQLiteStatement
    var index: Int32 = 0

    mutating func integer(_ value: Int64) {
        index += 1
        sqlite3_bind_int64(statement, index, value)
    }

    mutating func real(_ value: Double) {
        index += 1
        sqlite3_bind_double(statement, index, value)
    }

    mutating func text(_ value: String) {
        index += 1
        sqlite3_bind_text(statement, index, value, -1, SQLITE_TRANSIENT)
    }

    mutating func null() {
        index += 1
        sqlite3_bind_null(statement, index)
    }

    mutating func blob(_ value: [UInt8]) {
        index += 1
        if value.isEmpty {
            sqlite3_bind_zeroblob(statement, index, 0)
        } else {
            value.withUnsafeBytes { _ = sqlite3_bind_blob(statement, index, $0.baseAddress, Int32($0.count), SQLITE_TRANSIENT) }
        }
    }

    /// Executes the bound statement and resets it for the next row.
    func step(_ db: Database, _ owner: Statement) throws {
        let code = sqlite3_step(statement)
        sqlite3_reset(statement)
        guard code == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: db.lastErrorMessage, sql: owner.sql)
        }
    }
}

/// SQLite's "copy the bytes now" destructor, which Swift cannot import as a macro.
private let SQLITE_TRANSIENT = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

extension Ledger {
    static func insertSQL(table: String, columns: [String]) -> String {
        "INSERT INTO \(table) (\(columns.joined(separator: ", "))) VALUES (\(Array(repeating: "?", count: columns.count).joined(separator: ", ")))"
    }

    /// Commits `batch` for run `runID` in one transaction, with its audit-chain entry.
    ///
    /// Either all of it is committed or none. A full disk throws `LedgerError.full`; a request id
    /// twice in the batch throws `LedgerError.duplicateRequest` and commits nothing. (Across
    /// batches nothing is looked up while writing: a run's rows that outnumber its checkpoint's
    /// records fail `reconcile`.)
    @discardableResult
    public func append(_ batch: LedgerBatch, run runID: Int64, startEpochSeconds: Double, at wallClock: Double) throws -> AuditBatch {
        let (digests, group) = try DigestJob.start(batch, run: runID, startEpochSeconds: startEpochSeconds)
        defer { group.wait() }
        return try write { db in
            let head = try Row.fetchOne(db, sql: "SELECT seq, hash FROM auditBatch ORDER BY seq DESC LIMIT 1")
            let seq: Int64 = (head?["seq"] ?? 0) + 1
            let previous: Data = head?["hash"] ?? AuditBatch.genesis

            let firstRequest = try Ledger.insertRequests(batch.records, run: runID, startEpochSeconds: startEpochSeconds, db)
            let firstInterval = try Ledger.insert(batch.intervals, as: IntervalRow.self, db) { i in
                IntervalRow(runID: runID, runStartEpochSeconds: startEpochSeconds, record: i)
            }
            group.wait()
            let rollups = digests.rollups
            let firstRollup = try Ledger.insert(rollups, as: RollupRow.self, db) { $0 }

            // A batch without a checkpoint of its own carries the run's last one forward.
            let checkpoint = try batch.checkpoint
                ?? Ledger.lastCheckpoint(run: runID, db)
                ?? Checkpoint(
                time: 0, records: 0, intervals: 0, pendingRequests: 0, pendingFacilityJoules: 0, unattributedFacilityJoules: 0
            )
            var entry = AuditBatch(
                seq: seq, runId: runID, committedAt: wallClock, firstRequestRow: firstRequest, requestCount: batch.records.count,
                firstIntervalRow: firstInterval, intervalCount: batch.intervals.count, simulatedSeconds: checkpoint.time,
                recordsEmitted: checkpoint.records, intervalsEmitted: checkpoint.intervals, pendingRequests: checkpoint.pendingRequests,
                pendingFacilityJoules: checkpoint.pendingFacilityJoules, unattributedFacilityJoules: checkpoint.unattributedFacilityJoules,
                rowDigests: digests.tags + digests.rollupTags, previousHash: previous, hash: Data(), digestScheme: AuditBatch.currentScheme,
                requestColumns: RequestRow.columns.joined(separator: ","), intervalColumns: IntervalRow.columns.joined(separator: ","),
                firstRollupRow: firstRollup, rollupCount: rollups.count, rollupColumns: RollupRow.columnNames.joined(separator: ","),
                minRequestId: batch.records.isEmpty ? nil : batch.records.lazy.map(\.id).min(),
                maxRequestId: batch.records.isEmpty ? nil : batch.records.lazy.map(\.id).max(),
                requestsHash: digests.requestsHash, intervalsHash: digests.intervalsHash, rollupsHash: digests.rollupsHash
            )
            entry.hash = entry.computeHash(previous: previous)
            entry.mac = auditKey?.mac(entry.hash)
            try entry.insert(db)
            try db.execute(sql: "UPDATE run SET updatedAt = ? WHERE id = ?", arguments: [wallClock, runID])
            // The run's entry now names this batch as its last: a cut batch tail shows as a changed run.
            try Ledger.recordEntry(.run, runID, at: wallClock, key: auditKey, db)
            return entry
        }
    }

    /// Inserts `items` into `table` with one prepared statement; returns the first row's id (nil
    /// when there are none). The rows of one transaction get consecutive ids: the audit batch names
    /// them by that range.
    static func insert<T, R: StoredRecord>(_ items: [T], as: StoredRow<R>.Type, _ db: Database, row: (T) -> StoredRow<R>) throws -> Int64? {
        guard !items.isEmpty else { return nil }
        let statement = try db.cachedStatement(sql: insertSQL(table: R.table, columns: StoredRow<R>.columnNames))
        var first: Int64?
        for item in items {
            var binder = StatementBinder(statement: statement.sqliteStatement)
            var r = row(item)
            r.visit(&binder)
            try binder.step(db, statement)
            if first == nil { first = db.lastInsertedRowID }
        }
        let expectedLast = first! + Int64(items.count - 1)
        precondition(db.lastInsertedRowID == expectedLast, "\(R.table) rows of one batch must have consecutive ids: last \(db.lastInsertedRowID), expected \(expectedLast)")
        return first
    }

    /// Inserts a batch's request records in their stored form (`CompactRequest`), learning the
    /// run's coding from them if it has none; returns the first row's id (nil when none).
    static func insertRequests(_ records: [RequestRecord], run runID: Int64, startEpochSeconds: Double, _ db: Database) throws -> Int64? {
        guard !records.isEmpty else { return nil }
        let coding: RequestCoding
        if let known = try RequestCoding.fetch(run: runID, db) {
            coding = known
        } else {
            coding = RequestCoding.learned(from: records, startEpochSeconds: startEpochSeconds)
            try coding.insert(run: runID, db)
        }
        let statement = try db.cachedStatement(sql: CompactRequest.insertSQL)
        var first: Int64?
        for record in records {
            var binder = StatementBinder(statement: statement.sqliteStatement)
            var compact = CompactRequest(RequestRow(runID: runID, runStartEpochSeconds: startEpochSeconds, record: record), coding: coding)
            compact.visit(&binder)
            try binder.step(db, statement)
            if first == nil { first = db.lastInsertedRowID }
        }
        let expectedLast = first! + Int64(records.count - 1)
        precondition(db.lastInsertedRowID == expectedLast, "request rows of one batch must have consecutive ids: last \(db.lastInsertedRowID), expected \(expectedLast)")
        return first
    }

    /// The checkpoint of run `id`'s last batch, read without the batch's row digests (megabytes
    /// for a large batch); nil before its first.
    static func lastCheckpoint(run id: Int64, _ db: Database) throws -> Checkpoint? {
        guard let row = try Row.fetchOne(db, sql: """
            SELECT simulatedSeconds, recordsEmitted, intervalsEmitted, pendingRequests, pendingFacilityJoules, unattributedFacilityJoules
            FROM auditBatch WHERE runId = ? ORDER BY seq DESC LIMIT 1
            """, arguments: [id]) else { return nil }
        let t = "auditBatch"
        return Checkpoint(
            time: try row.value("simulatedSeconds", in: t), records: try row.value("recordsEmitted", in: t),
            intervals: try row.value("intervalsEmitted", in: t), pendingRequests: try row.value("pendingRequests", in: t),
            pendingFacilityJoules: try row.value("pendingFacilityJoules", in: t),
            unattributedFacilityJoules: try row.value("unattributedFacilityJoules", in: t)
        )
    }

    /// Where a stored run stands: its last checkpoint and the id of the last request it stored.
    public struct RunProgress: Sendable, Hashable {
        public var batches: Int
        public var storedRequests: Int
        public var storedIntervals: Int
        public var lastRequestID: Int?
        public var checkpoint: Checkpoint?

        /// A run with nothing stored.
        public static let empty = RunProgress(batches: 0, storedRequests: 0, storedIntervals: 0, lastRequestID: nil, checkpoint: nil)
    }

    /// The progress of run `id`, for resuming it: read from its audit batches, which count its
    /// rows and name where they are (quick however many rows it has; `audit verify` checks that
    /// the rows are what the batches say).
    public func progress(run id: Int64) throws -> RunProgress {
        try pool.read { db in
            let last = try Ledger.lastCheckpoint(run: id, db)
            let counts = try Row.fetchOne(db, sql: """
                SELECT count(*) AS b, coalesce(sum(requestCount), 0) AS r, coalesce(sum(intervalCount), 0) AS i,
                       max(CASE WHEN requestCount > 0 THEN firstRequestRow + requestCount - 1 END) AS lastRow
                FROM auditBatch WHERE runId = ?
                """, arguments: [id])
            let lastRow = try counts?.value("lastRow", in: "auditBatch") as Int64?
            return RunProgress(
                batches: try counts?.value("b", in: "auditBatch") ?? 0,
                storedRequests: try counts?.value("r", in: "auditBatch") ?? 0,
                storedIntervals: try counts?.value("i", in: "auditBatch") ?? 0,
                lastRequestID: try lastRow.flatMap { try Int.fetchOne(db, sql: "SELECT requestId FROM request WHERE id = ?", arguments: [$0]) },
                checkpoint: last
            )
        }
    }
}
