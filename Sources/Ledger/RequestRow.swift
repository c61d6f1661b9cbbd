import GRDB
import Accounting
import Serving

/// Visits a stored record's fields in column order, by name and in place: the one walk that
/// inserts a row, computes its audit digest, reads it back and names its columns. A field is
/// added to a table by one line in its `visit` and one migration (docs/ledger.md).
protocol ColumnVisitor {
    mutating func integer(_ name: StaticString, _ value: inout Int64)
    mutating func integer(_ name: StaticString, _ value: inout Int)
    mutating func integer(_ name: StaticString, _ value: inout Int?)
    mutating func flag(_ name: StaticString, _ value: inout Bool)
    mutating func real(_ name: StaticString, _ value: inout Double)
    mutating func real(_ name: StaticString, _ value: inout Double?)
    mutating func text(_ name: StaticString, _ value: inout String)
    /// A stored value computed from the others (for queries): written, never read back.
    mutating func derived(_ name: StaticString, _ value: Double)
}

/// A table's stored record: its fields' one walk.
protocol StoredTable {
    static var table: String { get }
    /// A record with every field at its zero, for reading into.
    static var blank: Self { get }
    mutating func visit<V: ColumnVisitor>(_ v: inout V)
}

extension StoredTable {
    /// The columns after `id`, in schema order.
    static var columnNames: [String] {
        var names = NameCollector()
        var row = blank
        row.visit(&names)
        return names.names
    }
}

/// Collects column names.
struct NameCollector: ColumnVisitor {
    var names: [String] = []
    mutating func integer(_ name: StaticString, _ value: inout Int64) { names.append("\(name)") }
    mutating func integer(_ name: StaticString, _ value: inout Int) { names.append("\(name)") }
    mutating func integer(_ name: StaticString, _ value: inout Int?) { names.append("\(name)") }
    mutating func flag(_ name: StaticString, _ value: inout Bool) { names.append("\(name)") }
    mutating func real(_ name: StaticString, _ value: inout Double) { names.append("\(name)") }
    mutating func real(_ name: StaticString, _ value: inout Double?) { names.append("\(name)") }
    mutating func text(_ name: StaticString, _ value: inout String) { names.append("\(name)") }
    mutating func derived(_ name: StaticString, _ value: Double) { names.append("\(name)") }
}

/// A stored request: the `request` table, one row per request a run recorded.
///
/// The record's times are seconds after the run's start; `arrivalEpochSeconds` is the same
/// arrival on the wall clock (seconds since 1970), for time-range queries. Latencies are the
/// record's (`ttft`, `tpot`, `endToEnd`, `queueWait`), derived from its times in one place.
public struct RequestRow: Hashable, Sendable, Encodable, StoredTable {
    /// The row id (the audit chain names rows by it; the API pages by it).
    public var rowID: Int64
    public var runID: Int64
    public var arrivalEpochSeconds: Double
    public var record: RequestRecord

    public init(rowID: Int64 = 0, runID: Int64, startEpochSeconds: Double, record: RequestRecord) {
        self.rowID = rowID
        self.runID = runID
        self.arrivalEpochSeconds = startEpochSeconds + record.arrival
        self.record = record
    }

    static let table = "request"
    static let blank = RequestRow(runID: 0, startEpochSeconds: 0, record: RequestRecord(
        id: 0, inFlight: false, arrival: 0, prefillStart: nil, firstToken: nil, finish: nil, prefillUnit: nil, decodeUnit: nil,
        promptTokens: 0, cachedTokens: 0, outputTokens: 0, gpuActiveJoules: 0, gpuIdleJoules: 0, hostJoules: 0,
        facilityOverheadJoules: 0, facilityJoules: 0, gpuSeconds: 0, intensityGramsPerKWh: 0, operationalCarbonGrams: 0,
        embodiedCarbonGrams: 0, meanPowerWatts: 0
    ))
    /// The columns after `id`, in schema order.
    public static let columns = columnNames

    mutating func visit<V: ColumnVisitor>(_ v: inout V) {
        v.integer("runId", &runID)
        v.integer("requestId", &record.id)
        v.flag("inFlight", &record.inFlight)
        v.real("arrivalSeconds", &record.arrival)
        v.real("arrivalEpochSeconds", &arrivalEpochSeconds)
        v.real("prefillStartSeconds", &record.prefillStart)
        v.real("firstTokenSeconds", &record.firstToken)
        v.real("finishSeconds", &record.finish)
        v.integer("prefillUnit", &record.prefillUnit)
        v.integer("decodeUnit", &record.decodeUnit)
        v.integer("promptTokens", &record.promptTokens)
        v.integer("cachedTokens", &record.cachedTokens)
        v.integer("outputTokens", &record.outputTokens)
        v.real("gpuActiveJoules", &record.gpuActiveJoules)
        v.real("gpuIdleJoules", &record.gpuIdleJoules)
        v.real("hostJoules", &record.hostJoules)
        v.real("facilityOverheadJoules", &record.facilityOverheadJoules)
        v.real("facilityJoules", &record.facilityJoules)
        v.real("gpuSeconds", &record.gpuSeconds)
        v.real("intensityGramsPerKWh", &record.intensityGramsPerKWh)
        v.real("operationalCarbonGrams", &record.operationalCarbonGrams)
        v.real("embodiedCarbonGrams", &record.embodiedCarbonGrams)
        v.real("meanPowerWatts", &record.meanPowerWatts)
        // v3: the request's share of its model's training footprint (NULL when none is charged).
        var tokens = record.training?.tokens, joules = record.training?.facilityJoules
        var grams = record.training?.carbonGrams, seconds = record.training?.gpuSeconds
        v.real("trainingTokens", &tokens)
        v.real("trainingFacilityJoules", &joules)
        v.real("trainingCarbonGrams", &grams)
        v.real("trainingGPUSeconds", &seconds)
        record.training = tokens.map { TrainingShare(tokens: $0, facilityJoules: joules ?? 0, carbonGrams: grams ?? 0, gpuSeconds: seconds ?? 0) }
    }

    /// The row's identity, then every field of its record (with the derived latencies and totals),
    /// under the record's names: what the API returns.
    public func encode(to encoder: Encoder) throws {
        enum Key: String, CodingKey { case row, run, arrivalEpochSeconds }
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(rowID, forKey: .row)
        try c.encode(runID, forKey: .run)
        try c.encode(arrivalEpochSeconds, forKey: .arrivalEpochSeconds)
        try record.encode(to: encoder)
    }
}

/// A stored unit interval: the `clusterInterval` table, one row per unit per accounting interval.
public struct IntervalRow: Hashable, Sendable, StoredTable {
    public var rowID: Int64
    public var runID: Int64
    /// The interval's start on the wall clock (seconds since 1970).
    public var startEpochSeconds: Double
    public var interval: ClusterInterval

    public init(rowID: Int64 = 0, runID: Int64, runStartEpochSeconds: Double, interval: ClusterInterval) {
        self.rowID = rowID
        self.runID = runID
        self.startEpochSeconds = runStartEpochSeconds + interval.start
        self.interval = interval
    }

    static let table = "clusterInterval"
    static let blank = IntervalRow(runID: 0, runStartEpochSeconds: 0, interval: ClusterInterval(
        unit: 0, role: .prefill, start: 0, end: 0, gpuActiveJoules: 0, hostActiveJoules: 0, gpuIdleJoules: 0, hostIdleJoules: 0,
        facilityJoules: 0, operationalCarbonGrams: 0, gpuSeconds: 0, busyFraction: 0, inServiceSeconds: 0, nodes: 0
    ))
    /// The columns after `id`, in schema order.
    public static let columns = columnNames

    mutating func visit<V: ColumnVisitor>(_ v: inout V) {
        var role = interval.role.rawValue
        v.integer("runId", &runID)
        v.integer("unit", &interval.unit)
        v.text("role", &role)
        interval.role = UnitRole(rawValue: role) ?? .colocated
        v.real("startSeconds", &interval.start)
        v.real("endSeconds", &interval.end)
        v.real("startEpochSeconds", &startEpochSeconds)
        v.integer("nodes", &interval.nodes)
        v.real("gpuActiveJoules", &interval.gpuActiveJoules)
        v.real("hostActiveJoules", &interval.hostActiveJoules)
        v.real("gpuIdleJoules", &interval.gpuIdleJoules)
        v.real("hostIdleJoules", &interval.hostIdleJoules)
        v.real("facilityJoules", &interval.facilityJoules)
        v.derived("meanPowerWatts", interval.meanFacilityWatts)
        v.real("busyFraction", &interval.busyFraction)
        v.real("inServiceSeconds", &interval.inServiceSeconds)
        v.real("gpuSeconds", &interval.gpuSeconds)
        v.derived("intensityGramsPerKWh", interval.intensityGramsPerKWh)
        v.real("operationalCarbonGrams", &interval.operationalCarbonGrams)
    }
}

extension RequestRow {
    /// A row selected by `selectAll`, its row id set.
    static func stored(_ row: Row) -> RequestRow {
        var (id, r) = read(row)
        r.rowID = id
        return r
    }

    /// The record's end-to-end latency (`RequestRecord.endToEnd`) as SQL over the stored columns,
    /// for filters: NULL while in flight.
    static let endToEndSQL = "CASE WHEN inFlight = 0 THEN finishSeconds - arrivalSeconds END"
}

extension IntervalRow {
    /// A row selected by `selectAll`, its row id set.
    static func stored(_ row: Row) -> IntervalRow {
        var (id, r) = read(row)
        r.rowID = id
        return r
    }
}
