import Foundation
import GRDB
import GRDBSQLite
import PostgresNIO
import Synchronization

/// What `LedgerCopy.copy` moved.
public struct CopyResult: Sendable, Codable, Hashable {
    public var from: String
    public var to: String
    public var runs = 0
    public var requestRows = 0
    public var intervalRows = 0
    public var rollupRows = 0
    public var batches = 0
    public var entries = 0
    public var series = 0
    public var scheduledJobs = 0
}

/// Copies a whole ledger between backends (SQLite ↔ PostgreSQL, or either to its own kind) with
/// its audit intact: every row keeps its id, every batch and entry its seq, hashes and HMAC, so
/// `audit verify` passes on the copy exactly when it passes on the original.
///
/// The target must be empty (no runs, no batches, no series). A PostgreSQL source may be copied to
/// SQLite only if one writer committed all of it: SQLite keeps one chain, and chains cannot be
/// merged without rewriting their hashes.
public enum LedgerCopy {
    /// A table copied as its stored values, by column names both schemas share.
    struct Table {
        var name: String
        var columns: [String]
        var order: String
    }

    static let tables: [Table] = [
        Table(name: "run", columns: PostgresLedger.subjectColumns[.run]!, order: "id"),
        Table(name: "runEvent", columns: ["id", "runId", "at", "status", "message", "host", "pid"], order: "id"),
        Table(name: "requestCoding", columns: [
            "runId", "startEpochSeconds", "intensityGramsPerKWh", "embodiedGramsPerGPUSecond", "trainingJoulesPerToken",
            "trainingGramsPerToken", "trainingGPUSecondsPerToken",
        ], order: "runId"),
        Table(name: "intensitySeries", columns: PostgresLedger.subjectColumns[.intensitySeries]!, order: "id"),
        Table(name: "intensitySample", columns: PostgresLedger.sampleColumns, order: "seriesId, startEpochSeconds"),
        Table(name: "scheduledJob", columns: PostgresLedger.subjectColumns[.scheduledJob]!, order: "id"),
        Table(name: "clusterInterval", columns: ["id"] + IntervalRow.columnNames, order: "id"),
        Table(name: "requestRollup", columns: ["id"] + RollupRow.columnNames, order: "id"),
        Table(name: "auditBatch", columns: ["seq"] + PostgresLedger.batchColumns, order: "seq"),
        Table(name: "auditEntry", columns: ["seq", "subject", "subjectId", "action", "committedAt", "digest", "previousHash", "hash", "mac"], order: "seq"),
        Table(name: "requestPruning", columns: PostgresLedger.subjectColumns[.requestPruning]!, order: "id"),
    ]

    /// Copies `source` into the empty `target`; `progress` hears each table as it is done.
    public static func copy(from source: any LedgerStore, to target: any LedgerStore, progress: (String) -> Void = { _ in }) throws -> CopyResult {
        var result = CopyResult(from: source.location, to: target.location)
        guard try target.runs().isEmpty, try target.storedSeries(region: nil).isEmpty, try target.scheduledJobs().isEmpty,
              try target.verify(limit: 1, anchor: nil).batches == 0 else {
            throw LedgerError.cannotOpen(path: target.location, reason: "the target of a copy must be an empty ledger")
        }
        let reader = try Reader(source)
        switch target {
        case let sqlite as Ledger:
            try sqlite.pool.writeWithoutTransaction { db in
                try db.inTransaction {
                    for table in tables {
                        let n = try reader.rows(table) { values in
                            let statement = try db.cachedStatement(sql: Ledger.insertSQL(table: table.name, columns: table.columns))
                            try statement.execute(arguments: StatementArguments(values.map { $0.databaseValue }))
                        }
                        count(table.name, n, &result)
                        progress("\(table.name): \(n) rows")
                    }
                    var codings: [Int64: RequestCoding] = [:]
                    let insert = try db.makeStatement(sql: Ledger.insertSQL(table: "request", columns: ["id"] + CompactRequest.columns))
                    result.requestRows = try reader.requests { row in
                        if codings[row.runID] == nil {
                            codings[row.runID] = try RequestCoding.fetch(run: row.runID, db) ?? .zero
                        }
                        var compact = CompactRequest(row, coding: codings[row.runID]!)
                        var binder = StatementBinder(statement: insert.sqliteStatement)
                        binder.integer(row.rowID)
                        compact.visit(&binder)
                        try binder.step(db, insert)
                    }
                    progress("request: \(result.requestRows) rows")
                    return .commit
                }
            }
        case let postgres as PostgresLedger:
            try postgres.importing(from: reader, tables: tables, result: &result, progress: progress)
        default:
            throw LedgerError.cannotOpen(path: target.location, reason: "cannot copy into this kind of ledger")
        }
        return result
    }

    static func count(_ table: String, _ n: Int, _ result: inout CopyResult) {
        switch table {
        case "run": result.runs = n
        case "clusterInterval": result.intervalRows = n
        case "requestRollup": result.rollupRows = n
        case "auditBatch": result.batches = n
        case "auditEntry": result.entries = n
        case "intensitySeries": result.series = n
        case "scheduledJob": result.scheduledJobs = n
        default: break
        }
    }

    /// Reads a source ledger's tables as stored values, and its requests as logical rows.
    struct Reader: @unchecked Sendable {
        let source: any LedgerStore

        init(_ source: any LedgerStore) throws {
            self.source = source
            if let postgres = source as? PostgresLedger {
                let writers = try postgres.fetch("""
                    SELECT count(DISTINCT writerId) FROM (SELECT writerId FROM auditBatch UNION SELECT writerId FROM auditEntry) w
                    """)[0][0].int64 ?? 0
                if writers > 1 {
                    throw LedgerError.cannotOpen(path: source.location, reason: """
                        \(writers) writers committed to it: a copy keeps each chain as it is, and SQLite (and a copy) holds one; \
                        copy a ledger one writer wrote, or keep the fleet ledger in PostgreSQL
                        """)
                }
            }
        }

        /// Streams `table`'s rows to `body`; returns how many.
        func rows(_ table: Table, _ body: ([PGValue]) throws -> Void) throws -> Int {
            var n = 0
            let sql = "SELECT \(table.columns.joined(separator: ", ")) FROM \(table.name) ORDER BY \(table.order)"
            switch source {
            case let sqlite as Ledger:
                try sqlite.read { db in
                    let cursor = try Row.fetchCursor(db, sql: sql)
                    while let row = try cursor.next() {
                        try body((0..<row.count).map { PGValue(row[$0] as DatabaseValue) })
                        n += 1
                    }
                }
            case let postgres as PostgresLedger:
                for row in try postgres.fetch(sql) {
                    try body(row.values)
                    n += 1
                }
            default: break
            }
            return n
        }

        /// Streams every request row (with its row id) to `body`; returns how many.
        func requests(_ body: (RequestRow) throws -> Void) throws -> Int {
            var n = 0
            try source.forEachRequest(RowScope()) { row in
                try body(row)
                n += 1
            }
            return n
        }
    }
}

extension PGValue {
    init(_ value: DatabaseValue) {
        switch value.storage {
        case .null: self = .null
        case .int64(let v): self = .integer(v)
        case .double(let v): self = .real(v)
        case .string(let v): self = .text(v)
        case .blob(let v): self = .blob([UInt8](v))
        }
    }

    var databaseValue: DatabaseValue {
        switch self {
        case .null: .null
        case .integer(let v): v.databaseValue
        case .real(let v): v.databaseValue
        case .text(let v): v.databaseValue
        case .blob(let v): Data(v).databaseValue
        }
    }

    /// Writes the value to a `COPY` row.
    func write(_ w: inout CopyTextWriter) {
        switch self {
        case .null: w.null()
        case .integer(let v): w.integer(v)
        case .real(let v): w.real(v)
        case .text(let v): w.text(v)
        case .blob(let v): w.blob(v)
        }
    }
}

extension PostgresLedger {
    /// Fills this (empty) ledger from `reader` in one transaction: the copy's chains become one
    /// writer's, named after the source.
    func importing(from reader: LedgerCopy.Reader, tables: [LedgerCopy.Table], result: inout CopyResult, progress: (String) -> Void) throws {
        // Rows arrive on this thread (SQLite is read here), then go to the server in COPY chunks.
        var buffers: [(table: LedgerCopy.Table, columns: [String], data: ByteBuffer, rows: Int)] = []
        var counts: [String: Int] = [:]
        let source = reader.source.location
        for table in tables {
            var columns = table.columns
            var extra: [PGValue] = []
            if table.name == "auditBatch" || table.name == "auditEntry" {
                // The global id keeps the source's commit order (a SQLite seq); the writer is the copy's.
                columns = ["id", "writerId"] + columns
                extra = [.null, .null]
            }
            var w = CopyTextWriter(capacity: 1 << 16)
            let n = try reader.rows(table) { values in
                var row = extra + values
                if !extra.isEmpty {
                    row[0] = values[0]
                    row[1] = .integer(1)
                }
                for v in row { v.write(&w) }
                w.endRow()
            }
            counts[table.name] = n
            buffers.append((table, columns, w.buffer, n))
        }
        // The day partitions every run's requests fall in: from its start to its last checkpoint.
        var days: [Double] = []
        for run in try reader.source.runs() {
            let end = run.startEpochSeconds + (try reader.source.progress(run: run.id!).checkpoint?.time ?? 0)
            days += stride(from: run.startEpochSeconds, through: end + 86_400, by: 86_400).map { $0 }
        }
        try ensurePartitions(for: days)
        let logger = logger
        let types = try rowTypes()
        let handed = Handed(value: (buffers, reader.source))
        let requestCount = Mutex(0)
        let name = "copy of \(source)"
        try transaction { c in
            let (buffers, source) = handed.value
            try await Self.execute(c, "INSERT INTO writer (id, name, host, pid, startedAt, heartbeatAt) VALUES (1, $1, $2, $3, 0, 0)",
                                   [.text(name), .text(WriterLease.currentHost), .integer(Int64(WriterLease.currentPID))], logger: logger)
            for (table, columns, data, rows) in buffers where rows > 0 {
                try await c.copyFrom(table: table.name.lowercased(), columns: columns.map { $0.lowercased() }, logger: logger) { writer in
                    try await writer.write(data)
                }
            }
            // Requests page by page in row order, each page one insert: bounded memory however large.
            var after: Int64 = 0
            while true {
                let chunk = try source.requests(after: after, limit: 50_000, runs: [])
                guard let last = chunk.last else { break }
                after = last.rowID
                requestCount.withLock { $0 += chunk.count }
                try await Self.insert(chunk, firstID: nil, types: types, c, logger: logger)
            }
            // Ids continue after the copied ones.
            for (table, key) in [("run", "id"), ("runEvent", "id"), ("intensitySeries", "id"), ("scheduledJob", "id"), ("requestPruning", "id"),
                                 ("auditBatch", "id"), ("auditEntry", "id"), ("writer", "id")] {
                try await Self.execute(c, "SELECT setval(pg_get_serial_sequence('\(table.lowercased())', '\(key)'), coalesce((SELECT max(\(key)) FROM \(table)), 0) + 1, false)",
                                       logger: logger)
            }
            for table in ["request", "clusterInterval", "requestRollup"] {
                try await Self.execute(c, "UPDATE rowIdBlock SET next = coalesce((SELECT max(id) FROM \(table)), 0) + 1 WHERE name = $1", [.text(table)], logger: logger)
            }
        }
        for table in tables {
            let n = counts[table.name] ?? 0
            LedgerCopy.count(table.name, n, &result)
            progress("\(table.name): \(n) rows")
        }
        result.requestRows = requestCount.withLock { $0 }
        progress("request: \(result.requestRows) rows")
    }
}
