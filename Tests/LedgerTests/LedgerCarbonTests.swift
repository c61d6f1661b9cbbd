import Accounting
import CarbonData
import Foundation
import GRDB
@testable import Ledger
import Scheduling
import Testing

@Suite("Carbon-intensity series in the ledger")
struct LedgerCarbonTests {
    func series(_ kind: SeriesKind, issuedAt: Double? = nil, values: [Double], start: Double = 1_700_000_000, step: Double = 1800) -> CarbonSeries {
        CarbonSeries(
            metadata: SeriesMetadata(region: "GB", signal: .average, factor: .direct, kind: kind, source: "ukci", issuedAt: issuedAt, origin: "test"),
            checkedPoints: values.enumerated().map { TimedValue(start: start + Double($0.offset) * step, duration: step, value: $0.element) }
        )
    }

    @Test("A stored series reads back point for point, with its metadata")
    func roundTrip() throws {
        let folder = TemporaryFolder()
        let ledger = try Ledger(path: folder.file("l.sqlite"))
        let s = series(.forecast, issuedAt: 1_699_999_000, values: (0..<96).map { Double(100 + ($0 * 37) % 150) })
        let id = try ledger.store(s, at: 5)
        let back = try #require(try ledger.series(id: id))
        #expect(back.points == s.points)
        #expect(back.metadata == s.metadata.with(resolution: 1800))
        let clipped = try #require(try ledger.series(id: id, from: s.points[10].start + 1, to: s.points[20].start))
        #expect(clipped.points == Array(s.points[10..<20]))
    }

    @Test("Several series are stored in one transaction: a full disk halfway stores none of them")
    func multiSeriesIsAtomic() throws {
        let folder = TemporaryFolder()
        let path = folder.file("l.sqlite")
        _ = try Ledger(path: path)
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        // A limit a small series fits under and a large one does not.
        let ledger = try Ledger(path: path, maximumBytes: size + 64 * 1024)
        let small = series(.actual, values: [100, 120])
        var big = series(.forecast, issuedAt: 1_700_000_000, values: (0..<20_000).map { Double($0 % 500) }, step: 60)
        big.metadata.source = "big"
        #expect(throws: LedgerError.self) { try ledger.store([small, big], at: 1) }
        // A point outside the limits every import checks is refused by the ledger itself, with the
        // rest of its transaction.
        for bad in [TimedValue(start: 1_700_000_000, duration: 1e300, value: 1), TimedValue(start: 1_700_000_000, duration: 60, value: .nan),
                    TimedValue(start: -1e18, duration: 60, value: 1), TimedValue(start: 1_700_000_000, duration: 60, value: 1e6)] {
            let wrong = CarbonSeries(metadata: small.metadata, checkedPoints: [bad])
            #expect { try ledger.store([small, wrong], at: 1) } throws: { "\($0)".contains("point 1: expected a start from 1970 to 2200") }
        }
        #expect(try ledger.storedSeries().isEmpty)
        // The small one alone fits, and a batch of one is the same as storing it.
        let ids = try ledger.store([small], at: 2)
        #expect(try ledger.storedSeries().map(\.id) == ids)
    }

    @Test("The same series stored twice is one series; each forecast issue is its own, newest first")
    func identity() throws {
        let folder = TemporaryFolder()
        let ledger = try Ledger(path: folder.file("l.sqlite"))
        let a = try ledger.store(series(.actual, values: [1, 2, 3]), at: 1)
        let b = try ledger.store(series(.actual, values: [1, 2, 3, 4]), at: 2)
        #expect(a == b)
        #expect(try ledger.series(id: a)?.points.count == 4)
        try ledger.store(series(.forecast, issuedAt: 100, values: [5, 6]), at: 3)
        try ledger.store(series(.forecast, issuedAt: 200, values: [7, 8]), at: 4)
        let forecasts = try ledger.matchingSeries(SeriesFilter(region: "GB", kind: .forecast))
        #expect(forecasts.map(\.metadata.issuedAt) == [200, 100])
        #expect(try ledger.newestSeries(SeriesFilter(region: "GB", kind: .forecast))?.series.points.map(\.value) == [7, 8])
        #expect(try ledger.storedSeries().count == 3)
        #expect(try ledger.matchingSeries(SeriesFilter(region: "FR")).isEmpty)
    }

    @Test("A v1 ledger's intensity points move into series, each lasting until the next")
    func migratesV1() throws {
        let folder = TemporaryFolder()
        let path = folder.file("v1.sqlite")
        let queue = try DatabaseQueue(path: path)
        try LedgerSchema.migrator(key: nil).migrate(queue, upTo: "v1 audit chain")
        try queue.write { db in
            for (t, v) in [(0.0, 500.0), (3600, 400), (5400, 300)] {
                try db.execute(sql: "INSERT INTO intensityPoint VALUES ('CN', 'average', 'grid.csv', ?, ?, 9)", arguments: [t, v])
            }
        }
        try queue.close()
        let ledger = try Ledger(path: path)
        let stored = try #require(try ledger.storedSeries(region: "CN").first)
        #expect(stored.metadata.factor == .unspecified)
        #expect(stored.metadata.source == "grid.csv")
        let s = try #require(try ledger.series(id: stored.id))
        #expect(s.points == [TimedValue(start: 0, duration: 3600, value: 500), TimedValue(start: 3600, duration: 1800, value: 400), TimedValue(start: 5400, duration: 3600, value: 300)])
        #expect(try ledger.newestSeries(SeriesFilter(region: "CN", signal: .average))?.series.metadata.sourceLabel == "grid.csv")
    }
}

@Suite("Scheduled jobs and their review")
struct ScheduledJobTests {
    @Test("A stored job reads back as planned")
    func roundTrip() throws {
        let folder = TemporaryFolder()
        let ledger = try Ledger(path: folder.file("l.sqlite"))
        let job = ScheduledJob(
            name: "evals", createdAt: 1, region: "GB", signal: .average, forecastSeriesId: nil, forecastOrigin: "f.json", earliestStart: 0, deadline: 86_400,
            durationSeconds: 5400, energyKWh: 300, interruptible: true,
            slices: [TimedValue(start: 3600, duration: 1800, value: 90), TimedValue(start: 9000, duration: 3600, value: 80)],
            forecastGramsPerKWh: 250.0 / 3, baselineRegion: "GB", startNowGramsPerKWh: 120
        )
        let id = try ledger.store(job)
        var expected = job
        expected.id = id
        #expect(try ledger.scheduledJobs() == [expected])
    }

    @Test("Realised intensity is the time-weighted mean over the slices, and only once actuals cover them all", arguments: 0..<10)
    func realised(_ seed: Int) throws {
        let folder = TemporaryFolder()
        let ledger = try Ledger(path: folder.file("l.sqlite"))
        let values = (0..<48).map { Double(100 + (($0 + seed) * 53) % 200) }
        let actual = CarbonSeries(
            metadata: SeriesMetadata(region: "GB", signal: .average, factor: .direct, kind: .actual, source: "ukci", origin: "a"),
            checkedPoints: values.enumerated().map { TimedValue(start: Double($0.offset) * 1800, duration: 1800, value: $0.element) }
        )
        try ledger.store(actual, at: 1)
        let a = Double(seed) * 1800 + 900, b = a + 3 * 1800  // starts mid-point, spans four points
        let c = Double(30 + seed) * 1800, d = c + 1800
        let spans = [(start: a, end: b), (start: c, end: d)]
        let r = try #require(try ledger.realisedIntensity(region: "GB", signal: .average, spans: spans))
        let expected = (WindowSearch.coveredMean(actual.points, from: a, to: b).mean * (b - a) + values[30 + seed] * 1800) / (b - a + 1800)
        #expect(abs(r.gramsPerKWh - expected) < 1e-9)
        #expect(try ledger.realisedIntensity(region: "GB", signal: .average, spans: [(start: 47 * 1800, end: 49 * 1800)]) == nil)
        #expect(try ledger.realisedIntensity(region: "GB", signal: .marginal, spans: spans) == nil)
    }
}

extension SeriesMetadata {
    func with(resolution: Double) -> SeriesMetadata {
        var m = self
        m.resolutionSeconds = resolution
        return m
    }
}
