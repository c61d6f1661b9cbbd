import Accounting
import Foundation
import GRDB
import Serving

/// Sums over a run's cluster intervals: what the units drew in steps and idle (IT energy), at
/// the facility meter, their operational carbon, and how many intervals.
public struct IntervalTotals: Sendable, Hashable {
    public var drawn: AttributedDraw
    public var facilityJoules: Double
    public var operationalCarbonGrams: Double
    public var intervals: Int
}

/// A run's draw over one accounting interval, all units together.
public struct IntervalPower: Sendable, Hashable {
    public var start: Double
    public var length: Double
    public var facilityJoules: Double
    public var operationalCarbonGrams: Double
}

/// Where to stream rows from; nil fields do not filter.
public struct RowScope: Sendable, Hashable {
    /// Only these runs (empty: every run).
    public var runs: [Int64]
    /// Wall-clock bounds, seconds since 1970: request arrival, or interval start.
    public var from: Double?
    public var to: Double?
    /// Requests only: finished ones (not those in flight at a run's end).
    public var finishedOnly: Bool

    public init(runs: [Int64] = [], from: Double? = nil, to: Double? = nil, finishedOnly: Bool = false) {
        self.runs = runs
        self.from = from
        self.to = to
        self.finishedOnly = finishedOnly
    }

    /// One run's rows.
    public static func run(_ id: Int64, finishedOnly: Bool = false) -> RowScope { RowScope(runs: [id], finishedOnly: finishedOnly) }
}

extension RowScope {
    /// The WHERE clause and its arguments, on `timeColumn`.
    ///
    /// For requests, the runs' rows are read as a range of row ids (`span`, from their audit
    /// batches) in table order, and the run and time filters are tested on each row (`+` keeps
    /// SQLite off the (runId, requestId) index): one sequential pass, where the index would fetch
    /// millions of rows one by one.
    func clause(time timeColumn: String, requests: Bool, span: ClosedRange<Int64>? = nil) -> (sql: String, arguments: StatementArguments) {
        var parts: [String] = []
        var arguments: [DatabaseValueConvertible?] = []
        let plus = requests ? "+" : ""
        if let span {
            parts.append("id BETWEEN ? AND ?")
            arguments += [span.lowerBound, span.upperBound]
        }
        if !runs.isEmpty {
            parts.append("\(plus)runId IN (\(runs.map { _ in "?" }.joined(separator: ",")))")
            arguments += runs.map { $0 as DatabaseValueConvertible? }
        }
        if let from {
            parts.append("\(plus)\(timeColumn) >= ?")
            arguments.append(from)
        }
        if let to {
            parts.append("\(plus)\(timeColumn) < ?")
            arguments.append(to)
        }
        if requests && finishedOnly { parts.append("inFlight = 0") }
        return (parts.isEmpty ? "" : " WHERE " + parts.joined(separator: " AND "), StatementArguments(arguments))
    }
}

extension Ledger {
    /// Every request row in `scope`, in row order, one at a time (bounded memory).
    public func forEachRequest(_ scope: RowScope, _ body: (RequestRow) throws -> Void) throws {
        try pool.read { db in
            var span: ClosedRange<Int64>?
            if !scope.runs.isEmpty {
                guard let s = try Ledger.requestSpan(runs: scope.runs, db) else { return }
                span = s
            }
            // The time bounds apply to the restored arrival (`CompactRequest`), here rather than in SQL.
            var unbounded = scope
            unbounded.from = nil
            unbounded.to = nil
            let (clause, arguments) = unbounded.clause(time: "arrivalSeconds", requests: true, span: span)
            var reader = RequestReader(db)
            try reader.forEach(sql: CompactRequest.selectAll + clause + " ORDER BY id", arguments: arguments) { request in
                if let from = scope.from, !(request.epochSeconds >= from) { return }
                if let to = scope.to, !(request.epochSeconds < to) { return }
                try body(request)
            }
        }
    }

    /// Every cluster interval in `scope` (by start), in row order, one at a time.
    public func forEachInterval(_ scope: RowScope, _ body: (IntervalRow) throws -> Void) throws {
        let (clause, arguments) = scope.clause(time: "startEpochSeconds", requests: false)
        try pool.read { db in
            let rows = try Row.fetchCursor(db, sql: IntervalRow.selectAll + clause + " ORDER BY id", arguments: arguments)
            while let row = try rows.next() { try body(IntervalRow.stored(row)) }
        }
    }

    /// Sums over run `id`'s cluster intervals.
    public func intervalTotals(run id: Int64) throws -> IntervalTotals {
        try pool.read { db in
            let r = try Row.fetchOne(db.cachedStatement(sql: """
                SELECT count(*) AS n, total(facilityJoules) AS f, total(gpuActiveJoules) AS ga, total(hostActiveJoules) AS ha,
                       total(gpuIdleJoules) AS gi, total(hostIdleJoules) AS hi, total(operationalCarbonGrams) AS c
                FROM clusterInterval WHERE runId = ?
                """), arguments: [id])!
            let drawn = AttributedDraw(direct: Draw(gpuJoules: r["ga"], hostJoules: r["ha"]), idle: Draw(gpuJoules: r["gi"], hostJoules: r["hi"]))
            return IntervalTotals(drawn: drawn, facilityJoules: r["f"], operationalCarbonGrams: r["c"], intervals: r["n"])
        }
    }

    /// Run `id`'s cluster draw per accounting interval, summed over its units by SQL: each
    /// interval's start (seconds after the run's start), its longest unit span, facility energy
    /// and operational carbon, in time order.
    public func facilityPower(run id: Int64) throws -> [IntervalPower] {
        try pool.read { db in
            try Row.fetchAll(db.cachedStatement(sql: """
                SELECT startSeconds AS s, max(endSeconds - startSeconds) AS l, total(facilityJoules) AS j, total(operationalCarbonGrams) AS g
                FROM clusterInterval WHERE runId = ? GROUP BY startSeconds ORDER BY startSeconds
                """), arguments: [id]).map { r in
                let t = "clusterInterval"
                return IntervalPower(start: try r.value("s", in: t), length: try r.value("l", in: t),
                                     facilityJoules: try r.value("j", in: t), operationalCarbonGrams: try r.value("g", in: t))
            }
        }
    }

    /// Embodied grams per GPU-second that run `id` charged: a run charges one rate (its embodied
    /// model), kept with its coding (`RequestCoding`); 0 for a run with no GPU-time recorded.
    public func embodiedGramsPerGPUSecond(run id: Int64) throws -> Double {
        try pool.read { db in try RequestCoding.fetch(run: id, db)?.embodiedGramsPerGPUSecond ?? 0 }
    }

    /// Request rows run `id` committed, counted from its audit batches (no scan of the rows).
    public func committedRequests(run id: Int64) throws -> Int {
        try pool.read { db in
            try Int.fetchOne(db.cachedStatement(sql: "SELECT coalesce(sum(requestCount), 0) FROM auditBatch WHERE runId = ?"), arguments: [id]) ?? 0
        }
    }

    /// Up to `limit` of run `id`'s latest finished request rows, newest first, read by the row
    /// ranges its audit batches name (quick however long the run).
    public func latestFinishedRequests(run id: Int64, limit: Int) throws -> [RequestRow] {
        try pool.read { db in
            var out: [RequestRow] = []
            var reader = RequestReader(db)
            for range in try Ledger.requestRanges(run: id, db).reversed() where out.count < limit {
                out += try reader.fetchAll(sql: CompactRequest.selectAll + " WHERE id BETWEEN ? AND ? AND inFlight = 0 ORDER BY id DESC LIMIT ?",
                                           arguments: [range.first, range.first + Int64(range.count) - 1, limit - out.count])
            }
            return out
        }
    }

    /// About `count` of run `id`'s finished request rows, evenly spread over the run in row order.
    public func spreadRequests(run id: Int64, count: Int) throws -> [RequestRow] {
        try pool.read { db in
            let ids = Ledger.spread(try Ledger.requestRanges(run: id, db), count: count)
            var out: [RequestRow] = []
            var reader = RequestReader(db)
            for chunk in stride(from: 0, to: ids.count, by: 500) {
                let part = Array(ids[chunk..<min(chunk + 500, ids.count)])
                out += try reader.fetchAll(sql: CompactRequest.selectAll + " WHERE id IN (\(part.map { _ in "?" }.joined(separator: ","))) AND inFlight = 0 ORDER BY id",
                                           arguments: StatementArguments(part))
            }
            return out
        }
    }

    /// About `count` row ids evenly spread over `ranges` (a run's batches' rows, in commit order).
    static func spread(_ ranges: [(first: Int64, count: Int)], count: Int) -> [Int64] {
        let total = ranges.reduce(0) { $0 + $1.count }
        guard total > 0, count > 0 else { return [] }
        let step = max(1, total / count)
        var ids: [Int64] = []
        var k = 0
        for r in ranges {
            var offset = (step - k % step) % step
            while offset < r.count {
                ids.append(r.first + Int64(offset))
                offset += step
            }
            k += r.count
        }
        return ids
    }

    /// The smallest range of row ids that holds every request row the runs' audit batches name;
    /// nil when they committed none.
    static func requestSpan(runs: [Int64], _ db: Database) throws -> ClosedRange<Int64>? {
        let row = try Row.fetchOne(db, sql: """
            SELECT min(firstRequestRow) AS lo, max(firstRequestRow + requestCount - 1) AS hi FROM auditBatch
            WHERE runId IN (\(runs.map { _ in "?" }.joined(separator: ","))) AND requestCount > 0
            """, arguments: StatementArguments(runs))
        guard let row, let lo = try row.value("lo", in: "auditBatch") as Int64?, let hi = try row.value("hi", in: "auditBatch") as Int64?, lo <= hi else {
            return nil
        }
        return lo...hi
    }

    /// The request row ranges of run `id`'s audit batches, in commit order.
    static func requestRanges(run id: Int64, _ db: Database) throws -> [(first: Int64, count: Int)] {
        try Row.fetchAll(db, sql: "SELECT firstRequestRow AS a, requestCount AS n FROM auditBatch WHERE runId = ? AND requestCount > 0 ORDER BY seq",
                         arguments: [id]).map { (first: try $0.value("a", in: "auditBatch") as Int64, count: try $0.value("n", in: "auditBatch") as Int) }
    }

    /// Up to `limit` request rows committed after row `after`, of `runs` (every run when empty),
    /// in row order: for followers that catch up incrementally (the metrics endpoint).
    public func requests(after: Int64, limit: Int, runs: [Int64]) throws -> [RequestRow] {
        try pool.read { db in
            let only = runs.isEmpty ? "" : " AND runId IN (\(runs.map { _ in "?" }.joined(separator: ",")))"
            var reader = RequestReader(db)
            return try reader.fetchAll(sql: CompactRequest.selectAll + " WHERE id > ?" + only + " ORDER BY id LIMIT ?",
                                       arguments: StatementArguments([after] + runs + [Int64(limit)]))
        }
    }

    /// Up to `limit` request rollups committed after row `after`, every run, in row order.
    public func rollups(after: Int64, limit: Int) throws -> [RollupRow] {
        try pool.read { db in
            try Row.fetchAll(db, sql: RollupRow.selectAll + " WHERE id > ? ORDER BY id LIMIT ?", arguments: [after, limit]).map { try RollupRow.stored($0) }
        }
    }

    /// Runs with request rows committed before rollups were kept (schema v7): their figures come
    /// from their rows. A run can only join this list by being recorded by an older Joule.
    public func runsWithoutRollups() throws -> [Int64] {
        try pool.read { db in try Ledger.runsWithoutRollups(among: [], db) }
    }

    /// Of `runs` (every run when empty), those with request batches written before rollups.
    static func runsWithoutRollups(among runs: [Int64], _ db: Database) throws -> [Int64] {
        let only = runs.isEmpty ? "" : " AND runId IN (\(runs.map { _ in "?" }.joined(separator: ",")))"
        return try Int64.fetchAll(db, sql: "SELECT DISTINCT runId FROM auditBatch WHERE requestCount > 0 AND digestScheme < 3" + only + " ORDER BY runId",
                                  arguments: StatementArguments(runs))
    }

    /// Up to `limit` cluster intervals committed after row `after`, every run, in row order.
    public func intervals(after: Int64, limit: Int) throws -> [IntervalRow] {
        try pool.read { db in
            try Row.fetchAll(db, sql: IntervalRow.selectAll + " WHERE id > ? ORDER BY id LIMIT ?", arguments: [after, limit]).map { try IntervalRow.stored($0) }
        }
    }

    /// Each run's last commit time (wall clock, seconds since 1970), by run id.
    public func lastCommits() throws -> [Int64: Double] {
        try pool.read { db in
            var out: [Int64: Double] = [:]
            for r in try Row.fetchAll(db, sql: "SELECT runId, max(committedAt) AS t FROM auditBatch GROUP BY runId") {
                out[try r.value("runId", in: "auditBatch")] = try r.value("t", in: "auditBatch") as Double
            }
            return out
        }
    }
}

extension StoredRun {
    /// The run's summary, when it finished and its JSON decodes.
    public var decodedSummary: RunSummary? {
        summary.flatMap { try? JSONDecoder().decode(RunSummary.self, from: Data($0.utf8)) }
    }
}
