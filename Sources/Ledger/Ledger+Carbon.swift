import Accounting
import CarbonData
import Foundation
import GRDB
import Scheduling

/// A series stored in the ledger, without its points.
public struct StoredSeries: Hashable, Sendable, Codable {
    public var id: Int64
    public var metadata: SeriesMetadata
    public var pointCount: Int
    public var firstStart: Double
    public var lastEnd: Double
    public var storedAt: Double
}

/// Which stored series to read; nil fields match anything.
public struct SeriesFilter: Sendable {
    public var region: String
    public var signal: CarbonSignal?
    public var factor: EmissionFactorType?
    public var kind: SeriesKind?
    public var source: String?

    public init(region: String, signal: CarbonSignal? = nil, factor: EmissionFactorType? = nil, kind: SeriesKind? = nil, source: String? = nil) {
        self.region = region
        self.signal = signal
        self.factor = factor
        self.kind = kind
        self.source = source
    }
}

extension Ledger {
    /// Stores `series`: its row is found by region, signal, factor type, kind, source and issue
    /// time (created if new), and its points replace stored points with the same start. One
    /// transaction: a failure stores nothing. Returns the series' id.
    @discardableResult
    public func store(_ series: CarbonSeries, at wallClock: Double) throws -> Int64 {
        try write { db in try insert(series, at: wallClock, db) }
    }

    /// Stores several series (one file's, or one response's) in one transaction: all of them, or
    /// none when any fails. Returns their ids in order.
    @discardableResult
    public func store(_ series: [CarbonSeries], at wallClock: Double) throws -> [Int64] {
        try write { db in try series.map { try insert($0, at: wallClock, db) } }
    }


    /// Refuses a series with a point outside the limits every import checks, whoever calls:
    /// what is stored can be read back by every route without a trap.
    static func checkStorable(_ series: CarbonSeries) throws {
        let m = series.metadata
        typealias Limits = PointChecker.Limits
        for (i, p) in series.points.enumerated()
        where !(Limits.start.contains(p.start) && Limits.duration.contains(p.duration) && Limits.intensity.contains(p.value)) {
            throw LedgerError.outOfRange(
                "\(m.region) \(m.kind.rawValue) series from \(m.source), point \(i + 1): expected a start from 1970 to 2200, a duration from 1 s "
                    + "to 366 days and an intensity from 0 to 10000 gCO2/kWh, got start \(p.start), duration \(p.duration) s, \(p.value) gCO2/kWh"
            )
        }
    }

    func insert(_ series: CarbonSeries, at wallClock: Double, _ db: Database) throws -> Int64 {
        let m = series.metadata
        try Ledger.checkStorable(series)
        let identity: StatementArguments = [m.region, m.signal.rawValue, m.factor.rawValue, m.kind.rawValue, m.source, m.issuedAt ?? -1e300]
        let id: Int64
        if let existing = try Int64.fetchOne(db, sql: """
            SELECT id FROM intensitySeries
            WHERE region = ? AND signal = ? AND factor = ? AND kind = ? AND source = ? AND ifnull(issuedAt, -1e300) = ?
            """, arguments: identity) {
            id = existing
            try db.execute(
                sql: "UPDATE intensitySeries SET resolutionSeconds = ?, origin = ?, storedAt = ? WHERE id = ?",
                arguments: [m.resolutionSeconds, m.origin, wallClock, id]
            )
        } else {
            try db.execute(sql: """
                INSERT INTO intensitySeries (region, signal, factor, kind, source, issuedAt, resolutionSeconds, origin, storedAt)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [m.region, m.signal.rawValue, m.factor.rawValue, m.kind.rawValue, m.source, m.issuedAt, m.resolutionSeconds, m.origin, wallClock])
            id = db.lastInsertedRowID
        }
        let statement = try db.cachedStatement(sql: """
            INSERT OR REPLACE INTO intensitySample (seriesId, startEpochSeconds, durationSeconds, gramsPerKWh) VALUES (?, ?, ?, ?)
            """)
        for p in series.points {
            try statement.execute(arguments: [id, p.start, p.duration, p.value])
        }
        try Ledger.recordEntry(.intensitySeries, id, at: wallClock, key: auditKey, db)
        return id
    }

    static func storedSeries(_ row: Row) throws -> StoredSeries {
        func v<T: DatabaseValueConvertible>(_ column: String) throws -> T { try row.value(column, in: "intensitySeries") }
        return StoredSeries(
            id: try v("id"),
            metadata: SeriesMetadata(
                region: try v("region"), signal: CarbonSignal(rawValue: try v("signal")) ?? .average,
                factor: EmissionFactorType(rawValue: try v("factor")) ?? .unspecified, kind: SeriesKind(rawValue: try v("kind")) ?? .actual,
                source: try v("source"), issuedAt: try v("issuedAt"), resolutionSeconds: try v("resolutionSeconds"), origin: try v("origin")
            ),
            pointCount: try v("n"), firstStart: try v("firstStart") ?? 0, lastEnd: try v("lastEnd") ?? 0, storedAt: try v("storedAt")
        )
    }

    static let seriesSelect = """
        SELECT s.*, count(p.startEpochSeconds) AS n, min(p.startEpochSeconds) AS firstStart, max(p.startEpochSeconds + p.durationSeconds) AS lastEnd
        FROM intensitySeries s LEFT JOIN intensitySample p ON p.seriesId = s.id
        """

    /// The stored series, optionally of one region, newest issue (or store) first.
    public func storedSeries(region: String? = nil) throws -> [StoredSeries] {
        try read { db in
            let rows = try Row.fetchAll(db, sql: Self.seriesSelect + """
                 WHERE (?1 IS NULL OR s.region = ?1) GROUP BY s.id ORDER BY s.region, ifnull(s.issuedAt, s.storedAt) DESC, s.id DESC
                """, arguments: [region])
            return try rows.map { try Self.storedSeries($0) }
        }
    }

    /// The stored series matching `filter`, newest first: forecasts by issue time, others by when
    /// they were stored.
    public func matchingSeries(_ filter: SeriesFilter) throws -> [StoredSeries] {
        try read { db in
            let rows = try Row.fetchAll(db, sql: Self.seriesSelect + """
                 WHERE s.region = ? AND (?2 IS NULL OR s.signal = ?2) AND (?3 IS NULL OR s.factor = ?3)
                   AND (?4 IS NULL OR s.kind = ?4) AND (?5 IS NULL OR s.source = ?5)
                 GROUP BY s.id HAVING n > 0 ORDER BY ifnull(s.issuedAt, s.storedAt) DESC, s.id DESC
                """, arguments: [filter.region, filter.signal?.rawValue, filter.factor?.rawValue, filter.kind?.rawValue, filter.source])
            return try rows.map { try Self.storedSeries($0) }
        }
    }

    /// The points of series `id` that overlap [from, to), as a series; nil when none do.
    public func series(id: Int64, from: Double? = nil, to: Double? = nil) throws -> CarbonSeries? {
        try read { db in
            guard let head = try Row.fetchOne(db, sql: Self.seriesSelect + " WHERE s.id = ? GROUP BY s.id", arguments: [id]) else { return nil }
            let rows = try Row.fetchAll(db, sql: """
                SELECT startEpochSeconds, durationSeconds, gramsPerKWh FROM intensitySample
                WHERE seriesId = ? AND (?2 IS NULL OR startEpochSeconds + durationSeconds > ?2) AND (?3 IS NULL OR startEpochSeconds < ?3)
                ORDER BY startEpochSeconds
                """, arguments: [id, from, to])
            guard !rows.isEmpty else { return nil }
            let points = try rows.map { r in
                TimedValue(
                    start: try r.value("startEpochSeconds", in: "intensitySample"), duration: try r.value("durationSeconds", in: "intensitySample"),
                    value: try r.value("gramsPerKWh", in: "intensitySample")
                )
            }
            return CarbonSeries(metadata: try Self.storedSeries(head).metadata, checkedPoints: points)
        }
    }

    /// The newest series matching `filter`, with its points in [from, to).
}
