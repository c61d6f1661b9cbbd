import Foundation
import GRDB

/// The ledger's schema, as named migrations. A migration that has landed never changes: a new
/// column or table is a new migration appended here.
enum LedgerSchema {
    static func migrator(key: AuditKey?) -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1 runs") { db in
            try db.execute(sql: """
                CREATE TABLE run (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    name TEXT NOT NULL,
                    source TEXT NOT NULL,
                    scenarioFile TEXT NOT NULL,
                    scenarioText TEXT NOT NULL,
                    overrides TEXT NOT NULL,
                    scenarioHash TEXT NOT NULL,
                    codeVersion TEXT NOT NULL,
                    seed INTEGER NOT NULL,
                    startEpochSeconds REAL NOT NULL,
                    intervalSeconds REAL NOT NULL,
                    pacing TEXT,
                    createdAt REAL NOT NULL,
                    updatedAt REAL NOT NULL,
                    endedAt REAL,
                    status TEXT NOT NULL CHECK (status IN ('running', 'stopped', 'finished', 'failed')),
                    message TEXT,
                    resumedFrom INTEGER REFERENCES run(id),
                    summary TEXT
                );
                CREATE INDEX run_on_scenarioHash ON run(scenarioHash);
                """)
        }
        migrator.registerMigration("v1 requests and cluster intervals") { db in
            try db.execute(sql: """
                CREATE TABLE request (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    runId INTEGER NOT NULL REFERENCES run(id),
                    requestId INTEGER NOT NULL,
                    inFlight INTEGER NOT NULL,
                    arrivalSeconds REAL NOT NULL,
                    arrivalEpochSeconds REAL NOT NULL,
                    prefillStartSeconds REAL,
                    firstTokenSeconds REAL,
                    finishSeconds REAL,
                    prefillUnit INTEGER,
                    decodeUnit INTEGER,
                    promptTokens INTEGER NOT NULL,
                    cachedTokens INTEGER NOT NULL,
                    outputTokens INTEGER NOT NULL,
                    gpuActiveJoules REAL NOT NULL,
                    gpuIdleJoules REAL NOT NULL,
                    hostJoules REAL NOT NULL,
                    facilityOverheadJoules REAL NOT NULL,
                    facilityJoules REAL NOT NULL,
                    gpuSeconds REAL NOT NULL,
                    intensityGramsPerKWh REAL NOT NULL,
                    operationalCarbonGrams REAL NOT NULL,
                    embodiedCarbonGrams REAL NOT NULL,
                    meanPowerWatts REAL NOT NULL
                );
                CREATE UNIQUE INDEX request_on_runId_requestId ON request(runId, requestId);
                CREATE INDEX request_on_requestId ON request(requestId);
                CREATE INDEX request_on_arrivalEpochSeconds ON request(arrivalEpochSeconds);
                CREATE TABLE clusterInterval (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    runId INTEGER NOT NULL REFERENCES run(id),
                    unit INTEGER NOT NULL,
                    role TEXT NOT NULL,
                    startSeconds REAL NOT NULL,
                    endSeconds REAL NOT NULL,
                    startEpochSeconds REAL NOT NULL,
                    nodes INTEGER NOT NULL,
                    gpuActiveJoules REAL NOT NULL,
                    hostActiveJoules REAL NOT NULL,
                    gpuIdleJoules REAL NOT NULL,
                    hostIdleJoules REAL NOT NULL,
                    facilityJoules REAL NOT NULL,
                    meanPowerWatts REAL NOT NULL,
                    busyFraction REAL NOT NULL,
                    inServiceSeconds REAL NOT NULL,
                    gpuSeconds REAL NOT NULL,
                    intensityGramsPerKWh REAL NOT NULL,
                    operationalCarbonGrams REAL NOT NULL
                );
                CREATE INDEX clusterInterval_on_runId_startSeconds ON clusterInterval(runId, startSeconds);
                CREATE INDEX clusterInterval_on_startEpochSeconds ON clusterInterval(startEpochSeconds);
                """)
        }
        migrator.registerMigration("v1 carbon intensity") { db in
            try db.execute(sql: """
                CREATE TABLE intensityPoint (
                    region TEXT NOT NULL,
                    signal TEXT NOT NULL,
                    source TEXT NOT NULL,
                    epochSeconds REAL NOT NULL,
                    gramsPerKWh REAL NOT NULL,
                    storedAt REAL NOT NULL,
                    PRIMARY KEY (region, signal, source, epochSeconds)
                ) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("v1 audit chain") { db in
            try db.execute(sql: """
                CREATE TABLE auditBatch (
                    seq INTEGER PRIMARY KEY,
                    runId INTEGER NOT NULL REFERENCES run(id),
                    committedAt REAL NOT NULL,
                    firstRequestRow INTEGER,
                    requestCount INTEGER NOT NULL,
                    firstIntervalRow INTEGER,
                    intervalCount INTEGER NOT NULL,
                    simulatedSeconds REAL NOT NULL,
                    recordsEmitted INTEGER NOT NULL,
                    intervalsEmitted INTEGER NOT NULL,
                    pendingRequests INTEGER NOT NULL,
                    pendingFacilityJoules REAL NOT NULL,
                    unattributedFacilityJoules REAL NOT NULL,
                    rowDigests BLOB NOT NULL,
                    previousHash BLOB NOT NULL,
                    hash BLOB NOT NULL
                );
                CREATE INDEX auditBatch_on_runId ON auditBatch(runId);
                """)
        }
        migrator.registerMigration("v2 intensity series with metadata") { db in
            // One row per series (region, signal, factor type, kind, source and, for forecasts,
            // issue time); its samples carry their own durations so gaps stay gaps. The v1 points
            // move over as actual series of unspecified factor type.
            try db.execute(sql: """
                CREATE TABLE intensitySeries (
                    id INTEGER PRIMARY KEY,
                    region TEXT NOT NULL,
                    signal TEXT NOT NULL,
                    factor TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    source TEXT NOT NULL,
                    issuedAt REAL,
                    resolutionSeconds REAL NOT NULL,
                    origin TEXT NOT NULL,
                    storedAt REAL NOT NULL
                );
                CREATE UNIQUE INDEX intensitySeries_identity ON intensitySeries(region, signal, factor, kind, source, ifnull(issuedAt, -1e300));
                CREATE TABLE intensitySample (
                    seriesId INTEGER NOT NULL REFERENCES intensitySeries(id) ON DELETE CASCADE,
                    startEpochSeconds REAL NOT NULL,
                    durationSeconds REAL NOT NULL,
                    gramsPerKWh REAL NOT NULL,
                    PRIMARY KEY (seriesId, startEpochSeconds)
                ) WITHOUT ROWID;
                CREATE INDEX intensitySample_on_start ON intensitySample(startEpochSeconds);
                INSERT INTO intensitySeries (region, signal, factor, kind, source, issuedAt, resolutionSeconds, origin, storedAt)
                    SELECT region, signal, 'unspecified', 'actual', source, NULL, 0, 'ledger v1', max(storedAt)
                    FROM intensityPoint GROUP BY region, signal, source;
                INSERT INTO intensitySample (seriesId, startEpochSeconds, durationSeconds, gramsPerKWh)
                    SELECT s.id, p.epochSeconds,
                        coalesce((SELECT min(q.epochSeconds) FROM intensityPoint q
                                  WHERE q.region = p.region AND q.signal = p.signal AND q.source = p.source AND q.epochSeconds > p.epochSeconds)
                                 - p.epochSeconds, 3600),
                        p.gramsPerKWh
                    FROM intensityPoint p JOIN intensitySeries s ON s.region = p.region AND s.signal = p.signal AND s.source = p.source;
                DROP TABLE intensityPoint;
                """)
        }
        migrator.registerMigration("v2 scheduled jobs") { db in
            try db.execute(sql: """
                CREATE TABLE scheduledJob (
                    id INTEGER PRIMARY KEY,
                    name TEXT NOT NULL,
                    createdAt REAL NOT NULL,
                    region TEXT NOT NULL,
                    signal TEXT NOT NULL,
                    forecastSeriesId INTEGER REFERENCES intensitySeries(id),
                    forecastOrigin TEXT NOT NULL,
                    earliestStart REAL NOT NULL,
                    deadline REAL NOT NULL,
                    durationSeconds REAL NOT NULL,
                    energyKWh REAL NOT NULL,
                    interruptible INTEGER NOT NULL,
                    slices TEXT NOT NULL,
                    forecastGramsPerKWh REAL NOT NULL,
                    baselineRegion TEXT NOT NULL,
                    startNowGramsPerKWh REAL NOT NULL
                );
                """)
        }
        migrator.registerMigration("v3 training share per request") { db in
            // Nullable: rows written before keep NULL here, which the audit encoding leaves out.
            try db.execute(sql: """
                ALTER TABLE request ADD COLUMN trainingTokens REAL;
                ALTER TABLE request ADD COLUMN trainingFacilityJoules REAL;
                ALTER TABLE request ADD COLUMN trainingCarbonGrams REAL;
                ALTER TABLE request ADD COLUMN trainingGPUSeconds REAL;
                """)
        }
        migrator.registerMigration("v4 versioned audit digests") { db in
            // Batches written before this migration used scheme 1 (see `AuditBatch.digestScheme`).
            try db.execute(sql: """
                ALTER TABLE auditBatch ADD COLUMN digestScheme INTEGER NOT NULL DEFAULT 1;
                ALTER TABLE auditBatch ADD COLUMN requestColumns TEXT;
                ALTER TABLE auditBatch ADD COLUMN intervalColumns TEXT;
                """)
        }
        migrator.registerMigration("v5 audit of every table") { db in
            // Status changes become appended events, and runs, their events, series and jobs get a
            // chain of their own (`AuditEntry`). The rows already here are adopted as they stand,
            // once, here: a row without an entry later is one that Joule did not write.
            try db.execute(sql: """
                CREATE TABLE runEvent (
                    id INTEGER PRIMARY KEY,
                    runId INTEGER NOT NULL REFERENCES run(id),
                    at REAL NOT NULL,
                    status TEXT NOT NULL,
                    message TEXT
                );
                CREATE INDEX runEvent_on_runId ON runEvent(runId);
                -- host and pid of the writer that set the run running (its lease), else NULL.
                ALTER TABLE runEvent ADD COLUMN host TEXT;
                ALTER TABLE runEvent ADD COLUMN pid INTEGER;
                CREATE TABLE auditEntry (
                    seq INTEGER PRIMARY KEY,
                    subject TEXT NOT NULL,
                    subjectId INTEGER NOT NULL,
                    action TEXT NOT NULL CHECK (action IN ('write', 'delete')),
                    committedAt REAL NOT NULL,
                    digest BLOB NOT NULL,
                    previousHash BLOB NOT NULL,
                    hash BLOB NOT NULL,
                    mac BLOB
                );
                ALTER TABLE auditBatch ADD COLUMN mac BLOB;
                """)
            let now = Date().timeIntervalSince1970
            for run in try Row.fetchAll(db, sql: "SELECT id, status, message, updatedAt FROM run ORDER BY id") {
                try Ledger.recordStatus(
                    RunStatus(rawValue: try run.value("status", in: "run")) ?? .failed, run: try run.value("id", in: "run"),
                    message: try run.value("message", in: "run"), at: try run.value("updatedAt", in: "run"), key: key, db
                )
            }
            for subject in [AuditSubject.intensitySeries, .scheduledJob] {
                for id in try Int64.fetchAll(db, sql: "SELECT id FROM \(subject.rawValue) ORDER BY id") {
                    try Ledger.recordEntry(subject, id, at: now, key: key, db)
                }
            }
        }
        migrator.registerMigration("v6 drop request indexes nothing needs") { db in
            // A request is found by (run, request id), through the unique index; a period is read
            // from the rows in order (a scan beats the arrival-time index for any period that
            // matters) or from the intervals. Both indexes cost most of the write time of a large run.
            try db.execute(sql: """
                DROP INDEX IF EXISTS request_on_requestId;
                DROP INDEX IF EXISTS request_on_arrivalEpochSeconds;
                """)
        }
        migrator.registerMigration("v7 request rollups") { db in
            // Per batch and minute of arrival: what its requests add up to (`RequestRollup`). Each
            // batch names its rollup rows by id range, and digest scheme 3 covers them.
            try db.execute(sql: """
                CREATE TABLE requestRollup (
                    id INTEGER PRIMARY KEY,
                    runId INTEGER NOT NULL REFERENCES run(id),
                    minuteSeconds REAL NOT NULL,
                    minuteEpochSeconds REAL NOT NULL,
                    requests INTEGER NOT NULL,
                    inFlight INTEGER NOT NULL,
                    facilityJoules REAL NOT NULL,
                    promptTokens INTEGER NOT NULL,
                    cachedTokens INTEGER NOT NULL,
                    outputTokens INTEGER NOT NULL,
                    operationalCarbonGrams REAL NOT NULL,
                    embodiedCarbonGrams REAL NOT NULL,
                    gpuSeconds REAL NOT NULL,
                    inFlightFacilityJoules REAL NOT NULL,
                    trained INTEGER NOT NULL,
                    trainingTokens REAL NOT NULL,
                    trainingFacilityJoules REAL NOT NULL,
                    trainingCarbonGrams REAL NOT NULL,
                    trainingGPUSeconds REAL NOT NULL,
                    energySketch BLOB NOT NULL,
                    ttftSketch BLOB NOT NULL,
                    tpotSketch BLOB NOT NULL,
                    e2eSketch BLOB NOT NULL
                );
                CREATE INDEX requestRollup_on_runId ON requestRollup(runId);
                CREATE INDEX requestRollup_on_minuteEpochSeconds ON requestRollup(minuteEpochSeconds);
                ALTER TABLE auditBatch ADD COLUMN firstRollupRow INTEGER;
                ALTER TABLE auditBatch ADD COLUMN rollupCount INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE auditBatch ADD COLUMN rollupColumns TEXT;
                -- What the queries read of a batch, without its row digests: columns added after
                -- the digest blob sit past its overflow pages, megabytes for a large batch.
                CREATE INDEX auditBatch_summary ON auditBatch(
                    runId, seq, requestCount, firstRequestRow, intervalCount, digestScheme, rollupCount, firstRollupRow, simulatedSeconds
                );
                """)
        }
        migrator.registerMigration("v8 request pruning") { db in
            // Each `ledger prune` (or the daemon's retention): batches among the first
            // `throughBatch` that ended by `beforeEpochSeconds` lost their request rows (the rule
            // is `Ledger.prunable`). Covered by the entry chain.
            try db.execute(sql: """
                CREATE TABLE requestPruning (
                    id INTEGER PRIMARY KEY,
                    beforeEpochSeconds REAL NOT NULL,
                    throughBatch INTEGER NOT NULL,
                    prunedAt REAL NOT NULL,
                    batches INTEGER NOT NULL,
                    requestRows INTEGER NOT NULL
                );
                """)
        }
        migrator.registerMigration("v9 compact request rows") { db in
            try compactRequests(db)
        }
        return migrator
    }

    /// Schema v9: the request table keeps each derivable figure as a residual from its derivation
    /// (`CompactRequest`, with the runs' `RequestCoding`), and drops its (runId, requestId) index:
    /// a request is found through its batch's id range (`auditBatch.minRequestId`…`maxRequestId`).
    /// Rows already here are rewritten once, keeping their ids; their figures, and so their
    /// digests, are unchanged. Batches gain the per-table hashes of digest scheme 4.
    static func compactRequests(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE requestCoding (
                runId INTEGER PRIMARY KEY REFERENCES run(id),
                startEpochSeconds REAL NOT NULL,
                intensityGramsPerKWh REAL NOT NULL,
                embodiedGramsPerGPUSecond REAL NOT NULL,
                trainingJoulesPerToken REAL NOT NULL,
                trainingGramsPerToken REAL NOT NULL,
                trainingGPUSecondsPerToken REAL NOT NULL
            );
            CREATE TABLE compactRequest (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                runId INTEGER NOT NULL REFERENCES run(id),
                requestId INTEGER NOT NULL,
                inFlight INTEGER NOT NULL,
                arrivalSeconds REAL NOT NULL,
                prefillStartSeconds REAL,
                firstTokenSeconds REAL,
                finishSeconds REAL,
                prefillUnit INTEGER,
                decodeUnit INTEGER,
                promptTokens INTEGER NOT NULL,
                cachedTokens INTEGER NOT NULL,
                outputTokens INTEGER NOT NULL,
                gpuActiveJoules REAL NOT NULL,
                gpuIdleJoules REAL NOT NULL,
                hostJoules REAL NOT NULL,
                facilityJoules REAL NOT NULL,
                gpuSeconds REAL NOT NULL,
                arrivalEpochResidual INTEGER NOT NULL,
                facilityOverheadResidual INTEGER NOT NULL,
                intensityResidual INTEGER NOT NULL,
                operationalCarbonResidual INTEGER NOT NULL,
                embodiedCarbonResidual INTEGER NOT NULL,
                meanPowerResidual INTEGER NOT NULL,
                trainingTokens REAL,
                trainingFacilityResidual INTEGER,
                trainingCarbonResidual INTEGER,
                trainingGPUSecondsResidual INTEGER
            );
            ALTER TABLE auditBatch ADD COLUMN minRequestId INTEGER;
            ALTER TABLE auditBatch ADD COLUMN maxRequestId INTEGER;
            ALTER TABLE auditBatch ADD COLUMN requestsHash BLOB;
            ALTER TABLE auditBatch ADD COLUMN intervalsHash BLOB;
            ALTER TABLE auditBatch ADD COLUMN rollupsHash BLOB;
            """)
        // Each run's coding, from its first rows, then every row in id order.
        var codings: [Int64: RequestCoding] = [:]
        for run in try Int64.fetchAll(db, sql: "SELECT DISTINCT runId FROM request ORDER BY runId") {
            let first = try Row.fetchAll(db, sql: RequestRow.selectAll + " WHERE +runId = ? ORDER BY id LIMIT 1000", arguments: [run])
                .map { try RequestRow.stored($0) }
            let start = try Double.fetchOne(db, sql: "SELECT startEpochSeconds FROM run WHERE id = ?", arguments: [run]) ?? 0
            let coding = RequestCoding.learned(from: first.map(\.record), startEpochSeconds: start)
            try coding.insert(run: run, db)
            codings[run] = coding
        }
        let insert = try db.makeStatement(sql: Ledger.insertSQL(table: "compactRequest", columns: ["id"] + CompactRequest.columns))
        let rows = try Row.fetchCursor(db, sql: RequestRow.selectAll + " ORDER BY id")
        while let row = try rows.next() {
            let stored = try RequestRow.stored(row)
            var compact = CompactRequest(stored, coding: codings[stored.runID] ?? .zero)
            var binder = StatementBinder(statement: insert.sqliteStatement)
            binder.integer(stored.rowID)
            compact.visit(&binder)
            try binder.step(db, insert)
        }
        let sequence = try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'request'")
        try db.execute(sql: """
            DROP TABLE request;
            ALTER TABLE compactRequest RENAME TO request;
            UPDATE auditBatch SET
                minRequestId = (SELECT min(requestId) FROM request WHERE id BETWEEN firstRequestRow AND firstRequestRow + requestCount - 1),
                maxRequestId = (SELECT max(requestId) FROM request WHERE id BETWEEN firstRequestRow AND firstRequestRow + requestCount - 1)
            WHERE requestCount > 0;
            DROP INDEX auditBatch_summary;
            CREATE INDEX auditBatch_summary ON auditBatch(
                runId, seq, requestCount, firstRequestRow, intervalCount, digestScheme, rollupCount, firstRollupRow, simulatedSeconds,
                minRequestId, maxRequestId
            );
            """)
        if let sequence {
            // Ids are never reused (the audit names rows by id), past the old table's too.
            try db.execute(sql: "DELETE FROM sqlite_sequence WHERE name = 'request'")
            try db.execute(sql: "INSERT INTO sqlite_sequence (name, seq) VALUES ('request', max(?, (SELECT coalesce(max(id), 0) FROM request)))",
                           arguments: [sequence])
        }
    }

    /// The columns a scheme-1 digest covers: the request columns of schema v3 (the last four
    /// encoded only when not NULL) and the interval columns of schema v1.
    static let schemeOneRequestColumns = [
        "runId", "requestId", "inFlight", "arrivalSeconds", "arrivalEpochSeconds",
        "prefillStartSeconds", "firstTokenSeconds", "finishSeconds", "prefillUnit", "decodeUnit",
        "promptTokens", "cachedTokens", "outputTokens", "gpuActiveJoules", "gpuIdleJoules", "hostJoules",
        "facilityOverheadJoules", "facilityJoules", "gpuSeconds", "intensityGramsPerKWh",
        "operationalCarbonGrams", "embodiedCarbonGrams", "meanPowerWatts",
        "trainingTokens", "trainingFacilityJoules", "trainingCarbonGrams", "trainingGPUSeconds",
    ]
    static let schemeOneOptionalTail = 4
    static let schemeOneIntervalColumns = [
        "runId", "unit", "role", "startSeconds", "endSeconds", "startEpochSeconds", "nodes",
        "gpuActiveJoules", "hostActiveJoules", "gpuIdleJoules", "hostIdleJoules", "facilityJoules",
        "meanPowerWatts", "busyFraction", "inServiceSeconds", "gpuSeconds", "intensityGramsPerKWh",
        "operationalCarbonGrams",
    ]
}
