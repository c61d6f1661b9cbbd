import Accounting
import CarbonData
import Foundation
import Synchronization
import Testing
@testable import Ledger
import Serving

/// The store a contract test runs against: SQLite always; PostgreSQL when `JOULE_TEST_POSTGRES`
/// names a server (`Scripts/test` starts a throw-away cluster and sets it; CI runs both).
enum Backend: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    var testDescription: String { rawValue }

    /// The backends this run can test.
    static var available: [Backend] {
        ProcessInfo.processInfo.environment["JOULE_TEST_POSTGRES"].map { $0.isEmpty ? [.sqlite] : [.sqlite, .postgres] } ?? [.sqlite]
    }
}

/// A fresh, empty ledger of one backend for one test: a file in a temporary folder, or a new
/// database on the test server (dropped when the value is released).
final class FreshLedger: @unchecked Sendable {
    let backend: Backend
    let store: any LedgerStore
    let url: String
    private let folder = TemporaryFolder()
    private var database: String?

    init(_ backend: Backend, writer: String? = nil) throws {
        self.backend = backend
        switch backend {
        case .sqlite:
            url = folder.file("l.sqlite")
            store = try Ledger(path: url)
        case .postgres:
            let server = try #require(ProcessInfo.processInfo.environment["JOULE_TEST_POSTGRES"])
            let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
            try FreshLedger.admin(server) { try $0.fetch("CREATE DATABASE \(name)") }
            database = String(name)
            let base = server[..<server.lastIndex(of: "/")!]
            url = "\(base)/\(name)"
            store = try PostgresLedger(PostgresLocation(url: url), writer: writer)
        }
    }

    /// Another connection to the same ledger, writing under `writer`.
    func another(writer: String) throws -> any LedgerStore {
        switch backend {
        case .sqlite: try Ledger(path: url)
        case .postgres: try PostgresLedger(PostgresLocation(url: url), writer: writer)
        }
    }

    /// Runs SQL behind the ledger's back, as someone with the sqlite3 shell or psql would.
    func tamper(_ sql: String) throws {
        switch backend {
        case .sqlite: try LedgerTests.tamper(url, sql)
        case .postgres: _ = try (store as! PostgresLedger).fetch(sql)
        }
    }

    private static func admin(_ server: String, _ body: (PostgresLedger) throws -> Void) throws {
        try body(try PostgresLedger(PostgresLocation(url: server), writer: "test-admin"))
    }

    deinit {
        guard let database, let server = ProcessInfo.processInfo.environment["JOULE_TEST_POSTGRES"] else { return }
        try? FreshLedger.admin(server) { _ = try $0.fetch("DROP DATABASE IF EXISTS \(database) WITH (FORCE)") }
    }
}

@Suite("Ledger contract: every backend stores, reads, audits and reconciles alike")
struct LedgerContractTests {
    @Test("What is committed reads back exactly, in order, verifies and reconciles", arguments: Backend.available)
    func roundTrip(_ backend: Backend) throws {
        let ledger = try FreshLedger(backend)
        let (loaded, run) = try prepared("mixtral-single-node")
        let result = try record(loaded, run, into: ledger.store, commitEvery: 700)
        var back: [RequestRecord] = []
        try ledger.store.forEachRequest(.run(result.run)) { back.append($0.record) }
        #expect(back == result.records)
        var intervals: [ClusterInterval] = []
        try ledger.store.forEachInterval(.run(result.run)) { intervals.append($0.record) }
        #expect(intervals == result.intervals)
        let progress = try ledger.store.progress(run: result.run)
        #expect(progress.storedRequests == result.records.count)
        #expect(progress.lastRequestID == result.records.last?.id)
        #expect(try ledger.store.committedRequests(run: result.run) == result.records.count)
        let verification = try ledger.store.verify()
        #expect(verification.ok, "\(verification.problems)")
        #expect(verification.requestRows == result.records.count)
        #expect(verification.intervalRows == result.intervals.count)
        let books = try ledger.store.reconcile(run: result.run)
        #expect(books.balances, "residual \(books.relativeResidual)")
        // One request, explained from its row.
        let some = result.records[result.records.count / 2]
        #expect(try ledger.store.breakdown(request: some.id, run: result.run).record == some)
        #expect(throws: LedgerError.self) { try ledger.store.breakdown(request: 10_000_000, run: result.run) }
        #expect(throws: LedgerError.self) { try ledger.store.run(999) }
    }

    @Test("Pages of a run's requests cover every row once, in order, and filters hold on each", arguments: Backend.available)
    func pages(_ backend: Backend) throws {
        let ledger = try FreshLedger(backend)
        let (loaded, run) = try prepared("mixtral-single-node", duration: 120)
        let result = try record(loaded, run, into: ledger.store, commitEvery: 300)
        var seen: [Int] = []
        var after: Int64?
        repeat {
            let page = try ledger.store.requests(run: result.run, RequestQuery(after: after, limit: 97))
            seen += page.items.map(\.record.id)
            after = page.next
        } while after != nil
        #expect(seen == result.records.map(\.id))
        let heavy = try ledger.store.requests(run: result.run, RequestQuery(minimumJoules: 500, limit: 1000)).items
        #expect(heavy.allSatisfy { $0.record.facilityJoules >= 500 })
        #expect(heavy.count == result.records.filter { $0.facilityJoules >= 500 }.count)
    }

    @Test("Rollups add up to the rows they summarise", arguments: Backend.available)
    func rollups(_ backend: Backend) throws {
        let ledger = try FreshLedger(backend)
        let (loaded, run) = try prepared("mixtral-single-node")
        let result = try record(loaded, run, into: ledger.store, commitEvery: 500)
        let rollups = try #require(try ledger.store.rollups(.run(result.run)))
        #expect(rollups.reduce(0) { $0 + $1.record.requests + $1.record.inFlight } == result.records.count)
        let joules = rollups.reduce(0.0) { $0 + $1.record.facilityJoules + $1.record.inFlightFacilityJoules }
        let rows = result.records.reduce(0.0) { $0 + $1.facilityJoules }
        #expect(abs(joules - rows) <= 1e-9 * rows)
        #expect(try ledger.store.latestRollups(run: result.run) != nil)
    }

    @Test("The same run in both backends stores the same rows, rollups and totals", .enabled(if: Backend.available.contains(.postgres)))
    func sameOnBoth() throws {
        let (loaded, run) = try prepared("mixtral-single-node", duration: 300, seed: 4)
        var rows: [[RequestRow]] = [], rollups: [[RequestRollup]] = [], totals: [IntervalTotals] = []
        for backend in Backend.allCases {
            let ledger = try FreshLedger(backend)
            let result = try record(loaded, run, into: ledger.store, commitEvery: 400)
            var r: [RequestRow] = []
            try ledger.store.forEachRequest(.run(result.run)) { r.append($0) }
            rows.append(r.map { var x = $0; x.rowID = 0; return x })
            rollups.append(try #require(try ledger.store.rollups(.run(result.run))).map(\.record))
            totals.append(try ledger.store.intervalTotals(run: result.run))
        }
        #expect(rows[0] == rows[1])
        #expect(rollups[0] == rollups[1])
        #expect(totals[0] == totals[1])
    }

    @Test("A row changed behind the ledger's back is named by audit verify", arguments: Backend.available)
    func tamper(_ backend: Backend) throws {
        let ledger = try FreshLedger(backend)
        let (loaded, run) = try prepared("mixtral-single-node", duration: 120)
        _ = try record(loaded, run, into: ledger.store, commitEvery: 200)
        #expect(try ledger.store.verify().ok)
        try ledger.tamper("UPDATE request SET facilityJoules = facilityJoules * 0.9 WHERE requestId = 42")
        let found = try ledger.store.verify()
        let first = try #require(found.problems.first)
        #expect(first.kind == .changedRow && first.table == "request", "\(found.problems)")
        #expect(first.detail.contains("request 42"))
    }

    @Test("A request twice in one batch is refused and leaves no trace", arguments: Backend.available)
    func duplicate(_ backend: Backend) throws {
        let ledger = try FreshLedger(backend)
        let (loaded, run) = try prepared("mixtral-single-node", duration: 60)
        let result = try record(loaded, run, into: ledger.store, commitEvery: 100)
        let twice = LedgerBatch(records: [result.records[0], result.records[0]])
        #expect(throws: LedgerError.self) { try ledger.store.append(twice, run: result.run, startEpochSeconds: 0, at: 3) }
        #expect(try ledger.store.verify().ok)
    }

    @Test("Carbon series and scheduled jobs read back as stored", arguments: Backend.available)
    func carbonAndJobs(_ backend: Backend) throws {
        let ledger = try FreshLedger(backend)
        let metadata = SeriesMetadata(region: "DE", signal: .average, factor: .lifecycle, kind: .forecast, source: "test", issuedAt: 1_700_000_000,
                                      origin: "contract test")
        let points = (0..<48).map { TimedValue(start: 1_700_000_000 + Double($0) * 1800, duration: 1800, value: 300 + Double($0 % 7) * 11.5) }
        let series = CarbonSeries(metadata: metadata, checkedPoints: points)
        let id = try ledger.store.store(series, at: 1_700_000_100)
        #expect(try ledger.store.series(id: id)?.points == points)
        #expect(try ledger.store.newestSeries(SeriesFilter(region: "DE", kind: .forecast))?.stored.id == id)
        #expect(try ledger.store.storedSeries(region: "DE").map(\.pointCount) == [48])
        let job = ScheduledJob(
            name: "eval", createdAt: 1_700_000_200, region: "DE", signal: .average, forecastSeriesId: id, forecastOrigin: "contract test",
            earliestStart: 1_700_000_000, deadline: 1_700_086_400, durationSeconds: 7200, energyKWh: 500, interruptible: false,
            slices: [TimedValue(start: 1_700_010_000, duration: 7200, value: 310)], forecastGramsPerKWh: 310, baselineRegion: "DE", startNowGramsPerKWh: 330
        )
        let jobID = try ledger.store.store(job)
        var expected = job
        expected.id = jobID
        #expect(try ledger.store.scheduledJobs() == [expected])
        #expect(try ledger.store.verify().ok)
        #expect(throws: LedgerError.self) {
            let bad = CarbonSeries(metadata: metadata, checkedPoints: [TimedValue(start: 1_700_000_000, duration: 1800, value: 20_000)])
            try ledger.store.store(bad, at: 1_700_000_300)
        }
    }
}

@Suite("Fleet ledger: several writers into one PostgreSQL database", .enabled(if: Backend.available.contains(.postgres)))
struct FleetLedgerTests {
    @Test("Writers committing at once each keep a chain that verifies, and every run reconciles")
    func concurrentWriters() throws {
        let ledger = try FreshLedger(.postgres, writer: "writer-0")
        let stores = try [ledger.store] + (1...2).map { try ledger.another(writer: "writer-\($0)") }
        let (loaded, run) = try prepared("mixtral-single-node", duration: 200)
        let results = Mutex<[Int64: Int]>([:])
        let failures = Mutex<[String]>([])
        DispatchQueue.concurrentPerform(iterations: stores.count) { k in
            do {
                let r = try record(loaded, run, into: stores[k], commitEvery: 150)
                results.withLock { $0[r.run] = r.records.count }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
        let verification = try ledger.store.verify()
        #expect(verification.ok, "\(verification.problems)")
        let counts = results.withLock { $0 }
        #expect(counts.count == 3)
        #expect(verification.requestRows == counts.values.reduce(0, +))
        for (id, n) in counts {
            let books = try ledger.store.reconcile(run: id)
            #expect(books.balances && books.requestRows == n)
        }
    }

    @Test("A writer name held by a live process is refused, naming the holder")
    func writerTaken() throws {
        let ledger = try FreshLedger(.postgres, writer: "site-a")
        _ = try ledger.store.beginRun(spec(try prepared("mixtral-single-node").0, try prepared("mixtral-single-node").1), at: Date().timeIntervalSince1970)
        // This process holds "site-a"; a second process is simulated by a lease on another host.
        _ = try (ledger.store as! PostgresLedger).fetch("UPDATE writer SET host = 'other-host', heartbeatAt = extract(epoch from now()) WHERE name = 'site-a'")
        let second = try ledger.another(writer: "site-a")
        #expect {
            _ = try second.beginRun(spec(try prepared("mixtral-single-node").0, try prepared("mixtral-single-node").1), at: Date().timeIntervalSince1970)
        } throws: { error in
            "\(error)".contains("site-a") && "\(error)".contains("other-host")
        }
    }

    @Test("A daemon job running under a live writer elsewhere is refused, naming it")
    func jobTaken() throws {
        let ledger = try FreshLedger(.postgres, writer: "host-1")
        let (loaded, run) = try prepared("mixtral-single-node")
        var daemonSpec = spec(loaded, run)
        daemonSpec.source = "daemon"
        let id = try ledger.store.beginRun(daemonSpec, at: Date().timeIntervalSince1970)
        _ = try (ledger.store as! PostgresLedger).fetch(
            "UPDATE runEvent SET host = 'host-1.example', pid = 4242 WHERE runId = \(id); UPDATE run SET updatedAt = extract(epoch from now()) WHERE id = \(id)"
                .components(separatedBy: "; ")[0]
        )
        _ = try (ledger.store as! PostgresLedger).fetch("UPDATE run SET updatedAt = extract(epoch from now()) WHERE id = \(id)")
        let other = try ledger.another(writer: "host-2")
        #expect {
            _ = try other.beginRun(daemonSpec, at: Date().timeIntervalSince1970)
        } throws: { error in
            "\(error)".contains("host-1.example") && "\(error)".contains("4242")
        }
    }
}

@Suite("Ledger copy: between backends with the audit intact", .enabled(if: Backend.available.contains(.postgres)))
struct LedgerCopyTests {
    @Test("SQLite → PostgreSQL → SQLite keeps every row, id and hash; each copy verifies with the same head")
    func roundTrip() throws {
        let original = try FreshLedger(.sqlite)
        let (loaded, run) = try prepared("mixtral-single-node", duration: 300)
        let first = try record(loaded, run, into: original.store, commitEvery: 250)
        _ = try record(loaded, try prepared("mixtral-single-node", duration: 200, seed: 8).1, into: original.store, commitEvery: 400)
        let series = CarbonSeries(
            metadata: SeriesMetadata(region: "GB", signal: .average, factor: .direct, kind: .actual, source: "test", issuedAt: nil, origin: "copy test"),
            checkedPoints: (0..<6).map { TimedValue(start: 1_700_000_000 + Double($0) * 1800, duration: 1800, value: 200 + Double($0)) }
        )
        _ = try original.store.store(series, at: 1_700_000_500)
        _ = try original.store.prune(before: run.scenario.startEpochSeconds + 150, at: 1_700_000_600)
        let head = try original.store.verify()
        #expect(head.ok && head.prunedBatches > 0)

        let middle = try FreshLedger(.postgres)
        let there = try LedgerCopy.copy(from: original.store, to: middle.store)
        let back = try FreshLedger(.sqlite)
        // The SQLite target is a new, empty file: FreshLedger made it, so copy into another.
        let again = try LedgerCopy.copy(from: middle.store, to: back.store)
        #expect(there.requestRows == again.requestRows && there.batches == again.batches && there.entries == again.entries)
        for copy in [middle.store, back.store] {
            let v = try copy.verify()
            #expect(v.ok, "\(v.problems)")
            #expect(v.headHash == head.headHash && v.entryHeadHash == head.entryHeadHash && v.requestRows == head.requestRows)
            var rows: [RequestRow] = [], expected: [RequestRow] = []
            try copy.forEachRequest(RowScope()) { rows.append($0) }
            try original.store.forEachRequest(RowScope()) { expected.append($0) }
            #expect(rows == expected)
            #expect(try copy.reconcile(run: first.run).balances)
            #expect(try copy.storedSeries(region: "GB").count == 1)
        }
        // The copy goes on: a new run appends and still verifies.
        _ = try record(loaded, try prepared("mixtral-single-node", duration: 60, seed: 2).1, into: middle.store, commitEvery: 100)
        #expect(try middle.store.verify().ok)
    }

    @Test("A target that is not empty, and a fleet ledger into SQLite, are refused with the reason")
    func refusals() throws {
        let a = try FreshLedger(.sqlite)
        let (loaded, run) = try prepared("mixtral-single-node", duration: 60)
        _ = try record(loaded, run, into: a.store, commitEvery: 100)
        let b = try FreshLedger(.postgres, writer: "one")
        _ = try record(loaded, run, into: b.store, commitEvery: 100)
        #expect { _ = try LedgerCopy.copy(from: a.store, to: b.store) } throws: { "\($0)".contains("empty") }
        _ = try record(loaded, run, into: try b.another(writer: "two"), commitEvery: 100)
        let c = try FreshLedger(.sqlite)
        #expect { _ = try LedgerCopy.copy(from: b.store, to: c.store) } throws: { "\($0)".contains("2 writers") }
    }
}

@Suite("Fleet ledger anchors: every writer's chain heads, kept outside", .enabled(if: Backend.available.contains(.postgres)))
struct FleetAnchorTests {
    @Test("A ledger extends its anchor as writers go on; a writer's cut tail is an anchor mismatch naming it")
    func anchors() throws {
        let ledger = try FreshLedger(.postgres, writer: "w1")
        let other = try ledger.another(writer: "w2")
        let (loaded, run) = try prepared("mixtral-single-node", duration: 120)
        _ = try record(loaded, run, into: ledger.store, commitEvery: 200)
        _ = try record(loaded, run, into: other, commitEvery: 300)
        let anchor = try ledger.store.anchor(at: 1)
        #expect(anchor.writers?.map(\.writer) == ["w1", "w2"])
        _ = try record(loaded, run, into: other, commitEvery: 300)
        let extended = try ledger.store.verify(limit: 20, anchor: anchor)
        #expect(extended.ok && extended.anchored, "\(extended.problems)")
        // w2's last batches cut off (rows, rollups and batches), which its own chain cannot show.
        try ledger.tamper("""
            DELETE FROM request WHERE id >= (SELECT min(firstRequestRow) FROM auditBatch b JOIN writer w ON w.id = b.writerId WHERE w.name = 'w2' AND b.seq > 2)
            """)
        try ledger.tamper("DELETE FROM auditBatch WHERE seq > 1 AND writerId = (SELECT id FROM writer WHERE name = 'w2')")
        let cut = try ledger.store.verify(limit: 100_000, anchor: anchor)
        #expect(cut.problems.contains { $0.kind == .anchorMismatch && $0.detail.contains("w2") }, "\(cut.problems)")
        // An SQLite ledger's anchor does not fit, and says so.
        let sqlite = try FreshLedger(.sqlite)
        let single = try sqlite.store.anchor(at: 1)
        #expect(throws: LedgerError.self) { try ledger.store.verify(limit: 20, anchor: single) }
        #expect(throws: LedgerError.self) { try sqlite.store.verify(limit: 20, anchor: anchor) }
    }
}
