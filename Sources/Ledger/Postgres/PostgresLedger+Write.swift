import Accounting
import CarbonData
import Crypto
import Foundation
import Logging
import NIOCore
import PostgresNIO
import Serving

extension PostgresLedger {
    typealias Connection = PostgresConnection

    // MARK: Writers

    /// This process's writer id: registered on its first write, under `writerName`. A name whose
    /// holder is still alive (its process on this host, or a recent heartbeat from another host)
    /// is refused, naming the holder.
    func writerID() throws -> Int64 {
        if let id = writer.withLock({ $0 }) { return id }
        let (logger, name) = (logger, writerName)
        let now = Date().timeIntervalSince1970
        let id: Int64 = try transaction { c in
            try await Self.execute(c, "SELECT pg_advisory_xact_lock(7413002, hashtext($1))", [.text(name)], logger: logger)
            let host = WriterLease.currentHost, pid = Int64(WriterLease.currentPID)
            if let row = try await Self.fetch(c, "SELECT id, host, pid, heartbeatAt FROM writer WHERE name = $1", [.text(name)], logger: logger).first {
                let lease = WriterLease(
                    run: 0, host: try row.text("host", in: "writer"), pid: Int(try row.int("pid", in: "writer")),
                    heartbeatAt: try row.double("heartbeatAt", in: "writer")
                )
                let own = lease.host == host && lease.pid == Int(pid)
                if !own && lease.isAlive(now: now) {
                    throw LedgerError.writerTaken(name: name, holder: lease, heartbeatAgo: now - lease.heartbeatAt)
                }
                let id = try row.int("id", in: "writer")
                try await Self.execute(c, "UPDATE writer SET host = $1, pid = $2, startedAt = $3, heartbeatAt = $3 WHERE id = $4",
                                       [.text(host), .integer(pid), .real(now), .integer(id)], logger: logger)
                return id
            }
            let rows = try await Self.fetch(c, "INSERT INTO writer (name, host, pid, startedAt, heartbeatAt) VALUES ($1, $2, $3, $4, $4) RETURNING id",
                                            [.text(name), .text(host), .integer(pid), .real(now)], logger: logger)
            return try rows[0].int("id", in: "writer")
        }
        writer.withLock { $0 = id }
        return id
    }

    /// Takes this writer's row lock for the rest of the transaction: its chains' heads are read
    /// and extended by one transaction at a time (two jobs of one daemon commit concurrently).
    /// Every write transaction takes it first, before any other lock, so none waits in a cycle.
    static func lock(writer: Int64, _ c: Connection, logger: Logger) async throws {
        try await execute(c, "SELECT 1 FROM writer WHERE id = $1 FOR UPDATE", [.integer(writer)], logger: logger)
    }

    // MARK: The entry chain

    /// The columns each covered table's entry digest encodes, by name, in the SQLite schema's
    /// order and spelling (PostgreSQL folds unquoted names to lower case): a ledger copied
    /// between the backends keeps its digests.
    static let subjectColumns: [AuditSubject: [String]] = [
        .run: [
            "id", "name", "source", "scenarioFile", "scenarioText", "overrides", "scenarioHash", "codeVersion", "seed", "startEpochSeconds",
            "intervalSeconds", "pacing", "createdAt", "updatedAt", "endedAt", "status", "message", "resumedFrom", "summary",
        ],
        .runEvent: ["id", "runId", "at", "status", "message", "host", "pid", "writerId"],
        .intensitySeries: ["id", "region", "signal", "factor", "kind", "source", "issuedAt", "resolutionSeconds", "origin", "storedAt"],
        .scheduledJob: [
            "id", "name", "createdAt", "region", "signal", "forecastSeriesId", "forecastOrigin", "earliestStart", "deadline", "durationSeconds",
            "energyKWh", "interruptible", "slices", "forecastGramsPerKWh", "baselineRegion", "startNowGramsPerKWh",
        ],
        .requestPruning: ["id", "beforeEpochSeconds", "throughBatch", "prunedAt", "batches", "requestRows"],
    ]
    static let sampleColumns = ["seriesId", "startEpochSeconds", "durationSeconds", "gramsPerKWh"]

    /// Appends every non-NULL column of `row` by name and value (as `AuditSubject.encode`).
    static func encode(_ row: PGRow, columns: [String], _ e: inout CanonicalEncoder) {
        for (k, name) in columns.enumerated() where !row[k].isNull {
            e.text(name)
            row[k].encode(&e)
        }
    }

    /// The current digest of row `id` of `subject` (nil when it is gone): the same encoding as
    /// the SQLite ledger's.
    static func digest(_ subject: AuditSubject, _ id: Int64, _ c: Connection, logger: Logger) async throws -> Data? {
        let columns = subjectColumns[subject]!
        guard let row = try await fetch(c, "SELECT \(columns.joined(separator: ", ")) FROM \(subject.rawValue) WHERE id = $1", [.integer(id)], logger: logger).first
        else { return nil }
        var e = CanonicalEncoder()
        e.beginRow(table: subject.rawValue)
        encode(row, columns: columns, &e)
        switch subject {
        case .run:
            let last = try await fetch(c, "SELECT seq, hash FROM auditBatch WHERE runId = $1 ORDER BY id DESC LIMIT 1", [.integer(id)], logger: logger).first
            e.text("lastBatch")
            (last?[0] ?? .null).encode(&e)
            (last?[1] ?? .null).encode(&e)
        case .intensitySeries:
            try await forEach(c, "SELECT \(sampleColumns.joined(separator: ", ")) FROM intensitySample WHERE seriesId = $1 ORDER BY startEpochSeconds",
                              [.integer(id)], logger: logger) { s in
                e.text("sample")
                encode(s, columns: sampleColumns, &e)
            }
        case .runEvent, .scheduledJob, .requestPruning: break
        }
        return Data(SHA256.hash(data: e.bytes))
    }

    /// Appends an entry to this writer's chain recording row `id` of `subject` as it now stands,
    /// in the caller's transaction.
    static func recordEntry(
        _ subject: AuditSubject, _ id: Int64, at wallClock: Double, writer: Int64, key: AuditKey?, _ c: Connection, logger: Logger
    ) async throws {
        let head = try await fetch(c, "SELECT seq, hash FROM auditEntry WHERE writerId = $1 ORDER BY seq DESC LIMIT 1", [.integer(writer)], logger: logger).first
        let digest = try await Self.digest(subject, id, c, logger: logger)
        var entry = AuditEntry(
            seq: (head?[0].int64 ?? 0) + 1, subject: subject.rawValue, subjectId: id, action: digest == nil ? "delete" : "write",
            committedAt: wallClock, digest: digest ?? Data(), previousHash: head?[1].bytes.map { Data($0) } ?? AuditBatch.genesis, hash: Data(), mac: nil
        )
        entry.hash = entry.computeHash()
        entry.mac = key?.mac(entry.hash)
        try await execute(c, """
            INSERT INTO auditEntry (writerId, seq, subject, subjectId, action, committedAt, digest, previousHash, hash, mac)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            """, [.integer(writer), .integer(entry.seq), .text(entry.subject), .integer(id), .text(entry.action), .real(wallClock),
                  PGValue(entry.digest), PGValue(entry.previousHash), PGValue(entry.hash), PGValue(entry.mac)], logger: logger)
    }

    /// Appends a status event for run `id` (naming this process and writer when it sets the run
    /// running: its lease) and re-records the run.
    static func recordStatus(
        _ status: RunStatus, run id: Int64, message: String?, at wallClock: Double, writer: Int64, key: AuditKey?, _ c: Connection, logger: Logger
    ) async throws {
        let running = status == .running
        let rows = try await fetch(c, """
            INSERT INTO runEvent (runId, at, status, message, host, pid, writerId) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id
            """, [.integer(id), .real(wallClock), .text(status.rawValue), PGValue(message),
                  running ? .text(WriterLease.currentHost) : .null, running ? .integer(Int64(WriterLease.currentPID)) : .null,
                  .integer(writer)], logger: logger)
        try await recordEntry(.runEvent, rows[0][0].int64 ?? 0, at: wallClock, writer: writer, key: key, c, logger: logger)
        try await recordEntry(.run, id, at: wallClock, writer: writer, key: key, c, logger: logger)
    }

    /// The lease of run `id` if it is `running`: the host and pid of its last `running` event,
    /// and its last commit.
    static func lease(run id: Int64, _ c: Connection, logger: Logger) async throws -> WriterLease? {
        guard let row = try await fetch(c, """
            SELECT r.updatedAt, e.host, e.pid FROM run r
            LEFT JOIN runEvent e ON e.id = (SELECT max(id) FROM runEvent WHERE runId = r.id AND status = 'running')
            WHERE r.id = $1 AND r.status = 'running'
            """, [.integer(id)], logger: logger).first else { return nil }
        return WriterLease(
            run: id, host: try row.optionalText("host", in: "runEvent"), pid: try row.optionalInt("pid", in: "runEvent").map(Int.init),
            heartbeatAt: try row.double("updatedAt", in: "run")
        )
    }

    /// Refuses to take over run `id` while another live process holds it.
    static func claim(run id: Int64, at wallClock: Double, _ c: Connection, logger: Logger) async throws {
        if let lease = try await lease(run: id, c, logger: logger), lease.isAlive(now: wallClock),
           !(lease.host == WriterLease.currentHost && lease.pid == WriterLease.currentPID) {
            throw LedgerError.leaseHeld(lease, heartbeatAgo: wallClock - lease.heartbeatAt)
        }
    }
}

extension PostgresLedger: LedgerWriter {
    public func beginRun(_ spec: RunSpec, at wallClock: Double) throws -> Int64 {
        let writer = try writerID()
        let (logger, key) = (logger, auditKey)
        return try transaction { c in
            try await Self.lock(writer: writer, c, logger: logger)
            if spec.source == "daemon" {
                // One writer per daemon job in the whole fleet: serialised by the job's name.
                try await Self.execute(c, "SELECT pg_advisory_xact_lock(7413003, hashtext($1))", [.text(spec.name)], logger: logger)
                for row in try await Self.fetch(c, "SELECT id FROM run WHERE name = $1 AND status = 'running'", [.text(spec.name)], logger: logger) {
                    try await Self.claim(run: row[0].int64 ?? 0, at: wallClock, c, logger: logger)
                }
            }
            let rows = try await Self.fetch(c, """
                INSERT INTO run (name, source, scenarioFile, scenarioText, overrides, scenarioHash, codeVersion, seed, startEpochSeconds,
                    intervalSeconds, pacing, createdAt, updatedAt, endedAt, status, message, resumedFrom, summary)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, NULL, 'running', NULL, $13, NULL) RETURNING id
                """, [.text(spec.name), .text(spec.source), .text(spec.scenarioFile), .text(spec.scenarioText), .text(spec.overrides),
                      .text(spec.scenarioHash), .text(Ledger.codeVersion), .integer(Int64(bitPattern: spec.seed)), .real(spec.startEpochSeconds),
                      .real(spec.intervalSeconds), PGValue(spec.pacing), .real(wallClock), PGValue(spec.resumedFrom)], logger: logger)
            let id = rows[0][0].int64 ?? 0
            try await Self.recordStatus(.running, run: id, message: nil, at: wallClock, writer: writer, key: key, c, logger: logger)
            return id
        }
    }

    public func setStatus(_ status: RunStatus, run id: Int64, at wallClock: Double, message: String?, summary: String?) throws {
        let writer = try writerID()
        let (logger, key) = (logger, auditKey)
        try transaction { c in
            try await Self.lock(writer: writer, c, logger: logger)
            guard try await !Self.fetch(c, "SELECT id FROM run WHERE id = $1 FOR UPDATE", [.integer(id)], logger: logger).isEmpty else {
                throw LedgerError.unknownRun(id)
            }
            if status == .running { try await Self.claim(run: id, at: wallClock, c, logger: logger) }
            try await Self.execute(c, """
                UPDATE run SET status = $1, updatedAt = $2, message = $3, endedAt = $4, summary = coalesce($5, summary) WHERE id = $6
                """, [.text(status.rawValue), .real(wallClock), PGValue(message), status == .running ? .null : .real(wallClock),
                      PGValue(summary), .integer(id)], logger: logger)
            try await Self.recordStatus(status, run: id, message: message, at: wallClock, writer: writer, key: key, c, logger: logger)
        }
    }

    /// Reserves `count` consecutive row ids of `table` (its own short statement, so that writers
    /// never wait on each other's batches); the first, or nil for none.
    func reserveRows(_ table: String, count: Int) throws -> Int64? {
        guard count > 0 else { return nil }
        let row = try fetchOne("UPDATE rowIdBlock SET next = next + $1 WHERE name = $2 RETURNING next - $1", [.integer(Int64(count)), .text(table)])
        return row?[0].int64
    }

    /// Creates the day partitions of `request` that rows arriving at `epochs` need.
    func ensurePartitions(for epochs: some Sequence<Double>) throws {
        let days = Set(epochs.map(Self.day))
        let missing = partitions.withLock { known in days.subtracting(known) }
        guard !missing.isEmpty else { return }
        let logger = logger
        try transaction { c in
            try await Self.execute(c, "SELECT pg_advisory_xact_lock(7413004)", logger: logger)
            for day in missing.sorted() {
                let name = Self.partition(day)
                try await c.query(PostgresQuery(unsafeSQL: """
                    CREATE TABLE IF NOT EXISTS \(name) PARTITION OF request FOR VALUES FROM (\(day * 86_400)) TO (\((day + 1) * 86_400))
                    """), logger: logger)
            }
        }
        partitions.withLock { $0.formUnion(missing) }
    }

    /// Inserts `rows` into their table, with ids from `firstID` (nil: each row's own, as a copy
    /// keeps them), as binary arrays of the table's row type (`RecordArray`) of up to 25,000 rows
    /// a statement. The next chunk is encoded while the server inserts the one before (one
    /// statement in flight on the connection at a time, in order). A chunk whose requests all
    /// arrived on one day goes straight to that day's partition.
    static func insert<R: StoredRecord>(_ rows: [StoredRow<R>], firstID: Int64?, types: RowTypes, _ c: Connection, logger: Logger) async throws {
        let table = R.table.lowercased()
        guard let type = types[table] else { throw LedgerError.writeFailed(path: "", reason: "no row type for \(table)") }
        let columns = (["id"] + StoredRow<R>.columnNames).joined(separator: ", ")
        let partitioned = table == "request"
        try await withThrowingTaskGroup(of: Void.self) { group in
            var inFlight = false
            var start = 0
            while start < rows.count {
                let end = min(start + 25_000, rows.count)
                let chunk = rows[start..<end]
                var target = table
                if partitioned, let first = chunk.first {
                    let day = Self.day(first.epochSeconds)
                    if chunk.allSatisfy({ Self.day($0.epochSeconds) == day }) { target = Self.partition(day) }
                }
                var bindings = PostgresBindings(capacity: 1)
                bindings.append(RecordArray.of(chunk, firstID: firstID.map { $0 + Int64(start) }, rowType: type.row, arrayType: type.array))
                let query = PostgresQuery(unsafeSQL: "INSERT INTO \(target) (\(columns)) SELECT (x).* FROM unnest($1::\(table)[]) x", binds: bindings)
                if inFlight { try await group.next() }
                group.addTask { try await c.query(query, logger: logger) }
                inFlight = true
                start = end
            }
            try await group.waitForAll()
        }
    }

    /// The day (since 1970) a request arriving at `epochSeconds` is partitioned under, and its partition.
    static func day(_ epochSeconds: Double) -> Int64 { Int64((epochSeconds / 86_400).rounded(.down)) }
    static func partition(_ day: Int64) -> String { day >= 0 ? "request_d\(day)" : "request_m\(-day)" }

    typealias RowTypes = [String: (row: UInt32, array: UInt32)]

    /// The OIDs of the row types (and their array types) of the tables batches insert into.
    func rowTypes() throws -> RowTypes {
        if let known = types.withLock({ $0 }) { return known }
        var out: RowTypes = [:]
        for row in try fetch("""
            SELECT typname, oid::bigint, typarray::bigint FROM pg_type
            WHERE typname IN ('request', 'clusterinterval', 'requestrollup') AND typnamespace = current_schema()::regnamespace
            """) {
            if let name = row[0].string, let oid = row[1].int64, let array = row[2].int64 { out[name] = (UInt32(oid), UInt32(array)) }
        }
        types.withLock { $0 = out }
        return out
    }

    @discardableResult
    public func append(_ batch: LedgerBatch, run runID: Int64, startEpochSeconds: Double, at wallClock: Double) throws -> AuditBatch {
        let (digests, group) = try DigestJob.start(batch, run: runID, startEpochSeconds: startEpochSeconds)
        let requests = batch.records.map { RequestRow(runID: runID, runStartEpochSeconds: startEpochSeconds, record: $0) }
        let intervals = batch.intervals.map { IntervalRow(runID: runID, runStartEpochSeconds: startEpochSeconds, record: $0) }
        let writer = try writerID()
        let types = try rowTypes()
        try ensurePartitions(for: requests.map(\.epochSeconds))
        // The rollups are one per minute of arrival (`RequestRollup.of`): their ids are reserved
        // now, while the digest job is still computing them.
        let minutes = Set(batch.records.lazy.map { ((startEpochSeconds + $0.arrival) / RequestRollup.minute).rounded(.down) }).count
        let firstRequest = try reserveRows(RequestRow.table, count: requests.count)
        let firstInterval = try reserveRows(IntervalRow.table, count: intervals.count)
        let firstRollup = try reserveRows(RollupRow.table, count: minutes)
        let coding = batch.records.isEmpty ? nil : RequestCoding.learned(from: batch.records, startEpochSeconds: startEpochSeconds)
        let (logger, key) = (logger, auditKey)
        let handed = Handed(value: (requests, intervals, digests, group, batch.checkpoint))
        let (minID, maxID) = (batch.records.lazy.map(\.id).min(), batch.records.lazy.map(\.id).max())
        let recordCount = batch.records.count
        return try transaction { c in
            try await Self.lock(writer: writer, c, logger: logger)
            let (requests, intervals, digests, group, batchCheckpoint) = handed.value
            // A retry of a batch whose commit went through while the connection was lost: the
            // run's last batch already ends at this checkpoint with these requests. Nothing twice.
            if let cp = batchCheckpoint, let last = try await Self.fetch(c, """
                SELECT seq, \(Self.batchColumns.joined(separator: ", ")) FROM auditBatch WHERE runId = $1 ORDER BY id DESC LIMIT 1
                """, [.integer(runID)], logger: logger).first {
                let stored = try Self.batch(last)
                if stored.checkpoint == cp && stored.requestCount == recordCount && stored.intervalCount == intervals.count
                    && stored.minRequestId == minID && stored.maxRequestId == maxID {
                    return stored
                }
            }
            if let coding {
                try await Self.execute(c, """
                    INSERT INTO requestCoding (runId, startEpochSeconds, intensityGramsPerKWh, embodiedGramsPerGPUSecond,
                        trainingJoulesPerToken, trainingGramsPerToken, trainingGPUSecondsPerToken) VALUES ($1, $2, $3, $4, $5, $6, $7)
                    ON CONFLICT (runId) DO NOTHING
                    """, [.integer(runID), .real(coding.startEpochSeconds), .real(coding.intensityGramsPerKWh), .real(coding.embodiedGramsPerGPUSecond),
                          .real(coding.trainingJoulesPerToken), .real(coding.trainingGramsPerToken), .real(coding.trainingGPUSecondsPerToken)],
                    logger: logger)
            }
            if let firstRequest { try await Self.insert(requests, firstID: firstRequest, types: types, c, logger: logger) }
            if let firstInterval { try await Self.insert(intervals, firstID: firstInterval, types: types, c, logger: logger) }
            group.wait()
            let rollups = digests.rollups
            precondition(rollups.count == minutes, "a batch's rollups are one per minute of arrival: \(rollups.count) for \(minutes) minutes")
            let tags = digests.tags + digests.rollupTags
            let hashes = (digests.requestsHash, digests.intervalsHash, digests.rollupsHash)
            if let firstRollup { try await Self.insert(rollups, firstID: firstRollup, types: types, c, logger: logger) }
            let head = try await Self.fetch(c, "SELECT seq, hash FROM auditBatch WHERE writerId = $1 ORDER BY seq DESC LIMIT 1",
                                            [.integer(writer)], logger: logger).first
            let seq = (head?[0].int64 ?? 0) + 1
            let previous = head?[1].bytes.map { Data($0) } ?? AuditBatch.genesis
            var previousCheckpoint: Checkpoint?
            if batchCheckpoint == nil { previousCheckpoint = try await Self.lastCheckpoint(run: runID, c, logger: logger) }
            let checkpoint = batchCheckpoint ?? previousCheckpoint ?? Checkpoint(
                time: 0, records: 0, intervals: 0, pendingRequests: 0, pendingFacilityJoules: 0, unattributedFacilityJoules: 0
            )
            var entry = AuditBatch(
                seq: seq, runId: runID, committedAt: wallClock, firstRequestRow: firstRequest, requestCount: recordCount,
                firstIntervalRow: firstInterval, intervalCount: intervals.count, simulatedSeconds: checkpoint.time,
                recordsEmitted: checkpoint.records, intervalsEmitted: checkpoint.intervals, pendingRequests: checkpoint.pendingRequests,
                pendingFacilityJoules: checkpoint.pendingFacilityJoules, unattributedFacilityJoules: checkpoint.unattributedFacilityJoules,
                rowDigests: tags, previousHash: previous, hash: Data(), digestScheme: AuditBatch.currentScheme,
                requestColumns: RequestRow.columns.joined(separator: ","), intervalColumns: IntervalRow.columns.joined(separator: ","),
                firstRollupRow: firstRollup, rollupCount: rollups.count, rollupColumns: RollupRow.columnNames.joined(separator: ","),
                minRequestId: minID, maxRequestId: maxID,
                requestsHash: hashes.0, intervalsHash: hashes.1, rollupsHash: hashes.2
            )
            entry.hash = entry.computeHash(previous: previous)
            entry.mac = key?.mac(entry.hash)
            try await Self.insert(entry, writer: writer, c, logger: logger)
            try await Self.execute(c, "UPDATE run SET updatedAt = $1 WHERE id = $2", [.real(wallClock), .integer(runID)], logger: logger)
            try await Self.execute(c, "UPDATE writer SET heartbeatAt = $1 WHERE id = $2", [.real(wallClock), .integer(writer)], logger: logger)
            try await Self.recordEntry(.run, runID, at: wallClock, writer: writer, key: key, c, logger: logger)
            return entry
        }
    }

    /// The columns of `auditBatch` after its id, writer and seq, in the order `insert` binds them.
    static let batchColumns = [
        "runId", "committedAt", "firstRequestRow", "requestCount", "firstIntervalRow", "intervalCount", "simulatedSeconds", "recordsEmitted",
        "intervalsEmitted", "pendingRequests", "pendingFacilityJoules", "unattributedFacilityJoules", "rowDigests", "previousHash", "hash",
        "digestScheme", "requestColumns", "intervalColumns", "mac", "firstRollupRow", "rollupCount", "rollupColumns", "minRequestId",
        "maxRequestId", "requestsHash", "intervalsHash", "rollupsHash",
    ]

    static func insert(_ b: AuditBatch, writer: Int64, _ c: Connection, logger: Logger) async throws {
        let values: [PGValue] = [
            .integer(writer), .integer(b.seq), .integer(b.runId), .real(b.committedAt), PGValue(b.firstRequestRow), .integer(Int64(b.requestCount)),
            PGValue(b.firstIntervalRow), .integer(Int64(b.intervalCount)), .real(b.simulatedSeconds), .integer(Int64(b.recordsEmitted)),
            .integer(Int64(b.intervalsEmitted)), .integer(Int64(b.pendingRequests)), .real(b.pendingFacilityJoules), .real(b.unattributedFacilityJoules),
            PGValue(b.rowDigests), PGValue(b.previousHash), PGValue(b.hash), .integer(Int64(b.digestScheme)), PGValue(b.requestColumns),
            PGValue(b.intervalColumns), PGValue(b.mac), PGValue(b.firstRollupRow), .integer(Int64(b.rollupCount)), PGValue(b.rollupColumns),
            PGValue(b.minRequestId.map(Int64.init)), PGValue(b.maxRequestId.map(Int64.init)), PGValue(b.requestsHash), PGValue(b.intervalsHash),
            PGValue(b.rollupsHash),
        ]
        let columns = ["writerId", "seq"] + batchColumns
        try await execute(c, "INSERT INTO auditBatch (\(columns.joined(separator: ", "))) VALUES (\((1...columns.count).map { "$\($0)" }.joined(separator: ", ")))",
                          values, logger: logger)
    }

    /// An audit batch read with `SELECT seq, <batchColumns>`.
    static func batch(_ row: PGRow) throws -> AuditBatch {
        let t = "auditBatch"
        return AuditBatch(
            seq: try row.int("seq", in: t), runId: try row.int("runId", in: t), committedAt: try row.double("committedAt", in: t),
            firstRequestRow: try row.optionalInt("firstRequestRow", in: t), requestCount: Int(try row.int("requestCount", in: t)),
            firstIntervalRow: try row.optionalInt("firstIntervalRow", in: t), intervalCount: Int(try row.int("intervalCount", in: t)),
            simulatedSeconds: try row.double("simulatedSeconds", in: t), recordsEmitted: Int(try row.int("recordsEmitted", in: t)),
            intervalsEmitted: Int(try row.int("intervalsEmitted", in: t)), pendingRequests: Int(try row.int("pendingRequests", in: t)),
            pendingFacilityJoules: try row.double("pendingFacilityJoules", in: t), unattributedFacilityJoules: try row.double("unattributedFacilityJoules", in: t),
            rowDigests: try row.blob("rowDigests", in: t), previousHash: try row.blob("previousHash", in: t), hash: try row.blob("hash", in: t),
            digestScheme: Int(try row.int("digestScheme", in: t)), requestColumns: try row.optionalText("requestColumns", in: t),
            intervalColumns: try row.optionalText("intervalColumns", in: t), mac: try row.optionalBlob("mac", in: t),
            firstRollupRow: try row.optionalInt("firstRollupRow", in: t), rollupCount: Int(try row.int("rollupCount", in: t)),
            rollupColumns: try row.optionalText("rollupColumns", in: t), minRequestId: try row.optionalInt("minRequestId", in: t).map(Int.init),
            maxRequestId: try row.optionalInt("maxRequestId", in: t).map(Int.init), requestsHash: try row.optionalBlob("requestsHash", in: t),
            intervalsHash: try row.optionalBlob("intervalsHash", in: t), rollupsHash: try row.optionalBlob("rollupsHash", in: t)
        )
    }

    /// Run `id`'s last checkpoint, or nil before its first batch.
    static func lastCheckpoint(run id: Int64, _ c: Connection, logger: Logger) async throws -> Checkpoint? {
        guard let row = try await fetch(c, """
            SELECT simulatedSeconds, recordsEmitted, intervalsEmitted, pendingRequests, pendingFacilityJoules, unattributedFacilityJoules
            FROM auditBatch WHERE runId = $1 ORDER BY id DESC LIMIT 1
            """, [.integer(id)], logger: logger).first else { return nil }
        let t = "auditBatch"
        return Checkpoint(
            time: try row.double("simulatedSeconds", in: t), records: Int(try row.int("recordsEmitted", in: t)),
            intervals: Int(try row.int("intervalsEmitted", in: t)), pendingRequests: Int(try row.int("pendingRequests", in: t)),
            pendingFacilityJoules: try row.double("pendingFacilityJoules", in: t),
            unattributedFacilityJoules: try row.double("unattributedFacilityJoules", in: t)
        )
    }

    @discardableResult
    public func store(_ series: CarbonSeries, at wallClock: Double) throws -> Int64 {
        try store([series], at: wallClock)[0]
    }

    @discardableResult
    public func store(_ series: [CarbonSeries], at wallClock: Double) throws -> [Int64] {
        for s in series { try Ledger.checkStorable(s) }
        let writer = try writerID()
        let (logger, key) = (logger, auditKey)
        return try transaction { c in
            try await Self.lock(writer: writer, c, logger: logger)
            var ids: [Int64] = []
            for s in series {
                let m = s.metadata
                let identity: [PGValue] = [.text(m.region), .text(m.signal.rawValue), .text(m.factor.rawValue), .text(m.kind.rawValue), .text(m.source),
                                           .real(m.issuedAt ?? -1e300)]
                let id: Int64
                if let existing = try await Self.fetch(c, """
                    SELECT id FROM intensitySeries
                    WHERE region = $1 AND signal = $2 AND factor = $3 AND kind = $4 AND source = $5 AND coalesce(issuedAt, -1e300) = $6 FOR UPDATE
                    """, identity, logger: logger).first?[0].int64 {
                    id = existing
                    try await Self.execute(c, "UPDATE intensitySeries SET resolutionSeconds = $1, origin = $2, storedAt = $3 WHERE id = $4",
                                           [.real(m.resolutionSeconds), .text(m.origin), .real(wallClock), .integer(id)], logger: logger)
                } else {
                    id = try await Self.fetch(c, """
                        INSERT INTO intensitySeries (region, signal, factor, kind, source, issuedAt, resolutionSeconds, origin, storedAt)
                        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id
                        """, [.text(m.region), .text(m.signal.rawValue), .text(m.factor.rawValue), .text(m.kind.rawValue), .text(m.source),
                              PGValue(m.issuedAt), .real(m.resolutionSeconds), .text(m.origin), .real(wallClock)], logger: logger)[0][0].int64 ?? 0
                }
                for chunk in stride(from: 0, to: s.points.count, by: 1000) {
                    let points = s.points[chunk..<min(chunk + 1000, s.points.count)]
                    var values: [PGValue] = []
                    var tuples: [String] = []
                    for (k, p) in points.enumerated() {
                        tuples.append("($\(4 * k + 1), $\(4 * k + 2), $\(4 * k + 3), $\(4 * k + 4))")
                        values += [.integer(id), .real(p.start), .real(p.duration), .real(p.value)]
                    }
                    try await Self.execute(c, """
                        INSERT INTO intensitySample (seriesId, startEpochSeconds, durationSeconds, gramsPerKWh) VALUES \(tuples.joined(separator: ", "))
                        ON CONFLICT (seriesId, startEpochSeconds) DO UPDATE SET durationSeconds = excluded.durationSeconds, gramsPerKWh = excluded.gramsPerKWh
                        """, values, logger: logger)
                }
                try await Self.recordEntry(.intensitySeries, id, at: wallClock, writer: writer, key: key, c, logger: logger)
                ids.append(id)
            }
            return ids
        }
    }

    public func store(_ job: ScheduledJob) throws -> Int64 {
        let slices = String(decoding: try JSONEncoder().encode(job.slices), as: UTF8.self)
        let writer = try writerID()
        let (logger, key) = (logger, auditKey)
        return try transaction { c in
            try await Self.lock(writer: writer, c, logger: logger)
            let id = try await Self.fetch(c, """
                INSERT INTO scheduledJob (name, createdAt, region, signal, forecastSeriesId, forecastOrigin, earliestStart, deadline,
                    durationSeconds, energyKWh, interruptible, slices, forecastGramsPerKWh, baselineRegion, startNowGramsPerKWh)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING id
                """, [.text(job.name), .real(job.createdAt), .text(job.region), .text(job.signal.rawValue), PGValue(job.forecastSeriesId),
                      .text(job.forecastOrigin), .real(job.earliestStart), .real(job.deadline), .real(job.durationSeconds), .real(job.energyKWh),
                      .integer(job.interruptible ? 1 : 0), .text(slices), .real(job.forecastGramsPerKWh), .text(job.baselineRegion),
                      .real(job.startNowGramsPerKWh)], logger: logger)[0][0].int64 ?? 0
            try await Self.recordEntry(.scheduledJob, id, at: job.createdAt, writer: writer, key: key, c, logger: logger)
            return id
        }
    }

    /// Deletes the request rows of batches that ended by `before` (the rule of `Ledger.prunable`,
    /// over every writer's batches in commit order), recorded as a pruning in the entry chain.
    public func prune(before: Double, at wallClock: Double) throws -> PruneResult {
        guard before.isFinite else { throw LedgerError.outOfRange("before: expected a time, got \(before)") }
        let writer = try writerID()
        let (logger, key) = (logger, auditKey)
        return try transaction { c in
            try await Self.lock(writer: writer, c, logger: logger)
            try await Self.execute(c, "SELECT pg_advisory_xact_lock(7413005)", logger: logger)
            var result = PruneResult(pruning: nil, beforeEpochSeconds: before, batches: 0, requestRows: 0, keptWithoutRollups: 0, keptAsResumePoints: 0)
            let through = try await Self.fetch(c, "SELECT coalesce(max(id), 0) FROM auditBatch", logger: logger)[0][0].int64 ?? 0
            let already = try await Self.prunedBatches(c, logger: logger)
            for candidate in try await Self.prunable(before: before, through: through, c, logger: logger) where !already.contains(candidate.id) {
                switch candidate.verdict {
                case .withoutRollups: result.keptWithoutRollups += 1
                case .resumePoint: result.keptAsResumePoints += 1
                case .pruned:
                    let n = try await Self.fetch(c, "WITH gone AS (DELETE FROM request WHERE id BETWEEN $1 AND $2 RETURNING 1) SELECT count(*) FROM gone",
                                                 [.integer(candidate.firstRow), .integer(candidate.firstRow + Int64(candidate.count) - 1)],
                                                 logger: logger)[0][0].int64 ?? 0
                    result.requestRows += Int(n)
                    result.batches += 1
                }
            }
            guard result.batches > 0 else { return result }
            let id = try await Self.fetch(c, """
                INSERT INTO requestPruning (beforeEpochSeconds, throughBatch, prunedAt, batches, requestRows)
                VALUES ($1, $2, $3, $4, $5) RETURNING id
                """, [.real(before), .integer(through), .real(wallClock), .integer(Int64(result.batches)),
                      .integer(Int64(result.requestRows))], logger: logger)[0][0].int64 ?? 0
            result.pruning = id
            try await Self.recordEntry(.requestPruning, id, at: wallClock, writer: writer, key: key, c, logger: logger)
            // Day partitions with no rows left are dropped: retention frees their space at once.
            for row in try await Self.fetch(c, """
                SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent
                WHERE p.relname = 'request'
                """, logger: logger) {
                guard let name = row[0].string, name.hasPrefix("request_d") || name.hasPrefix("request_m") else { continue }
                let empty = try await Self.fetch(c, "SELECT NOT EXISTS (SELECT 1 FROM \(name))", logger: logger)[0][0].int64 == 1
                if empty { try await c.query(PostgresQuery(unsafeSQL: "DROP TABLE \(name)"), logger: logger) }
            }
            return result
        }
    }

    /// The batches with requests among those up to global id `through` that ended by `before`,
    /// and what a pruning does with each (`Ledger.prunable`'s rule).
    static func prunable(before: Double, through: Int64, _ c: Connection, logger: Logger) async throws
        -> [(id: Int64, firstRow: Int64, count: Int, verdict: Ledger.PruneVerdict)] {
        var last: [Int64: Int64] = [:]
        for row in try await fetch(c, "SELECT runId, max(id) FROM auditBatch WHERE requestCount > 0 AND id <= $1 GROUP BY runId",
                                   [.integer(through)], logger: logger) {
            last[row[0].int64 ?? 0] = row[1].int64 ?? 0
        }
        return try await fetch(c, """
            SELECT b.id, b.runId, b.firstRequestRow, b.requestCount, b.digestScheme FROM auditBatch b JOIN run r ON r.id = b.runId
            WHERE b.id <= $1 AND b.requestCount > 0 AND r.startEpochSeconds + b.simulatedSeconds <= $2 ORDER BY b.id
            """, [.integer(through), .real(before)], logger: logger).map { row in
            let id = row[0].int64 ?? 0, run = row[1].int64 ?? 0, scheme = row[4].int64 ?? 0
            let verdict: Ledger.PruneVerdict = scheme < 3 ? .withoutRollups : last[run] == id ? .resumePoint : .pruned
            return (id, row[2].int64 ?? 0, Int(row[3].int64 ?? 0), verdict)
        }
    }

    /// The global ids of every batch whose request rows a recorded pruning removed.
    static func prunedBatches(_ c: Connection, logger: Logger) async throws -> Set<Int64> {
        var out: Set<Int64> = []
        for p in try await fetch(c, "SELECT beforeEpochSeconds, throughBatch FROM requestPruning ORDER BY id", logger: logger) {
            for candidate in try await prunable(before: p[0].double ?? 0, through: p[1].int64 ?? 0, c, logger: logger) where candidate.verdict == .pruned {
                out.insert(candidate.id)
            }
        }
        return out
    }
}

extension PostgresLedger {
    @discardableResult
    public func failAbandonedRuns(at wallClock: Double) throws -> [WriterLease] {
        let writer = try writerID()
        let (logger, key) = (logger, auditKey)
        return try transaction { c in
            try await Self.lock(writer: writer, c, logger: logger)
            var marked: [WriterLease] = []
            for row in try await Self.fetch(c, "SELECT id FROM run WHERE status = 'running' AND source != 'daemon' ORDER BY id FOR UPDATE", logger: logger) {
                let id = row[0].int64 ?? 0
                guard let lease = try await Self.lease(run: id, c, logger: logger), !lease.isAlive(now: wallClock) else { continue }
                let last = WallClock.string(lease.heartbeatAt)
                try await Self.execute(c, "UPDATE run SET status = 'failed', updatedAt = $1, endedAt = $1, message = $2 WHERE id = $3", [
                    .real(wallClock), .text("abandoned: its writer (\(lease)) stopped without closing it; last commit \(last)"), .integer(id),
                ], logger: logger)
                try await Self.recordStatus(.failed, run: id, message: "abandoned by \(lease)", at: wallClock, writer: writer, key: key, c, logger: logger)
                marked.append(lease)
            }
            return marked
        }
    }
}
