import Accounting
import Foundation
import GRDB
import Scheduling

/// A batch job planned by `joule schedule --store`, as the plan was made.
public struct ScheduledJob: Hashable, Sendable, Codable {
    public var id: Int64?
    public var name: String
    public var createdAt: Double
    /// The region it was planned into.
    public var region: String
    public var signal: CarbonSignal
    /// The stored forecast it was planned on.
    public var forecastSeriesId: Int64?
    public var forecastOrigin: String
    public var earliestStart: Double
    public var deadline: Double
    public var durationSeconds: Double
    public var energyKWh: Double
    public var interruptible: Bool
    /// When it runs: one slice, or several for an interruptible job; each with its forecast intensity.
    public var slices: [TimedValue]
    /// The forecast time-weighted mean intensity over the slices.
    public var forecastGramsPerKWh: Double
    /// Starting at `earliestStart` in `baselineRegion` instead, by the forecast.
    public var baselineRegion: String
    public var startNowGramsPerKWh: Double

    public init(
        id: Int64? = nil, name: String, createdAt: Double, region: String, signal: CarbonSignal, forecastSeriesId: Int64?, forecastOrigin: String,
        earliestStart: Double, deadline: Double, durationSeconds: Double, energyKWh: Double, interruptible: Bool, slices: [TimedValue],
        forecastGramsPerKWh: Double, baselineRegion: String, startNowGramsPerKWh: Double
    ) {
        self.id = id
        self.name = name
        self.createdAt = createdAt
        self.region = region
        self.signal = signal
        self.forecastSeriesId = forecastSeriesId
        self.forecastOrigin = forecastOrigin
        self.earliestStart = earliestStart
        self.deadline = deadline
        self.durationSeconds = durationSeconds
        self.energyKWh = energyKWh
        self.interruptible = interruptible
        self.slices = slices
        self.forecastGramsPerKWh = forecastGramsPerKWh
        self.baselineRegion = baselineRegion
        self.startNowGramsPerKWh = startNowGramsPerKWh
    }
}

extension Ledger {
    /// Stores a planned job; returns its id.
    @discardableResult
    public func store(_ job: ScheduledJob) throws -> Int64 {
        let slices = String(decoding: try JSONEncoder().encode(job.slices), as: UTF8.self)
        return try write { db in
            try db.execute(sql: """
                INSERT INTO scheduledJob (name, createdAt, region, signal, forecastSeriesId, forecastOrigin, earliestStart, deadline,
                    durationSeconds, energyKWh, interruptible, slices, forecastGramsPerKWh, baselineRegion, startNowGramsPerKWh)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, arguments: [
                    job.name, job.createdAt, job.region, job.signal.rawValue, job.forecastSeriesId, job.forecastOrigin, job.earliestStart, job.deadline,
                    job.durationSeconds, job.energyKWh, job.interruptible, slices, job.forecastGramsPerKWh, job.baselineRegion, job.startNowGramsPerKWh,
                ])
            let id = db.lastInsertedRowID
            try Ledger.recordEntry(.scheduledJob, id, at: job.createdAt, key: auditKey, db)
            return id
        }
    }

    /// The planned jobs, oldest first.
    public func scheduledJobs() throws -> [ScheduledJob] {
        try read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM scheduledJob ORDER BY id").map { row in
                func v<T: DatabaseValueConvertible>(_ column: String) throws -> T { try row.value(column, in: "scheduledJob") }
                let slicesText: String = try v("slices")
                return ScheduledJob(
                    id: try v("id"), name: try v("name"), createdAt: try v("createdAt"), region: try v("region"),
                    signal: CarbonSignal(rawValue: try v("signal")) ?? .average, forecastSeriesId: try v("forecastSeriesId"), forecastOrigin: try v("forecastOrigin"),
                    earliestStart: try v("earliestStart"), deadline: try v("deadline"), durationSeconds: try v("durationSeconds"), energyKWh: try v("energyKWh"),
                    interruptible: try v("interruptible"), slices: (try? JSONDecoder().decode([TimedValue].self, from: Data(slicesText.utf8))) ?? [],
                    forecastGramsPerKWh: try v("forecastGramsPerKWh"), baselineRegion: try v("baselineRegion"), startNowGramsPerKWh: try v("startNowGramsPerKWh")
                )
            }
        }
    }
}
