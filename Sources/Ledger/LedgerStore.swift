import Accounting
import CarbonData
import Scheduling

/// Writing runs into a ledger: runs, their batches of records and intervals with the audit chain,
/// carbon-intensity series and scheduled jobs.
public protocol LedgerWriter: Sendable {
    /// Records the start of a run; returns its id.
    func beginRun(_ spec: RunSpec, at wallClock: Double) throws -> Int64
    /// Sets a run's status (and message, and summary JSON when it finished).
    func setStatus(_ status: RunStatus, run id: Int64, at wallClock: Double, message: String?, summary: String?) throws
    /// Commits a batch for a run, with its audit-chain entry: all of it or none.
    @discardableResult
    func append(_ batch: LedgerBatch, run runID: Int64, startEpochSeconds: Double, at wallClock: Double) throws -> AuditBatch
    /// Stores a carbon-intensity series; returns its id.
    func store(_ series: CarbonSeries, at wallClock: Double) throws -> Int64
    /// Stores several series in one transaction: all or none.
    func store(_ series: [CarbonSeries], at wallClock: Double) throws -> [Int64]
    /// Stores a scheduled job; returns its id.
    func store(_ job: ScheduledJob) throws -> Int64
    /// Deletes the request rows of batches that ended by `before`, keeping rollups and digests.
    func prune(before: Double, at wallClock: Double) throws -> PruneResult
    /// Marks `failed` every non-daemon run left `running` by a writer that is gone; returns their leases.
    @discardableResult
    func failAbandonedRuns(at wallClock: Double) throws -> [WriterLease]
}

/// Reading a ledger: every query Reports, the server, metrics, the daemon and the CLI need, by
/// name and with typed results.
public protocol LedgerQueries: Sendable {
    /// Where the ledger lives (a file path, or a URL without credentials), for messages.
    var location: String { get }
    func runs() throws -> [StoredRun]
    func run(_ id: Int64) throws -> StoredRun
    func newestRun(scenarioHash: String, name: String) throws -> StoredRun?
    func overview(_ run: StoredRun) throws -> RunOverview
    func overviews() throws -> [RunOverview]
    func progress(run id: Int64) throws -> Ledger.RunProgress
    func requests(run: Int64, _ q: RequestQuery) throws -> (items: [RequestRow], next: Int64?)
    func breakdown(request id: Int, run: Int64?) throws -> RequestBreakdown
    func forEachRequest(_ scope: RowScope, _ body: (RequestRow) throws -> Void) throws
    func forEachInterval(_ scope: RowScope, _ body: (IntervalRow) throws -> Void) throws
    /// The request rollups of `scope` (by minute of arrival), or nil when they cannot answer it:
    /// a run in scope has batches written before rollups, or a bound is not a whole minute.
    func rollups(_ scope: RowScope) throws -> [RollupRow]?
    func intervalTotals(run id: Int64) throws -> IntervalTotals
    func facilityPower(run id: Int64) throws -> [IntervalPower]
    func embodiedGramsPerGPUSecond(run id: Int64) throws -> Double
    func committedRequests(run id: Int64) throws -> Int
    func latestFinishedRequests(run id: Int64, limit: Int) throws -> [RequestRow]
    func spreadRequests(run id: Int64, count: Int) throws -> [RequestRow]
    func requests(after: Int64, limit: Int, runs: [Int64]) throws -> [RequestRow]
    func rollups(after: Int64, limit: Int) throws -> [RollupRow]
    func runsWithoutRollups() throws -> [Int64]
    func newestBatchEnd() throws -> Double?
    /// The rollups of run `id`'s latest batch with requests, and the simulated seconds that batch
    /// covered; nil when it has none (nothing committed yet, or recorded before rollups).
    func latestRollups(run id: Int64) throws -> (rows: [RollupRow], simulatedSeconds: Double)?
    func intervals(after: Int64, limit: Int) throws -> [IntervalRow]
    func lastCommits() throws -> [Int64: Double]
    func storedSeries(region: String?) throws -> [StoredSeries]
    func matchingSeries(_ filter: SeriesFilter) throws -> [StoredSeries]
    func series(id: Int64, from: Double?, to: Double?) throws -> CarbonSeries?
    func newestSeries(_ filter: SeriesFilter, from: Double?, to: Double?) throws -> (stored: StoredSeries, series: CarbonSeries)?
    func scheduledJobs() throws -> [ScheduledJob]
    func realisedIntensity(region: String, signal: CarbonSignal, spans: [(start: Double, end: Double)]) throws -> (gramsPerKWh: Double, series: StoredSeries)?
    /// The writer each run was last written by, by run id, in a ledger several writers share
    /// (PostgreSQL); empty for a ledger with one writer (SQLite).
    func writers() throws -> [Int64: String]
}

/// Checking a ledger's books: the audit chain and each run's energy balance.
public protocol LedgerAudit: Sendable {
    func verify(limit: Int, anchor: AuditAnchor?) throws -> AuditVerification
    /// The chain heads now, to keep outside the ledger (`audit verify --anchor`).
    func anchor(at wallClock: Double) throws -> AuditAnchor
    func reconcile(run id: Int64, tolerance: Double) throws -> Reconciliation
}

/// The ledger contract: what every store (SQLite now, PostgreSQL for fleets) provides.
public typealias LedgerStore = LedgerWriter & LedgerQueries & LedgerAudit

extension Ledger: LedgerWriter, LedgerQueries, LedgerAudit {
    public var location: String { path }
    /// One file, one writer at a time: no writer names.
    public func writers() throws -> [Int64: String] { [:] }
}

extension LedgerWriter {
    public func setStatus(_ status: RunStatus, run id: Int64, at wallClock: Double) throws {
        try setStatus(status, run: id, at: wallClock, message: nil, summary: nil)
    }

    public func setStatus(_ status: RunStatus, run id: Int64, at wallClock: Double, message: String?) throws {
        try setStatus(status, run: id, at: wallClock, message: message, summary: nil)
    }

    public func setStatus(_ status: RunStatus, run id: Int64, at wallClock: Double, summary: String?) throws {
        try setStatus(status, run: id, at: wallClock, message: nil, summary: summary)
    }
}

extension LedgerQueries {
    /// The newest series matching `filter` with points in the bounds (the same rule on every backend).
    public func newestSeries(_ filter: SeriesFilter, from: Double?, to: Double?) throws -> (stored: StoredSeries, series: CarbonSeries)? {
        for stored in try matchingSeries(filter) {
            if let s = try series(id: stored.id, from: from, to: to) { return (stored, s) }
        }
        return nil
    }

    /// The actual intensity over `spans` in `region`: the time-weighted mean from the newest
    /// actual series of that region and signal that covers every span fully, or nil (not known yet).
    public func realisedIntensity(region: String, signal: CarbonSignal, spans: [(start: Double, end: Double)]) throws -> (gramsPerKWh: Double, series: StoredSeries)? {
        guard let from = spans.map(\.start).min(), let to = spans.map(\.end).max() else { return nil }
        for stored in try matchingSeries(SeriesFilter(region: region, signal: signal, kind: .actual)) {
            guard let s = try series(id: stored.id, from: from, to: to) else { continue }
            var sum = 0.0, total = 0.0, complete = true
            for span in spans {
                let (mean, covered) = WindowSearch.coveredMean(s.points, from: span.start, to: span.end)
                if covered < span.end - span.start - 1e-6 { complete = false; break }
                sum += mean * covered
                total += covered
            }
            if complete && total > 0 { return (sum / total, stored) }
        }
        return nil
    }

    public func storedSeries() throws -> [StoredSeries] { try storedSeries(region: nil) }
    public func series(id: Int64) throws -> CarbonSeries? { try series(id: id, from: nil, to: nil) }
    public func newestSeries(_ filter: SeriesFilter) throws -> (stored: StoredSeries, series: CarbonSeries)? {
        try newestSeries(filter, from: nil, to: nil)
    }
}

extension LedgerAudit {
    public func verify() throws -> AuditVerification { try verify(limit: 20, anchor: nil) }
    public func reconcile(run id: Int64) throws -> Reconciliation { try reconcile(run: id, tolerance: 1e-9) }
}

extension LedgerQueries {
    /// The one rule for which stored series answers a planning query, shared by the CLI, the API,
    /// the dashboard and the Carbon Aware routes: the newest forecast for the region and signal,
    /// else its newest actuals.
    public func planningSeries(region: String, signal: CarbonSignal = .average) throws -> (stored: StoredSeries, series: CarbonSeries)? {
        try newestSeries(SeriesFilter(region: region, signal: signal, kind: .forecast), from: nil, to: nil)
            ?? newestSeries(SeriesFilter(region: region, signal: signal, kind: .actual), from: nil, to: nil)
    }
}
