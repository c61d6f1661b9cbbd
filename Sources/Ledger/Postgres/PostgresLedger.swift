import Foundation
import Logging
import NIOSSL
import PostgresNIO
import Synchronization

/// Joule's ledger in a PostgreSQL database: the fleet store that several daemons, on several
/// hosts, write into and every report, the API and Grafana read.
///
/// The same contract as the SQLite `Ledger` (`LedgerStore`), through postgres-nio's pooled client.
/// What differs, and why:
/// - Each process writes as a **writer** (name, host, pid, heartbeat: its lease), and chains its
///   batches and entries under its own id: writers never wait on each other's chain head.
/// - Row ids are handed out in blocks per batch (`rowIdBlock`), so a batch's rows are consecutive
///   as the audit needs, while writers commit concurrently.
/// - Request rows are stored whole (every figure as a column, for SQL and Grafana), in a table
///   partitioned by day of arrival, so retention can drop whole partitions.
public final class PostgresLedger: Sendable {
    /// The database, without credentials.
    public let database: PostgresLocation
    let client: PostgresClient
    private let running: Task<Void, Never>
    let logger: Logger
    let auditKey: AuditKey?
    /// The name this process's commits are chained under.
    public let writerName: String
    /// This process's writer id, once it has registered (on its first write).
    let writer = Mutex<Int64?>(nil)
    /// Day partitions of `request` known to exist.
    let partitions = Mutex<Set<Int64>>([])
    /// The row types' OIDs (`rowTypes()`), once read.
    let types = Mutex<[String: (row: UInt32, array: UInt32)]?>(nil)

    /// Connects to `database`, creating or migrating its schema.
    ///
    /// - Parameter writer: the name this process writes under (`JOULE_WRITER`, else host/pid).
    /// - Throws: `LedgerError.unavailable` when the server cannot be reached or refuses the login.
    public init(_ database: PostgresLocation, writer: String? = nil, auditKey: AuditKey?? = nil, logger: Logger? = nil) throws {
        self.database = database
        self.auditKey = try auditKey ?? AuditKey.fromEnvironment()
        let environment = ProcessInfo.processInfo.environment
        writerName = writer ?? environment["JOULE_WRITER"].flatMap { $0.isEmpty ? nil : $0 } ?? "\(WriterLease.currentHost)/\(WriterLease.currentPID)"
        var log = logger ?? Logger(label: "joule.ledger.postgres")
        if logger == nil { log.logLevel = .critical }
        self.logger = log
        let tls: PostgresClient.Configuration.TLS
        switch database.tls {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(.makeClientConfiguration())
        case .require: tls = .require(.makeClientConfiguration())
        }
        var configuration = PostgresClient.Configuration(
            host: database.host, port: database.port, username: database.user, password: database.password, database: database.database, tls: tls
        )
        configuration.options.maximumConnections = 8
        configuration.options.connectTimeout = .seconds(10)
        let client = PostgresClient(configuration: configuration, backgroundLogger: log)
        self.client = client
        running = Task(executorPreference: BlockingExecutor.shared) { await client.run() }
        do {
            try Self.probe(database, logger: log)
            try migrate()
        } catch {
            running.cancel()
            throw error
        }
    }

    deinit { running.cancel() }

    /// Connects once, directly: an unreachable server or a refused login is reported at once
    /// (the pool would keep retrying in the background).
    private static func probe(_ database: PostgresLocation, logger: Logger) throws {
        let tls: PostgresConnection.Configuration.TLS
        do {
            switch database.tls {
            case .disable: tls = .disable
            case .prefer: tls = .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
            case .require: tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            }
        } catch {
            throw LedgerError.unavailable(location: database.description, reason: "cannot set up TLS: \(error)")
        }
        var configuration = PostgresConnection.Configuration(
            host: database.host, port: database.port, username: database.user, password: database.password, database: database.database, tls: tls
        )
        configuration.options.connectTimeout = .seconds(10)
        let config = configuration
        do {
            try blocking {
                let connection = try await PostgresConnection.connect(configuration: config, id: 0, logger: logger)
                try await connection.close()
            }
        } catch let error as PSQLError {
            if let message = error.serverInfo?[.message] {
                throw LedgerError.unavailable(location: database.description, reason: "the server said: \(message)")
            }
            throw LedgerError.unavailable(location: database.description, reason: error.underlying.map { "\($0)" } ?? "\(error.code)")
        } catch {
            throw LedgerError.unavailable(location: database.description, reason: "\(error)")
        }
    }

    // MARK: Running statements

    /// How long a call waits for a pooled connection before the ledger counts as unavailable
    /// (the pool itself would wait for the server for ever).
    static let connectionWaitSeconds = 5

    /// Runs `body` with a pooled connection, translating connection and server errors.
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) throws -> T {
        do {
            return try blocking { [self] in try await self.leased(body) }
        } catch {
            throw translate(error)
        }
    }

    /// Runs `body` in one transaction: all of it commits, or none.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) throws -> T {
        let logger = logger
        return try withConnection { connection in
            try await connection.query("BEGIN", logger: logger)
            do {
                let result = try await body(connection)
                try await connection.query("COMMIT", logger: logger)
                return result
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    /// `body` on a leased connection, or `LedgerError.unavailable` when none is leased within
    /// `connectionWaitSeconds` (the server down or unreachable). Once leased, `body` takes as
    /// long as it takes.
    private func leased<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let (client, location) = (client, database.description)
        let leased = LeaseFlag()
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await client.withConnection { c in
                    leased.value.withLock { $0 = true }
                    return try await body(c)
                }
            }
            group.addTask {
                try await Task.sleep(for: .seconds(Self.connectionWaitSeconds))
                if !leased.value.withLock({ $0 }) {
                    throw LedgerError.unavailable(location: location, reason: "no connection to the server within \(Self.connectionWaitSeconds) s")
                }
                return nil
            }
            while let result = try await group.next() {
                if let result {
                    group.cancelAll()
                    return result
                }
            }
            throw CancellationError()
        }
    }

    /// A LedgerError for what the driver or the server reported; ledger errors pass through.
    /// The connection lost, the server shutting down or restarting, too many clients: the ledger
    /// is `unavailable` (a writer keeps its batch and retries). Any other refusal by the server is
    /// `writeFailed`, which retrying does not cure.
    func translate(_ error: any Error) -> any Error {
        if error is LedgerError { return error }
        let location = database.description
        if let e = error as? PSQLError {
            if let message = e.serverInfo?[.message] {
                let code = e.serverInfo?[.sqlState] ?? ""
                if code == "53100" { return LedgerError.full(path: location, committedBatches: 0) }
                let reason = "the server said: \(message)" + (code.isEmpty ? "" : " (SQLSTATE \(code))")
                let transient = ["08", "57", "53", "40"].contains(String(code.prefix(2)))
                return transient ? LedgerError.unavailable(location: location, reason: reason) : LedgerError.writeFailed(path: location, reason: reason)
            }
            if let underlying = e.underlying {
                return LedgerError.unavailable(location: location, reason: "\(underlying)")
            }
            return LedgerError.unavailable(location: location, reason: "\(e.code)")
        }
        if error is CancellationError { return error }
        return LedgerError.unavailable(location: location, reason: "\(error)")
    }

    // MARK: Schema

    /// The schema, as named migrations applied in order, once, under an advisory lock (several
    /// daemons may start at once). A migration that has landed never changes.
    static let migrations: [(name: String, sql: String)] = [
        ("v1 fleet ledger", fleetSchema),
    ]

    static var fleetSchema: String {
        let request = PGColumnTypes.of(RequestRow.self).joined(separator: ",\n    ")
        let interval = PGColumnTypes.of(IntervalRow.self).joined(separator: ",\n    ")
        let rollup = PGColumnTypes.of(RollupRow.self).joined(separator: ",\n    ")
        return """
            CREATE TABLE writer (
                id bigserial PRIMARY KEY,
                name text NOT NULL UNIQUE,
                host text NOT NULL,
                pid bigint NOT NULL,
                startedAt double precision NOT NULL,
                heartbeatAt double precision NOT NULL
            );
            CREATE TABLE rowIdBlock (name text PRIMARY KEY, next bigint NOT NULL);
            INSERT INTO rowIdBlock VALUES ('request', 1), ('clusterInterval', 1), ('requestRollup', 1);
            CREATE TABLE run (
                id bigserial PRIMARY KEY,
                name text NOT NULL,
                source text NOT NULL,
                scenarioFile text NOT NULL,
                scenarioText text NOT NULL,
                overrides text NOT NULL,
                scenarioHash text NOT NULL,
                codeVersion text NOT NULL,
                seed bigint NOT NULL,
                startEpochSeconds double precision NOT NULL,
                intervalSeconds double precision NOT NULL,
                pacing text,
                createdAt double precision NOT NULL,
                updatedAt double precision NOT NULL,
                endedAt double precision,
                status text NOT NULL CHECK (status IN ('running', 'stopped', 'finished', 'failed')),
                message text,
                resumedFrom bigint REFERENCES run(id),
                summary text
            );
            CREATE INDEX run_on_scenarioHash ON run(scenarioHash);
            CREATE INDEX run_on_name ON run(name) WHERE status = 'running';
            CREATE TABLE runEvent (
                id bigserial PRIMARY KEY,
                runId bigint NOT NULL REFERENCES run(id),
                at double precision NOT NULL,
                status text NOT NULL,
                message text,
                host text,
                pid bigint,
                writerId bigint REFERENCES writer(id)
            );
            CREATE INDEX runEvent_on_runId ON runEvent(runId);
            CREATE TABLE request (
                id bigint NOT NULL,
                \(request)
            ) PARTITION BY RANGE (arrivalEpochSeconds);
            CREATE INDEX request_on_id ON request(id);
            CREATE TABLE clusterInterval (
                id bigint PRIMARY KEY,
                \(interval)
            );
            CREATE INDEX clusterInterval_on_runId_startSeconds ON clusterInterval(runId, startSeconds);
            CREATE INDEX clusterInterval_on_startEpochSeconds ON clusterInterval(startEpochSeconds);
            CREATE TABLE requestRollup (
                id bigint PRIMARY KEY,
                \(rollup)
            );
            CREATE INDEX requestRollup_on_runId ON requestRollup(runId);
            CREATE INDEX requestRollup_on_minuteEpochSeconds ON requestRollup(minuteEpochSeconds);
            CREATE TABLE requestCoding (
                runId bigint PRIMARY KEY REFERENCES run(id),
                startEpochSeconds double precision NOT NULL,
                intensityGramsPerKWh double precision NOT NULL,
                embodiedGramsPerGPUSecond double precision NOT NULL,
                trainingJoulesPerToken double precision NOT NULL,
                trainingGramsPerToken double precision NOT NULL,
                trainingGPUSecondsPerToken double precision NOT NULL
            );
            CREATE TABLE auditBatch (
                id bigserial UNIQUE,
                writerId bigint NOT NULL REFERENCES writer(id),
                seq bigint NOT NULL,
                runId bigint NOT NULL REFERENCES run(id),
                committedAt double precision NOT NULL,
                firstRequestRow bigint,
                requestCount bigint NOT NULL,
                firstIntervalRow bigint,
                intervalCount bigint NOT NULL,
                simulatedSeconds double precision NOT NULL,
                recordsEmitted bigint NOT NULL,
                intervalsEmitted bigint NOT NULL,
                pendingRequests bigint NOT NULL,
                pendingFacilityJoules double precision NOT NULL,
                unattributedFacilityJoules double precision NOT NULL,
                rowDigests bytea NOT NULL,
                previousHash bytea NOT NULL,
                hash bytea NOT NULL,
                digestScheme bigint NOT NULL,
                requestColumns text,
                intervalColumns text,
                mac bytea,
                firstRollupRow bigint,
                rollupCount bigint NOT NULL,
                rollupColumns text,
                minRequestId bigint,
                maxRequestId bigint,
                requestsHash bytea,
                intervalsHash bytea,
                rollupsHash bytea,
                PRIMARY KEY (writerId, seq)
            );
            CREATE INDEX auditBatch_on_runId ON auditBatch(runId, id);
            CREATE TABLE auditEntry (
                id bigserial UNIQUE,
                writerId bigint NOT NULL REFERENCES writer(id),
                seq bigint NOT NULL,
                subject text NOT NULL,
                subjectId bigint NOT NULL,
                action text NOT NULL CHECK (action IN ('write', 'delete')),
                committedAt double precision NOT NULL,
                digest bytea NOT NULL,
                previousHash bytea NOT NULL,
                hash bytea NOT NULL,
                mac bytea,
                PRIMARY KEY (writerId, seq)
            );
            CREATE TABLE intensitySeries (
                id bigserial PRIMARY KEY,
                region text NOT NULL,
                signal text NOT NULL,
                factor text NOT NULL,
                kind text NOT NULL,
                source text NOT NULL,
                issuedAt double precision,
                resolutionSeconds double precision NOT NULL,
                origin text NOT NULL,
                storedAt double precision NOT NULL
            );
            CREATE UNIQUE INDEX intensitySeries_identity ON intensitySeries(region, signal, factor, kind, source, coalesce(issuedAt, -1e300));
            CREATE TABLE intensitySample (
                seriesId bigint NOT NULL REFERENCES intensitySeries(id) ON DELETE CASCADE,
                startEpochSeconds double precision NOT NULL,
                durationSeconds double precision NOT NULL,
                gramsPerKWh double precision NOT NULL,
                PRIMARY KEY (seriesId, startEpochSeconds)
            );
            CREATE TABLE scheduledJob (
                id bigserial PRIMARY KEY,
                name text NOT NULL,
                createdAt double precision NOT NULL,
                region text NOT NULL,
                signal text NOT NULL,
                forecastSeriesId bigint REFERENCES intensitySeries(id),
                forecastOrigin text NOT NULL,
                earliestStart double precision NOT NULL,
                deadline double precision NOT NULL,
                durationSeconds double precision NOT NULL,
                energyKWh double precision NOT NULL,
                interruptible bigint NOT NULL,
                slices text NOT NULL,
                forecastGramsPerKWh double precision NOT NULL,
                baselineRegion text NOT NULL,
                startNowGramsPerKWh double precision NOT NULL
            );
            CREATE TABLE requestPruning (
                id bigserial PRIMARY KEY,
                beforeEpochSeconds double precision NOT NULL,
                throughBatch bigint NOT NULL,
                prunedAt double precision NOT NULL,
                batches bigint NOT NULL,
                requestRows bigint NOT NULL
            );
            """
    }

    /// Applies the migrations not yet applied, each in its own transaction.
    private func migrate() throws {
        let logger = logger
        let migrations = Self.migrations
        try transaction { c in
            // One process at a time; the lock ends with the transaction.
            try await c.query("SELECT pg_advisory_xact_lock(7413001)", logger: logger)
            try await c.query("CREATE TABLE IF NOT EXISTS jouleMigration (name text PRIMARY KEY, appliedAt double precision NOT NULL)", logger: logger)
            var applied: Set<String> = []
            for try await (name) in try await c.query("SELECT name FROM jouleMigration", logger: logger).decode(String.self) {
                applied.insert(name)
            }
            for m in migrations where !applied.contains(m.name) {
                for statement in m.sql.components(separatedBy: ";\n") where !statement.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                    try await c.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await c.query("INSERT INTO jouleMigration VALUES (\(m.name), \(Date().timeIntervalSince1970))", logger: logger)
            }
        }
    }

    // MARK: Queries

    /// The rows of `sql` with `arguments` bound to `$1`, `$2`, …
    static func fetch(_ c: PostgresConnection, _ sql: String, _ arguments: [PGValue] = [], logger: Logger) async throws -> [PGRow] {
        var bindings = PostgresBindings(capacity: arguments.count)
        for a in arguments { a.bind(&bindings) }
        var out: [PGRow] = []
        for try await row in try await c.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger) {
            out.append(try PGRow(row))
        }
        return out
    }

    /// Streams the rows of `sql` to `body`, one at a time.
    static func forEach(_ c: PostgresConnection, _ sql: String, _ arguments: [PGValue] = [], logger: Logger, _ body: (PGRow) throws -> Void) async throws {
        var bindings = PostgresBindings(capacity: arguments.count)
        for a in arguments { a.bind(&bindings) }
        for try await row in try await c.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger) {
            try body(try PGRow(row))
        }
    }

    static func execute(_ c: PostgresConnection, _ sql: String, _ arguments: [PGValue] = [], logger: Logger) async throws {
        _ = try await fetch(c, sql, arguments, logger: logger)
    }

    /// The rows of `sql`, on a pooled connection.
    func fetch(_ sql: String, _ arguments: [PGValue] = []) throws -> [PGRow] {
        let logger = logger
        return try withConnection { c in try await Self.fetch(c, sql, arguments, logger: logger) }
    }

    func fetchOne(_ sql: String, _ arguments: [PGValue] = []) throws -> PGRow? {
        try fetch(sql, arguments).first
    }
}

extension PGValue {
    init(_ v: Int64) { self = .integer(v) }
    init(_ v: Int) { self = .integer(Int64(v)) }
    init(_ v: Double) { self = .real(v) }
    init(_ v: String) { self = .text(v) }
    init(_ v: Int64?) { self = v.map { .integer($0) } ?? .null }
    init(_ v: Double?) { self = v.map { .real($0) } ?? .null }
    init(_ v: String?) { self = v.map { .text($0) } ?? .null }
    init(_ v: Data) { self = .blob([UInt8](v)) }
    init(_ v: Data?) { self = v.map { .blob([UInt8]($0)) } ?? .null }
}

/// Set once a call has leased its connection.
private final class LeaseFlag: Sendable {
    let value = Mutex(false)
}
