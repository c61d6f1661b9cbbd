import Accounting
import Foundation
import GRDB
import Serving

/// One request's cost, explained from its stored record.
public struct RequestBreakdown: Sendable, Encodable {
    public var run: Int64
    public var scenario: String
    /// `measured` or `simulated`.
    public var mode: RunMode
    public var startEpochSeconds: Double
    /// The audit batch it was committed in.
    public var batch: Int64
    public var record: RequestRecord
    /// The site's PUE, as the record implies it (facility ÷ IT energy).
    public var pue: Double
    /// Embodied grams per GPU-second of the model the run used.
    public var embodiedGramsPerGPUSecond: Double
    /// |Σ parts − facility total| ÷ facility total.
    public var partsResidual: Double
}

/// Whether a run's books balance: Σ request energy (plus what the requests still held have drawn,
/// plus idle energy not yet attributed) against the energy of its cluster intervals.
public struct Reconciliation: Sendable, Codable {
    public var run: Int64
    public var status: RunStatus
    /// `measured` or `simulated`: a measured run balances against the metered GPU energy.
    public var mode: RunMode = .simulated
    public var requestRows: Int
    public var inFlightRows: Int
    public var intervalRows: Int
    /// Σ facility energy of the run's request rows, kWh.
    public var requestsKWh: Double
    /// Energy drawn by requests still held at the last checkpoint, kWh (0 once a run has finished).
    public var pendingKWh: Double
    public var pendingRequests: Int
    /// Idle energy of intervals with no work, not yet attributed, kWh.
    public var unattributedKWh: Double
    /// Σ facility energy of the run's cluster intervals, kWh.
    public var intervalsKWh: Double
    /// |requests + pending + unattributed − intervals| ÷ intervals.
    public var relativeResidual: Double
    /// Rows stored against the counts the last checkpoint says were emitted.
    public var checkpointRecords: Int
    public var checkpointIntervals: Int
    public var tolerance: Double
    /// Committed batches: a run that ended with none has lost its rows (or never wrote any).
    public var batches: Int = 0
    /// What the run's request rollups add up to (finished and in-flight requests, their energy in
    /// kWh); nil for a run recorded before rollups.
    public var rollupRequests: Int?
    public var rollupKWh: Double?
    /// Request rows pruned (`ledger prune`): counted, with their energy in `requestsKWh`, from
    /// their batches' rollups.
    public var prunedRequestRows: Int = 0

    /// Whether the rollups agree with the rows: the same count, the same energy to `tolerance`.
    public var rollupsMatch: Bool {
        guard let n = rollupRequests, let kwh = rollupKWh else { return true }
        return n == requestRows + prunedRequestRows && abs(kwh - requestsKWh) <= tolerance * max(abs(requestsKWh), .leastNormalMagnitude)
    }

    public var balances: Bool {
        relativeResidual <= tolerance && checkpointRecords == requestRows + prunedRequestRows && checkpointIntervals == intervalRows
            && (batches > 0 || status == .running) && rollupsMatch
    }
}

extension RequestBreakdown {
    /// Request `id`'s cost in `run` (committed in `batch`), explained from its record.
    init(_ run: StoredRun, batch: Int64, record r: RequestRecord) {
        let it = r.itJoules
        let parts = r.gpuActiveJoules + r.gpuIdleJoules + r.hostJoules + r.facilityOverheadJoules
        self.init(
            run: run.id!, scenario: run.name, mode: run.mode, startEpochSeconds: run.startEpochSeconds, batch: batch, record: r,
            pue: it > 0 ? r.facilityJoules / it : 1,
            embodiedGramsPerGPUSecond: r.gpuSeconds > 0 ? r.embodiedCarbonGrams / r.gpuSeconds : 0,
            partsResidual: r.facilityJoules > 0 ? abs(parts - r.facilityJoules) / r.facilityJoules : 0
        )
    }

    /// Which run's row of request `id` answers: `named` when given (an error naming what is
    /// missing when it does not hold it), else the only run among `holding`.
    static func run(of id: Int, named: Int64?, holding: [Int64], exists: (Int64) throws -> Bool) throws -> Int64 {
        let runs = Array(Set(holding)).sorted()
        if let named {
            guard runs.contains(named) else {
                if try !exists(named) { throw LedgerError.unknownRun(named) }
                throw LedgerError.unknownRequest(id: id, run: named)
            }
            return named
        }
        guard let only = runs.first else { throw LedgerError.unknownRequest(id: id, run: nil) }
        guard runs.count == 1 else { throw LedgerError.ambiguousRequest(id: id, runs: runs) }
        return only
    }
}

extension Ledger {
    /// The stored record of request `id`, in `run` or (when nil) in the only run that has it.
    public func breakdown(request id: Int, run: Int64?) throws -> RequestBreakdown {
        try pool.read { db in
            let found = try Ledger.findRequest(id, run: run, db)
            let runID = try RequestBreakdown.run(of: id, named: run, holding: found.map(\.runID)) {
                try StoredRun.fetchOne(db, key: $0) != nil
            }
            guard let request = found.first(where: { $0.runID == runID }),
                  let stored = try StoredRun.fetchOne(db, key: runID) else { throw LedgerError.unknownRequest(id: id, run: runID) }
            let batch = try Int64.fetchOne(
                db, sql: "SELECT seq FROM auditBatch WHERE runId = ? AND firstRequestRow <= ? ORDER BY seq DESC LIMIT 1", arguments: [runID, request.rowID]
            ) ?? 0
            return RequestBreakdown(stored, batch: batch, record: request.record)
        }
    }

    /// The rows of request `id` (in `run`, or in every run): read from the batches whose id range
    /// holds it, a scan of each batch's rows (the table has no index on request ids).
    static func findRequest(_ id: Int, run: Int64?, _ db: Database) throws -> [RequestRow] {
        let batches = try Row.fetchAll(db, sql: """
            SELECT firstRequestRow AS a, requestCount AS n FROM auditBatch
            WHERE requestCount > 0 AND (?1 IS NULL OR runId = ?1) AND (minRequestId IS NULL OR (minRequestId <= ?2 AND maxRequestId >= ?2))
            ORDER BY seq
            """, arguments: [run, id])
        var reader = RequestReader(db)
        var out: [RequestRow] = []
        for b in batches {
            let first: Int64 = try b.value("a", in: "auditBatch"), count: Int64 = try b.value("n", in: "auditBatch")
            out += try reader.fetchAll(sql: CompactRequest.selectAll + " WHERE id BETWEEN ? AND ? AND requestId = ?", arguments: [first, first + count - 1, id])
        }
        return out
    }

    /// Σ request energy against the cluster intervals' energy for run `id`.
    public func reconcile(run id: Int64, tolerance: Double = 1e-9) throws -> Reconciliation {
        try pool.read { db in
            guard let run = try StoredRun.fetchOne(db, key: id) else { throw LedgerError.unknownRun(id) }
            // The run's rows, read in table order over the span its batches name (see `RowScope.clause`).
            let span = try Ledger.requestSpan(runs: [id], db)
            let requests = try Row.fetchOne(
                db, sql: """
                    SELECT count(*) AS n, coalesce(sum(inFlight), 0) AS inFlight, total(facilityJoules) AS joules
                    FROM request WHERE id BETWEEN ? AND ? AND runId = ?
                    """,
                arguments: [span?.lowerBound ?? 1, span?.upperBound ?? 0, id]
            )!
            let intervals = try Row.fetchOne(
                db, sql: "SELECT count(*) AS n, total(facilityJoules) AS joules FROM clusterInterval WHERE runId = ?", arguments: [id]
            )!
            let last = try Ledger.lastCheckpoint(run: id, db)
            // The rollups, when every batch of the run kept them, against the rows just summed.
            let rollups = try !Ledger.runsWithoutRollups(among: [id], db).isEmpty ? nil : Row.fetchOne(db, sql: """
                SELECT coalesce(sum(requests + inFlight), 0) AS n, total(facilityJoules) + total(inFlightFacilityJoules) AS joules
                FROM requestRollup WHERE runId = ?
                """, arguments: [id])
            // Batches whose rows were pruned count from their rollups.
            let prunedSeqs = try Ledger.prunedBatches(db)
            var prunedRows = 0, prunedJoules = 0.0
            if !prunedSeqs.isEmpty {
                for b in try Row.fetchAll(db, sql: "SELECT seq, firstRollupRow AS f, rollupCount AS n FROM auditBatch WHERE runId = ? AND rollupCount > 0",
                                          arguments: [id]) where prunedSeqs.contains(try b.value("seq", in: "auditBatch")) {
                    let first: Int64 = try b.value("f", in: "auditBatch"), count: Int64 = try b.value("n", in: "auditBatch")
                    let r = try Row.fetchOne(db, sql: """
                        SELECT coalesce(sum(requests + inFlight), 0) AS n, total(facilityJoules) + total(inFlightFacilityJoules) AS j
                        FROM requestRollup WHERE id BETWEEN ? AND ?
                        """, arguments: [first, first + count - 1])
                    prunedRows += try r?.value("n", in: "requestRollup") ?? 0
                    prunedJoules += try r?.value("j", in: "requestRollup") ?? 0
                }
            }
            let requestJoules: Double = (requests["joules"] as Double) + prunedJoules
            let intervalJoules: Double = intervals["joules"]
            let pending = last?.pendingFacilityJoules ?? 0
            let unattributed = last?.unattributedFacilityJoules ?? 0
            let accounted = requestJoules + pending + unattributed
            let residual = intervalJoules > 0 ? abs(accounted - intervalJoules) / intervalJoules : (accounted == 0 ? 0 : .infinity)
            var result = Reconciliation(
                run: id, status: run.status, requestRows: requests["n"], inFlightRows: requests["inFlight"], intervalRows: intervals["n"],
                requestsKWh: requestJoules / 3.6e6, pendingKWh: pending / 3.6e6, pendingRequests: last?.pendingRequests ?? 0,
                unattributedKWh: unattributed / 3.6e6, intervalsKWh: intervalJoules / 3.6e6, relativeResidual: residual,
                checkpointRecords: last?.records ?? 0, checkpointIntervals: last?.intervals ?? 0, tolerance: tolerance,
                batches: try AuditBatch.filter(Column("runId") == id).fetchCount(db),
                rollupRequests: try rollups.map { try $0.value("n", in: "requestRollup") },
                rollupKWh: try rollups.map { (try $0.value("joules", in: "requestRollup") as Double) / 3.6e6 },
                prunedRequestRows: prunedRows
            )
            result.mode = run.mode
            return result
        }
    }
}
