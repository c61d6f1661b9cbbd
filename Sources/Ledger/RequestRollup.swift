import Accounting
import Foundation
import GRDB
import Serving

/// What a batch's requests add up to, per minute of arrival: the `requestRollup` table.
///
/// Written with the batch, in its transaction and under its audit digest, so reports, summaries
/// and the dashboard read a run's totals and distributions from a few rows a minute instead of
/// every request. Sums are over the batch's rows in row order; sketches merge exactly (bucket
/// counts add), so a run's quantiles from its rollups are those of its rows.
public struct RequestRollup: Hashable, Sendable {
    /// The arrival minute's start, seconds after the run's start (whole minutes on the wall clock).
    public var minuteSeconds: Double
    /// Finished requests, and those stored still in flight at the run's end.
    public var requests: Int
    public var inFlight: Int
    /// Sums over the finished requests.
    public var facilityJoules: Double
    public var promptTokens: Int
    public var cachedTokens: Int
    public var outputTokens: Int
    public var operationalCarbonGrams: Double
    public var embodiedCarbonGrams: Double
    public var gpuSeconds: Double
    /// Energy of the requests in flight.
    public var inFlightFacilityJoules: Double
    /// Finished requests that carry a training share, and its sums.
    public var trained: Int
    public var trainingTokens: Double
    public var trainingFacilityJoules: Double
    public var trainingCarbonGrams: Double
    public var trainingGPUSeconds: Double
    /// Distributions over the finished requests: facility energy (J), TTFT, TPOT, end-to-end (s).
    public var energy: QuantileSketch
    public var ttft: QuantileSketch
    public var tpot: QuantileSketch
    public var e2e: QuantileSketch

    public static let minute = 60.0

    public static let empty = RequestRollup(
        minuteSeconds: 0, requests: 0, inFlight: 0, facilityJoules: 0, promptTokens: 0, cachedTokens: 0, outputTokens: 0,
        operationalCarbonGrams: 0, embodiedCarbonGrams: 0, gpuSeconds: 0, inFlightFacilityJoules: 0, trained: 0, trainingTokens: 0,
        trainingFacilityJoules: 0, trainingCarbonGrams: 0, trainingGPUSeconds: 0, energy: QuantileSketch(), ttft: QuantileSketch(),
        tpot: QuantileSketch(), e2e: QuantileSketch()
    )

    /// Adds one request row: the one fold of requests into figures, for rollups at ingest and
    /// for readers that scan rows.
    public mutating func add(_ r: RequestRecord) {
        if r.inFlight {
            inFlight += 1
            inFlightFacilityJoules += r.facilityJoules
            return
        }
        requests += 1
        facilityJoules += r.facilityJoules
        promptTokens += r.promptTokens
        cachedTokens += r.cachedTokens
        outputTokens += r.outputTokens
        operationalCarbonGrams += r.operationalCarbonGrams
        embodiedCarbonGrams += r.embodiedCarbonGrams
        gpuSeconds += r.gpuSeconds
        if let t = r.training {
            trained += 1
            trainingTokens += t.tokens
            trainingFacilityJoules += t.facilityJoules
            trainingCarbonGrams += t.carbonGrams
            trainingGPUSeconds += t.gpuSeconds
        }
        energy.add(r.facilityJoules)
        if let v = r.ttft { ttft.add(v) }
        if let v = r.tpot { tpot.add(v) }
        if let v = r.endToEnd { e2e.add(v) }
    }

    /// Adds another rollup's rows.
    public mutating func merge(_ o: RequestRollup) {
        requests += o.requests
        inFlight += o.inFlight
        facilityJoules += o.facilityJoules
        promptTokens += o.promptTokens
        cachedTokens += o.cachedTokens
        outputTokens += o.outputTokens
        operationalCarbonGrams += o.operationalCarbonGrams
        embodiedCarbonGrams += o.embodiedCarbonGrams
        gpuSeconds += o.gpuSeconds
        inFlightFacilityJoules += o.inFlightFacilityJoules
        trained += o.trained
        trainingTokens += o.trainingTokens
        trainingFacilityJoules += o.trainingFacilityJoules
        trainingCarbonGrams += o.trainingCarbonGrams
        trainingGPUSeconds += o.trainingGPUSeconds
        energy.merge(o.energy)
        ttft.merge(o.ttft)
        tpot.merge(o.tpot)
        e2e.merge(o.e2e)
    }

    /// The rollups of a batch's records: one per minute of arrival on the wall clock, in minute order.
    static func of(_ records: [RequestRecord], runStartEpochSeconds start: Double) -> [RequestRollup] {
        var byMinute: [Double: RequestRollup] = [:]
        for r in records {
            let minute = ((start + r.arrival) / minute).rounded(.down) * minute - start
            byMinute[minute, default: RequestRollup.empty.at(minute)].add(r)
        }
        return byMinute.keys.sorted().map { byMinute[$0]! }
    }

    private func at(_ minute: Double) -> RequestRollup {
        var r = self
        r.minuteSeconds = minute
        return r
    }
}

/// A stored rollup row.
public typealias RollupRow = StoredRow<RequestRollup>

extension RequestRollup: StoredRecord {
    static let table = "requestRollup"
    static let blank = RequestRollup.empty
    var runSeconds: Double { minuteSeconds }

    static func visit<V: ColumnVisitor>(_ v: inout V, run: inout Int64, epochSeconds: inout Double, record r: inout RequestRollup) {
        v.integer("runId", &run)
        v.real("minuteSeconds", &r.minuteSeconds)
        v.real("minuteEpochSeconds", &epochSeconds)
        v.integer("requests", &r.requests)
        v.integer("inFlight", &r.inFlight)
        v.real("facilityJoules", &r.facilityJoules)
        v.integer("promptTokens", &r.promptTokens)
        v.integer("cachedTokens", &r.cachedTokens)
        v.integer("outputTokens", &r.outputTokens)
        v.real("operationalCarbonGrams", &r.operationalCarbonGrams)
        v.real("embodiedCarbonGrams", &r.embodiedCarbonGrams)
        v.real("gpuSeconds", &r.gpuSeconds)
        v.real("inFlightFacilityJoules", &r.inFlightFacilityJoules)
        v.integer("trained", &r.trained)
        v.real("trainingTokens", &r.trainingTokens)
        v.real("trainingFacilityJoules", &r.trainingFacilityJoules)
        v.real("trainingCarbonGrams", &r.trainingCarbonGrams)
        v.real("trainingGPUSeconds", &r.trainingGPUSeconds)
        v.sketch("energySketch", &r.energy)
        v.sketch("ttftSketch", &r.ttft)
        v.sketch("tpotSketch", &r.tpot)
        v.sketch("e2eSketch", &r.e2e)
    }
}

/// A sketch's bytes in the ledger: its portable form (`QuantileSketch.buckets`), as varints.
///
/// Layout: the value count of zeros, the number of buckets, then each bucket as the gap from
/// the previous key and its count (unsigned LEB128 varints; the first key's gap is from 0), then
/// the minimum and maximum as IEEE-754 bit patterns, 8 bytes big-endian. An empty sketch is no
/// bytes.
enum SketchCoding {
    static func encode(_ s: QuantileSketch) -> [UInt8] {
        guard s.count > 0 else { return [] }
        var out: [UInt8] = []
        let buckets = s.buckets
        out.reserveCapacity(16 + 3 * buckets.count)
        varint(UInt64(s.zeroCount), &out)
        varint(UInt64(buckets.count), &out)
        var last = 0
        for b in buckets {
            varint(UInt64(b.key - last), &out)
            varint(UInt64(b.count), &out)
            last = b.key
        }
        for v in [s.minimum, s.maximum] {
            withUnsafeBytes(of: v.bitPattern.bigEndian) { out.append(contentsOf: $0) }
        }
        return out
    }

    /// The sketch of `bytes`, or nil when they are not one.
    static func decode(_ bytes: [UInt8]) -> QuantileSketch? {
        guard !bytes.isEmpty else { return QuantileSketch() }
        var i = 0
        func next() -> UInt64? {
            var value: UInt64 = 0, shift: UInt64 = 0
            while i < bytes.count, shift < 64 {
                let b = bytes[i]
                i += 1
                value |= UInt64(b & 0x7F) << shift
                if b & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }
        guard let zeros = next(), let n = next(), zeros <= UInt64(Int32.max), n <= UInt64(bytes.count) else { return nil }
        var buckets: [(key: Int, count: Int)] = []
        var key: UInt64 = 0
        for _ in 0..<n {
            guard let gap = next(), let count = next(), gap <= 1 << 20, count <= UInt64(UInt32.max) else { return nil }
            key += gap
            buckets.append((Int(key), Int(count)))
        }
        guard bytes.count - i == 16 else { return nil }
        func double(_ at: Int) -> Double {
            Double(bitPattern: bytes[at..<at + 8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        }
        return QuantileSketch(buckets: buckets, zeros: Int(zeros), minimum: double(i), maximum: double(i + 8))
    }

    static func varint(_ v: UInt64, _ out: inout [UInt8]) {
        var v = v
        while v >= 0x80 {
            out.append(UInt8(v & 0x7F) | 0x80)
            v >>= 7
        }
        out.append(UInt8(v))
    }
}

extension Ledger {
    public func rollups(_ scope: RowScope) throws -> [RollupRow]? {
        let wholeMinutes = [scope.from, scope.to].allSatisfy { bound in
            bound.map { $0.truncatingRemainder(dividingBy: RequestRollup.minute) == 0 } ?? true
        }
        guard wholeMinutes else { return nil }
        return try pool.read { db in
            guard try Ledger.runsWithoutRollups(among: scope.runs, db).isEmpty else { return nil }
            let (clause, arguments) = scope.clause(time: "minuteEpochSeconds", requests: false)
            return try Row.fetchAll(db, sql: RollupRow.selectAll + clause + " ORDER BY id", arguments: arguments).map { try RollupRow.stored($0) }
        }
    }
}

extension Ledger {
    public func latestRollups(run id: Int64) throws -> (rows: [RollupRow], simulatedSeconds: Double)? {
        try pool.read { db in
            let t = "auditBatch"
            guard let last = try Row.fetchOne(db.cachedStatement(sql: """
                SELECT seq, firstRollupRow, rollupCount, simulatedSeconds FROM auditBatch
                WHERE runId = ? AND rollupCount > 0 AND digestScheme >= 3 ORDER BY seq DESC LIMIT 1
                """), arguments: [id]),
                let first = try last.value("firstRollupRow", in: t) as Int64? else { return nil }
            let seq: Int64 = try last.value("seq", in: t)
            let count: Int = try last.value("rollupCount", in: t)
            let end: Double = try last.value("simulatedSeconds", in: t)
            let start = try Double.fetchOne(db.cachedStatement(sql: "SELECT simulatedSeconds FROM auditBatch WHERE runId = ? AND seq < ? ORDER BY seq DESC LIMIT 1"),
                                            arguments: [id, seq]) ?? 0
            let rows = try Row.fetchAll(db.cachedStatement(sql: RollupRow.selectAll + " WHERE id BETWEEN ? AND ? ORDER BY id"), arguments: [first, first + Int64(count) - 1])
                .map { try RollupRow.stored($0) }
            return (rows, max(0, end - start))
        }
    }
}
