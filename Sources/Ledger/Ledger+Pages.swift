import Foundation
import GRDB

/// Which requests of a run to list; nil fields do not filter.
public struct RequestQuery: Sendable {
    /// Arrival time bounds (seconds since 1970).
    public var from: Double?
    public var to: Double?
    /// End-to-end latency at least this (finished requests only).
    public var minimumLatencySeconds: Double?
    /// Facility energy at least this.
    public var minimumJoules: Double?
    /// Rows after this row id.
    public var after: Int64?
    public var limit: Int

    public init(from: Double? = nil, to: Double? = nil, minimumLatencySeconds: Double? = nil, minimumJoules: Double? = nil, after: Int64? = nil, limit: Int = 100) {
        self.from = from
        self.to = to
        self.minimumLatencySeconds = minimumLatencySeconds
        self.minimumJoules = minimumJoules
        self.after = after
        self.limit = limit
    }
}

extension Ledger {
    /// A page of a run's requests in row order, and the cursor for the next page (nil at the end).
    /// Every filter is a bound parameter.
    public func requests(run: Int64, _ q: RequestQuery) throws -> (items: [RequestRow], next: Int64?) {
        _ = try self.run(run)
        let limit = max(1, min(q.limit, 1000))
        return try pool.read { db in
            // In row order from the cursor, within the span of rows the run's batches name: a page
            // reads about `limit` rows.
            guard let span = try Ledger.requestSpan(runs: [run], db) else { return ([], nil) }
            var reader = RequestReader(db)
            // Arrival on the wall clock is the run's start + arrival (`CompactRequest`).
            let start = try reader.coding(run: run).startEpochSeconds
            let rows = try reader.fetchAll(sql: CompactRequest.selectAll + """
                 WHERE id > max(?2, ?8 - 1) AND id <= ?9 AND runId = ?1
                  AND (?3 IS NULL OR ?10 + arrivalSeconds >= ?3) AND (?4 IS NULL OR ?10 + arrivalSeconds < ?4)
                  AND (?5 IS NULL OR (\(RequestRow.endToEndSQL)) >= ?5)
                  AND (?6 IS NULL OR facilityJoules >= ?6)
                ORDER BY id LIMIT ?7
                """, arguments: [run, q.after ?? 0, q.from, q.to, q.minimumLatencySeconds, q.minimumJoules, limit + 1, span.lowerBound, span.upperBound, start])
            let items = Array(rows.prefix(limit))
            return (items, rows.count > limit ? items.last?.rowID : nil)
        }
    }
}
