import Crypto
import Foundation
import GRDB

/// What a run is when it starts: the scenario as stored text, how it was overridden, and its seed.
public struct RunSpec: Sendable {
    public var name: String
    /// `simulate` or `daemon`.
    public var source: String
    public var scenarioFile: String
    public var scenarioText: String
    /// The overrides applied to the file (flags, daemon settings), as canonical JSON.
    public var overrides: String
    public var seed: UInt64
    public var startEpochSeconds: Double
    public var intervalSeconds: Double
    public var pacing: String?
    public var resumedFrom: Int64?

    public init(
        name: String, source: String, scenarioFile: String, scenarioText: String, overrides: String, seed: UInt64,
        startEpochSeconds: Double, intervalSeconds: Double, pacing: String? = nil, resumedFrom: Int64? = nil
    ) {
        self.name = name
        self.source = source
        self.scenarioFile = scenarioFile
        self.scenarioText = scenarioText
        self.overrides = overrides
        self.seed = seed
        self.startEpochSeconds = startEpochSeconds
        self.intervalSeconds = intervalSeconds
        self.pacing = pacing
        self.resumedFrom = resumedFrom
    }

    /// Overrides as canonical JSON: string values, keys sorted, no spaces (stable, so hashes are).
    public static func canonicalOverrides(_ fields: [String: String]) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(fields)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    /// SHA-256 (hex) of the scenario text and its overrides: runs with equal hashes simulate the same thing.
    public var scenarioHash: String {
        var h = SHA256()
        h.update(data: Data(scenarioText.utf8))
        h.update(data: Data([0]))
        h.update(data: Data(overrides.utf8))
        return hex(h.finalize())
    }
}

/// Whether a run's figures were measured on real GPUs or simulated: shown beside every run.
public enum RunMode: String, Codable, Sendable, CaseIterable {
    case simulated
    case measured

    /// The run sources that record measured runs: `joule measure`, and the daemon's measured jobs.
    public static let measuredSources: Set<String> = ["measure", "daemon-measure"]

    public init(source: String) { self = RunMode.measuredSources.contains(source) ? .measured : .simulated }
}

/// A run's status.
public enum RunStatus: String, Codable, Sendable, CaseIterable {
    /// Being written, or cut off by a crash (resumable).
    case running
    /// Stopped on request (resumable).
    case stopped
    /// Reached its end.
    case finished
    /// Ended by an error.
    case failed
}

/// A run as stored: the `run` table.
public struct StoredRun: Codable, Sendable, Hashable, FetchableRecord, MutablePersistableRecord {
    public static let databaseTableName = "run"

    public var id: Int64?
    public var name: String
    public var source: String
    public var scenarioFile: String
    public var scenarioText: String
    public var overrides: String
    public var scenarioHash: String
    public var codeVersion: String
    /// The seed's bit pattern (SQLite integers are signed).
    public var seed: Int64
    public var startEpochSeconds: Double
    public var intervalSeconds: Double
    public var pacing: String?
    public var createdAt: Double
    public var updatedAt: Double
    public var endedAt: Double?
    public var status: RunStatus
    public var message: String?
    public var resumedFrom: Int64?
    /// The run summary as JSON, when the run finished.
    public var summary: String?

    public enum Columns {
        public static let id = Column(CodingKeys.id)
        public static let name = Column(CodingKeys.name)
        public static let scenarioHash = Column(CodingKeys.scenarioHash)
        public static let status = Column(CodingKeys.status)
    }

    public var seedValue: UInt64 { UInt64(bitPattern: seed) }

    /// Measured (recorded from real telemetry and request logs) or simulated: from `source`.
    public var mode: RunMode { RunMode(source: source) }

    public mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

extension Ledger {
    /// Records the start of a run; returns its id.
    public func beginRun(_ spec: RunSpec, at wallClock: Double) throws -> Int64 {
        try write { db in
            // A daemon job is one writer: a live one already on this job is an error naming it.
            if spec.source == "daemon" {
                for id in try Int64.fetchAll(db, sql: "SELECT id FROM run WHERE name = ? AND status = 'running'", arguments: [spec.name]) {
                    try Ledger.claim(run: id, at: wallClock, db)
                }
            }
            var run = StoredRun(
                id: nil, name: spec.name, source: spec.source, scenarioFile: spec.scenarioFile, scenarioText: spec.scenarioText,
                overrides: spec.overrides, scenarioHash: spec.scenarioHash, codeVersion: Ledger.codeVersion,
                seed: Int64(bitPattern: spec.seed), startEpochSeconds: spec.startEpochSeconds, intervalSeconds: spec.intervalSeconds,
                pacing: spec.pacing, createdAt: wallClock, updatedAt: wallClock, endedAt: nil, status: .running, message: nil,
                resumedFrom: spec.resumedFrom, summary: nil
            )
            try run.insert(db)
            try Ledger.recordStatus(.running, run: run.id!, message: nil, at: wallClock, key: auditKey, db)
            return run.id!
        }
    }

    /// Sets a run's status (and message, and summary JSON when it finished).
    public func setStatus(_ status: RunStatus, run id: Int64, at wallClock: Double, message: String? = nil, summary: String? = nil) throws {
        try write { db in
            guard var run = try StoredRun.fetchOne(db, key: id) else { throw LedgerError.unknownRun(id) }
            if status == .running { try Ledger.claim(run: id, at: wallClock, db) }
            run.status = status
            run.updatedAt = wallClock
            run.message = message
            if status == .running {
                run.endedAt = nil
            } else {
                run.endedAt = wallClock
            }
            if let summary { run.summary = summary }
            try run.update(db)
            try Ledger.recordStatus(status, run: id, message: message, at: wallClock, key: auditKey, db)
        }
    }

    /// All runs, newest first.
    public func runs() throws -> [StoredRun] {
        try pool.read { db in try StoredRun.order(StoredRun.Columns.id.desc).fetchAll(db) }
    }

    /// One run.
    public func run(_ id: Int64) throws -> StoredRun {
        guard let run = try pool.read({ db in try StoredRun.fetchOne(db, key: id) }) else { throw LedgerError.unknownRun(id) }
        return run
    }

    /// The newest run named `name` with `scenarioHash`, whatever its status.
    public func newestRun(scenarioHash: String, name: String) throws -> StoredRun? {
        try pool.read { db in
            try StoredRun
                .filter(StoredRun.Columns.scenarioHash == scenarioHash && StoredRun.Columns.name == name)
                .order(StoredRun.Columns.id.desc)
                .fetchOne(db)
        }
    }
}

/// A run as listings show it (`joule runs`, the HTTP API): its identity and how far it got,
/// without the scenario text.
public struct RunOverview: Codable, Sendable, Hashable {
    public var id: Int64
    public var name: String
    public var source: String
    /// `measured` or `simulated`.
    public var mode: RunMode
    public var status: String
    public var startEpochSeconds: Double
    public var createdAt: Double
    /// Request rows stored.
    public var requests: Int
    /// Simulated seconds at the last committed checkpoint.
    public var simulatedSeconds: Double
    public var scenarioHash: String
    public var codeVersion: String
    public var seed: UInt64
    public var resumedFrom: Int64?
    public var message: String?
    /// The writer that last wrote the run, in a ledger several writers share (PostgreSQL).
    public var writer: String?
}

extension RunOverview {
    /// `run` as listings show it, at `progress`.
    init(_ run: StoredRun, progress p: Ledger.RunProgress, writer: String? = nil) {
        self.init(
            id: run.id!, name: run.name, source: run.source, mode: run.mode, status: run.status.rawValue, startEpochSeconds: run.startEpochSeconds,
            createdAt: run.createdAt, requests: p.storedRequests, simulatedSeconds: p.checkpoint?.time ?? 0,
            scenarioHash: run.scenarioHash, codeVersion: run.codeVersion, seed: run.seedValue, resumedFrom: run.resumedFrom, message: run.message,
            writer: writer
        )
    }
}

extension Ledger {
    /// The overview of `run`.
    public func overview(_ run: StoredRun) throws -> RunOverview { RunOverview(run, progress: try progress(run: run.id!)) }

    /// Every run's overview, newest first.
    public func overviews() throws -> [RunOverview] { try runs().map(overview) }
}
