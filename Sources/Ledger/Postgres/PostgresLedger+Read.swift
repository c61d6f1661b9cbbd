import Accounting
import CarbonData
import Foundation
import Logging
import PostgresNIO
import Scheduling
import Serving

extension PostgresLedger: LedgerQueries {
    public var location: String { database.description }

    static let runColumns = PostgresLedger.subjectColumns[.run]!

    static func storedRun(_ row: PGRow) throws -> StoredRun {
        let t = "run"
        return StoredRun(
            id: try row.int("id", in: t), name: try row.text("name", in: t), source: try row.text("source", in: t),
            scenarioFile: try row.text("scenarioFile", in: t), scenarioText: try row.text("scenarioText", in: t),
            overrides: try row.text("overrides", in: t), scenarioHash: try row.text("scenarioHash", in: t),
            codeVersion: try row.text("codeVersion", in: t), seed: try row.int("seed", in: t),
            startEpochSeconds: try row.double("startEpochSeconds", in: t), intervalSeconds: try row.double("intervalSeconds", in: t),
            pacing: try row.optionalText("pacing", in: t), createdAt: try row.double("createdAt", in: t), updatedAt: try row.double("updatedAt", in: t),
            endedAt: try row.optionalDouble("endedAt", in: t),
            status: try RunStatus(rawValue: row.text("status", in: t)) ?? { throw LedgerError.unreadable(table: t, row: nil, column: "status", value: "\(row["status"])") }(),
            message: try row.optionalText("message", in: t), resumedFrom: try row.optionalInt("resumedFrom", in: t),
            summary: try row.optionalText("summary", in: t)
        )
    }

    public func runs() throws -> [StoredRun] {
        try fetch("SELECT \(Self.runColumns.joined(separator: ", ")) FROM run ORDER BY id DESC").map(Self.storedRun)
    }

    public func run(_ id: Int64) throws -> StoredRun {
        guard let row = try fetchOne("SELECT \(Self.runColumns.joined(separator: ", ")) FROM run WHERE id = $1", [.integer(id)]) else {
            throw LedgerError.unknownRun(id)
        }
        return try Self.storedRun(row)
    }

    public func newestRun(scenarioHash: String, name: String) throws -> StoredRun? {
        try fetchOne("SELECT \(Self.runColumns.joined(separator: ", ")) FROM run WHERE scenarioHash = $1 AND name = $2 ORDER BY id DESC LIMIT 1",
                     [.text(scenarioHash), .text(name)]).map(Self.storedRun)
    }

    public func overview(_ run: StoredRun) throws -> RunOverview {
        RunOverview(run, progress: try progress(run: run.id!), writer: try writers()[run.id!])
    }

    public func overviews() throws -> [RunOverview] {
        let writers = try writers()
        return try runs().map { RunOverview($0, progress: try progress(run: $0.id!), writer: writers[$0.id!]) }
    }

    public func writers() throws -> [Int64: String] {
        var out: [Int64: String] = [:]
        // The writer of a run's latest event, else (a copied ledger's runs) of its latest batch.
        for row in try fetch("""
            SELECT r.id, coalesce(
                (SELECT w.name FROM runEvent e JOIN writer w ON w.id = e.writerId WHERE e.runId = r.id ORDER BY e.id DESC LIMIT 1),
                (SELECT w.name FROM auditBatch b JOIN writer w ON w.id = b.writerId WHERE b.runId = r.id ORDER BY b.id DESC LIMIT 1))
            FROM run r
            """) {
            if let id = row[0].int64, let name = row[1].string { out[id] = name }
        }
        return out
    }

    public func progress(run id: Int64) throws -> Ledger.RunProgress {
        let logger = logger
        return try withConnection { c in
            let last = try await Self.lastCheckpoint(run: id, c, logger: logger)
            let counts = try await Self.fetch(c, """
                SELECT count(*), coalesce(sum(requestCount), 0)::bigint, coalesce(sum(intervalCount), 0)::bigint,
                       max(CASE WHEN requestCount > 0 THEN firstRequestRow + requestCount - 1 END)
                FROM auditBatch WHERE runId = $1
                """, [.integer(id)], logger: logger)[0]
            var lastID: Int?
            if let lastRow = counts[3].int64 {
                lastID = try await Self.fetch(c, "SELECT requestId FROM request WHERE id = $1", [.integer(lastRow)], logger: logger).first?[0].int64.map(Int.init)
            }
            return Ledger.RunProgress(
                batches: Int(counts[0].int64 ?? 0), storedRequests: Int(counts[1].int64 ?? 0), storedIntervals: Int(counts[2].int64 ?? 0),
                lastRequestID: lastID, checkpoint: last
            )
        }
    }

    static var requestSelect: String { RequestRow.selectAll }
    static var intervalSelect: String { IntervalRow.selectAll }
    static var rollupSelect: String { RollupRow.selectAll }

    /// The span of row ids the runs' batches name, or nil when they committed no requests.
    static func requestSpan(runs: [Int64], _ c: Connection, logger: Logger) async throws -> ClosedRange<Int64>? {
        let row = try await fetch(c, """
            SELECT min(firstRequestRow), max(firstRequestRow + requestCount - 1) FROM auditBatch WHERE runId = ANY($1) AND requestCount > 0
            """, [], logger: logger, array: runs)[0]
        guard let lo = row[0].int64, let hi = row[1].int64, lo <= hi else { return nil }
        return lo...hi
    }

    public func requests(run: Int64, _ q: RequestQuery) throws -> (items: [RequestRow], next: Int64?) {
        _ = try self.run(run)
        let limit = max(1, min(q.limit, 1000))
        var sql = Self.requestSelect + " WHERE runId = $1 AND id > $2"
        var arguments: [PGValue] = [.integer(run), .integer(q.after ?? 0)]
        func add(_ condition: String, _ value: Double?) {
            guard let value else { return }
            arguments.append(.real(value))
            sql += " AND " + condition.replacingOccurrences(of: "?", with: "$\(arguments.count)")
        }
        add("arrivalEpochSeconds >= ?", q.from)
        add("arrivalEpochSeconds < ?", q.to)
        add("(\(RequestRow.endToEndSQL)) >= ?", q.minimumLatencySeconds)
        add("facilityJoules >= ?", q.minimumJoules)
        arguments.append(.integer(Int64(limit + 1)))
        sql += " ORDER BY id LIMIT $\(arguments.count)"
        let rows = try fetch(sql, arguments).map(RequestRow.stored)
        let items = Array(rows.prefix(limit))
        return (items, rows.count > limit ? items.last?.rowID : nil)
    }

    public func breakdown(request id: Int, run: Int64?) throws -> RequestBreakdown {
        var sql = """
            SELECT firstRequestRow, requestCount, runId, seq FROM auditBatch
            WHERE requestCount > 0 AND (minRequestId IS NULL OR (minRequestId <= $1 AND maxRequestId >= $1))
            """
        var arguments: [PGValue] = [.integer(Int64(id))]
        if let run {
            sql += " AND runId = $2"
            arguments.append(.integer(run))
        }
        var found: [(row: RequestRow, batch: Int64)] = []
        for b in try fetch(sql + " ORDER BY id", arguments) {
            let first = b[0].int64 ?? 0, count = b[1].int64 ?? 0
            for r in try fetch(Self.requestSelect + " WHERE id BETWEEN $1 AND $2 AND requestId = $3", [.integer(first), .integer(first + count - 1), .integer(Int64(id))]) {
                found.append((try RequestRow.stored(r), b[3].int64 ?? 0))
            }
        }
        let runID = try RequestBreakdown.run(of: id, named: run, holding: found.map(\.row.runID)) { id in
            try fetchOne("SELECT id FROM run WHERE id = $1", [.integer(id)]) != nil
        }
        guard let hit = found.first(where: { $0.row.runID == runID }) else { throw LedgerError.unknownRequest(id: id, run: runID) }
        return RequestBreakdown(try self.run(runID), batch: hit.batch, record: hit.row.record)
    }

    /// `scope`'s WHERE clause on `timeColumn`, with its arguments numbered from `$1`.
    static func clause(_ scope: RowScope, time timeColumn: String, requests: Bool) -> (sql: String, arguments: [PGValue]) {
        var parts: [String] = []
        var arguments: [PGValue] = []
        if !scope.runs.isEmpty {
            parts.append("runId IN (\(scope.runs.map(String.init).joined(separator: ",")))")
        }
        if let from = scope.from {
            arguments.append(.real(from))
            parts.append("\(timeColumn) >= $\(arguments.count)")
        }
        if let to = scope.to {
            arguments.append(.real(to))
            parts.append("\(timeColumn) < $\(arguments.count)")
        }
        if requests && scope.finishedOnly { parts.append("inFlight = 0") }
        return (parts.isEmpty ? "" : " WHERE " + parts.joined(separator: " AND "), arguments)
    }

    /// Streams rows of `sql` through `decode` to `body`, on the calling thread, a bounded number
    /// in hand at a time: the query's task decodes rows into a pipe that this thread drains.
    private func stream<R: Sendable>(_ sql: String, _ arguments: [PGValue], decode: @escaping @Sendable (PGRow) throws -> R, _ body: (R) throws -> Void) throws {
        let (client, logger) = (client, logger)
        let pipe = RowPipe<R>(capacity: 4096)
        Task(executorPreference: BlockingExecutor.shared) {
            do {
                try await client.withConnection { c in
                    try await Self.forEach(c, sql, arguments, logger: logger) { row in
                        guard pipe.put(try decode(row)) else { throw CancellationError() }
                    }
                }
                pipe.finish(nil)
            } catch {
                pipe.finish(error)
            }
        }
        do {
            while let item = try pipe.take() { try body(item) }
        } catch {
            pipe.cancel()
            throw error is LedgerError ? error : translate(error)
        }
    }

    public func forEachRequest(_ scope: RowScope, _ body: (RequestRow) throws -> Void) throws {
        let (clause, arguments) = Self.clause(scope, time: "arrivalEpochSeconds", requests: true)
        try stream(Self.requestSelect + clause + " ORDER BY id", arguments, decode: RequestRow.stored, body)
    }

    public func forEachInterval(_ scope: RowScope, _ body: (IntervalRow) throws -> Void) throws {
        let (clause, arguments) = Self.clause(scope, time: "startEpochSeconds", requests: false)
        try stream(Self.intervalSelect + clause + " ORDER BY id", arguments, decode: IntervalRow.stored, body)
    }

    public func rollups(_ scope: RowScope) throws -> [RollupRow]? {
        let wholeMinutes = [scope.from, scope.to].allSatisfy { bound in
            bound.map { $0.truncatingRemainder(dividingBy: RequestRollup.minute) == 0 } ?? true
        }
        guard wholeMinutes, try runsWithoutRollups(among: scope.runs).isEmpty else { return nil }
        let (clause, arguments) = Self.clause(scope, time: "minuteEpochSeconds", requests: false)
        return try fetch(Self.rollupSelect + clause + " ORDER BY id", arguments).map(RollupRow.stored)
    }

    public func intervalTotals(run id: Int64) throws -> IntervalTotals {
        let r = try fetchOne("""
            SELECT count(*), coalesce(sum(facilityJoules), 0), coalesce(sum(gpuActiveJoules), 0), coalesce(sum(hostActiveJoules), 0),
                   coalesce(sum(gpuIdleJoules), 0), coalesce(sum(hostIdleJoules), 0), coalesce(sum(operationalCarbonGrams), 0)
            FROM clusterInterval WHERE runId = $1
            """, [.integer(id)])!
        let d = { (k: Int) in r[k].double ?? 0 }
        let drawn = AttributedDraw(direct: Draw(gpuJoules: d(2), hostJoules: d(3)), idle: Draw(gpuJoules: d(4), hostJoules: d(5)))
        return IntervalTotals(drawn: drawn, facilityJoules: d(1), operationalCarbonGrams: d(6), intervals: Int(r[0].int64 ?? 0))
    }

    public func facilityPower(run id: Int64) throws -> [IntervalPower] {
        try fetch("""
            SELECT startSeconds, max(endSeconds - startSeconds), sum(facilityJoules), sum(operationalCarbonGrams)
            FROM clusterInterval WHERE runId = $1 GROUP BY startSeconds ORDER BY startSeconds
            """, [.integer(id)]).map { r in
            IntervalPower(start: r[0].double ?? 0, length: r[1].double ?? 0, facilityJoules: r[2].double ?? 0, operationalCarbonGrams: r[3].double ?? 0)
        }
    }

    public func embodiedGramsPerGPUSecond(run id: Int64) throws -> Double {
        try fetchOne("SELECT embodiedGramsPerGPUSecond FROM requestCoding WHERE runId = $1", [.integer(id)])?[0].double ?? 0
    }

    public func committedRequests(run id: Int64) throws -> Int {
        Int(try fetchOne("SELECT coalesce(sum(requestCount), 0)::bigint FROM auditBatch WHERE runId = $1", [.integer(id)])?[0].int64 ?? 0)
    }

    /// Run `id`'s request row ranges, in commit order.
    func requestRanges(run id: Int64) throws -> [(first: Int64, count: Int)] {
        try fetch("SELECT firstRequestRow, requestCount FROM auditBatch WHERE runId = $1 AND requestCount > 0 ORDER BY id", [.integer(id)])
            .map { (first: $0[0].int64 ?? 0, count: Int($0[1].int64 ?? 0)) }
    }

    public func latestFinishedRequests(run id: Int64, limit: Int) throws -> [RequestRow] {
        var out: [RequestRow] = []
        for range in try requestRanges(run: id).reversed() where out.count < limit {
            out += try fetch(Self.requestSelect + " WHERE id BETWEEN $1 AND $2 AND inFlight = 0 ORDER BY id DESC LIMIT $3",
                             [.integer(range.first), .integer(range.first + Int64(range.count) - 1), .integer(Int64(limit - out.count))])
                .map(RequestRow.stored)
        }
        return out
    }

    public func spreadRequests(run id: Int64, count: Int) throws -> [RequestRow] {
        let ids = Ledger.spread(try requestRanges(run: id), count: count)
        var out: [RequestRow] = []
        for chunk in stride(from: 0, to: ids.count, by: 500) {
            let part = ids[chunk..<min(chunk + 500, ids.count)]
            out += try fetch(Self.requestSelect + " WHERE id IN (\(part.map(String.init).joined(separator: ","))) AND inFlight = 0 ORDER BY id")
                .map(RequestRow.stored)
        }
        return out
    }

    public func requests(after: Int64, limit: Int, runs: [Int64]) throws -> [RequestRow] {
        let only = runs.isEmpty ? "" : " AND runId IN (\(runs.map(String.init).joined(separator: ",")))"
        return try fetch(Self.requestSelect + " WHERE id > $1" + only + " ORDER BY id LIMIT $2", [.integer(after), .integer(Int64(limit))])
            .map(RequestRow.stored)
    }

    public func rollups(after: Int64, limit: Int) throws -> [RollupRow] {
        try fetch(Self.rollupSelect + " WHERE id > $1 ORDER BY id LIMIT $2", [.integer(after), .integer(Int64(limit))]).map(RollupRow.stored)
    }

    public func runsWithoutRollups() throws -> [Int64] { try runsWithoutRollups(among: []) }

    func runsWithoutRollups(among runs: [Int64]) throws -> [Int64] {
        let only = runs.isEmpty ? "" : " AND runId IN (\(runs.map(String.init).joined(separator: ",")))"
        return try fetch("SELECT DISTINCT runId FROM auditBatch WHERE requestCount > 0 AND digestScheme < 3" + only + " ORDER BY runId")
            .compactMap { $0[0].int64 }
    }

    public func newestBatchEnd() throws -> Double? {
        try fetchOne("SELECT max(r.startEpochSeconds + b.simulatedSeconds) FROM auditBatch b JOIN run r ON r.id = b.runId")?[0].double
    }

    public func latestRollups(run id: Int64) throws -> (rows: [RollupRow], simulatedSeconds: Double)? {
        guard let last = try fetchOne("""
            SELECT id, firstRollupRow, rollupCount, simulatedSeconds FROM auditBatch
            WHERE runId = $1 AND rollupCount > 0 AND digestScheme >= 3 ORDER BY id DESC LIMIT 1
            """, [.integer(id)]), let first = last[1].int64 else { return nil }
        let start = try fetchOne("SELECT simulatedSeconds FROM auditBatch WHERE runId = $1 AND id < $2 ORDER BY id DESC LIMIT 1",
                                 [.integer(id), last[0]])?[0].double ?? 0
        let rows = try fetch(Self.rollupSelect + " WHERE id BETWEEN $1 AND $2 ORDER BY id", [.integer(first), .integer(first + (last[2].int64 ?? 0) - 1)])
            .map(RollupRow.stored)
        return (rows, max(0, (last[3].double ?? 0) - start))
    }

    public func intervals(after: Int64, limit: Int) throws -> [IntervalRow] {
        try fetch(Self.intervalSelect + " WHERE id > $1 ORDER BY id LIMIT $2", [.integer(after), .integer(Int64(limit))]).map(IntervalRow.stored)
    }

    public func lastCommits() throws -> [Int64: Double] {
        var out: [Int64: Double] = [:]
        for r in try fetch("SELECT runId, max(committedAt) FROM auditBatch GROUP BY runId") {
            if let run = r[0].int64, let t = r[1].double { out[run] = t }
        }
        return out
    }

    // MARK: Carbon intensity and jobs

    static let seriesSelect = """
        SELECT s.id, s.region, s.signal, s.factor, s.kind, s.source, s.issuedAt, s.resolutionSeconds, s.origin, s.storedAt,
               count(p.startEpochSeconds) AS n, min(p.startEpochSeconds) AS firstStart, max(p.startEpochSeconds + p.durationSeconds) AS lastEnd
        FROM intensitySeries s LEFT JOIN intensitySample p ON p.seriesId = s.id
        """

    static func storedSeries(_ row: PGRow) throws -> StoredSeries {
        let t = "intensitySeries"
        return StoredSeries(
            id: try row.int("id", in: t),
            metadata: SeriesMetadata(
                region: try row.text("region", in: t), signal: CarbonSignal(rawValue: try row.text("signal", in: t)) ?? .average,
                factor: EmissionFactorType(rawValue: try row.text("factor", in: t)) ?? .unspecified,
                kind: SeriesKind(rawValue: try row.text("kind", in: t)) ?? .actual, source: try row.text("source", in: t),
                issuedAt: try row.optionalDouble("issuedAt", in: t), resolutionSeconds: try row.double("resolutionSeconds", in: t),
                origin: try row.text("origin", in: t)
            ),
            pointCount: Int(try row.int("n", in: t)), firstStart: try row.optionalDouble("firstStart", in: t) ?? 0,
            lastEnd: try row.optionalDouble("lastEnd", in: t) ?? 0, storedAt: try row.double("storedAt", in: t)
        )
    }

    public func storedSeries(region: String?) throws -> [StoredSeries] {
        let filter = region == nil ? "" : " WHERE s.region = $1"
        return try fetch(Self.seriesSelect + filter + " GROUP BY s.id ORDER BY s.region, coalesce(s.issuedAt, s.storedAt) DESC, s.id DESC",
                         region.map { [.text($0)] } ?? []).map(Self.storedSeries)
    }

    public func matchingSeries(_ filter: SeriesFilter) throws -> [StoredSeries] {
        var sql = Self.seriesSelect + " WHERE s.region = $1"
        var arguments: [PGValue] = [.text(filter.region)]
        for (column, value) in [("signal", filter.signal?.rawValue), ("factor", filter.factor?.rawValue), ("kind", filter.kind?.rawValue), ("source", filter.source)] {
            guard let value else { continue }
            arguments.append(.text(value))
            sql += " AND s.\(column) = $\(arguments.count)"
        }
        sql += " GROUP BY s.id HAVING count(p.startEpochSeconds) > 0 ORDER BY coalesce(s.issuedAt, s.storedAt) DESC, s.id DESC"
        return try fetch(sql, arguments).map(Self.storedSeries)
    }

    public func series(id: Int64, from: Double?, to: Double?) throws -> CarbonSeries? {
        guard let head = try fetchOne(Self.seriesSelect + " WHERE s.id = $1 GROUP BY s.id", [.integer(id)]) else { return nil }
        var sql = "SELECT startEpochSeconds, durationSeconds, gramsPerKWh FROM intensitySample WHERE seriesId = $1"
        var arguments: [PGValue] = [.integer(id)]
        if let from {
            arguments.append(.real(from))
            sql += " AND startEpochSeconds + durationSeconds > $\(arguments.count)"
        }
        if let to {
            arguments.append(.real(to))
            sql += " AND startEpochSeconds < $\(arguments.count)"
        }
        let rows = try fetch(sql + " ORDER BY startEpochSeconds", arguments)
        guard !rows.isEmpty else { return nil }
        let points = try rows.map { r in
            let t = "intensitySample"
            return TimedValue(start: try r.double("startEpochSeconds", in: t), duration: try r.double("durationSeconds", in: t),
                              value: try r.double("gramsPerKWh", in: t))
        }
        return CarbonSeries(metadata: try Self.storedSeries(head).metadata, checkedPoints: points)
    }

    public func scheduledJobs() throws -> [ScheduledJob] {
        let columns = Self.subjectColumns[.scheduledJob]!
        return try fetch("SELECT \(columns.joined(separator: ", ")) FROM scheduledJob ORDER BY id").map { row in
            let t = "scheduledJob"
            let slicesText = try row.text("slices", in: t)
            return ScheduledJob(
                id: try row.int("id", in: t), name: try row.text("name", in: t), createdAt: try row.double("createdAt", in: t),
                region: try row.text("region", in: t), signal: CarbonSignal(rawValue: try row.text("signal", in: t)) ?? .average,
                forecastSeriesId: try row.optionalInt("forecastSeriesId", in: t), forecastOrigin: try row.text("forecastOrigin", in: t),
                earliestStart: try row.double("earliestStart", in: t), deadline: try row.double("deadline", in: t),
                durationSeconds: try row.double("durationSeconds", in: t), energyKWh: try row.double("energyKWh", in: t),
                interruptible: try row.int("interruptible", in: t) != 0,
                slices: (try? JSONDecoder().decode([TimedValue].self, from: Data(slicesText.utf8))) ?? [],
                forecastGramsPerKWh: try row.double("forecastGramsPerKWh", in: t), baselineRegion: try row.text("baselineRegion", in: t),
                startNowGramsPerKWh: try row.double("startNowGramsPerKWh", in: t)
            )
        }
    }
}

extension PostgresLedger {
    /// `fetch` with an array of run ids bound as `$1` (for `= ANY($1)`).
    static func fetch(_ c: Connection, _ sql: String, _ arguments: [PGValue], logger: Logger, array: [Int64]) async throws -> [PGRow] {
        var bindings = PostgresBindings()
        bindings.append(array)
        for a in arguments { a.bind(&bindings) }
        var out: [PGRow] = []
        for try await row in try await c.query(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger) {
            out.append(try PGRow(row))
        }
        return out
    }
}

/// Rows handed from a query's task to the thread that reads them: at most `capacity` waiting.
final class RowPipe<R>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [R] = []
    private var head = 0
    private var done = false
    private var failure: (any Error)?
    private var cancelled = false
    private let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    /// Adds a row, waiting while the pipe is full; false once the reader has given up.
    func put(_ item: R) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while items.count - head >= capacity && !cancelled { condition.wait() }
        if cancelled { return false }
        items.append(item)
        condition.broadcast()
        return true
    }

    /// Ends the stream, with the error that ended it if any.
    func finish(_ error: (any Error)?) {
        condition.lock()
        done = true
        failure = error
        condition.broadcast()
        condition.unlock()
    }

    /// The next row; nil at the end; the producer's error, if it failed.
    func take() throws -> R? {
        condition.lock()
        defer { condition.unlock() }
        while head == items.count && !done { condition.wait() }
        if head < items.count {
            let item = items[head]
            head += 1
            if head > 4096 && head * 2 > items.count {
                items.removeFirst(head)
                head = 0
            }
            condition.broadcast()
            return item
        }
        if let failure { throw failure }
        return nil
    }

    /// The reader stops: the producer's next `put` fails, and it ends its query.
    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }
}
