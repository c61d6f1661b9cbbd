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
    /// A quantile sketch, stored as a blob (`SketchCoding`).
    mutating func sketch(_ name: StaticString, _ value: inout QuantileSketch)
}

/// A record a table stores: its table, a blank to read into, and the one walk of its fields.
protocol StoredRecord: Hashable, Sendable {
    static var table: String { get }
    /// A record with every field at its zero, for reading into.
    static var blank: Self { get }
    /// Seconds after the run's start the row's wall-clock column holds (arrival, interval start).
    var runSeconds: Double { get }
    /// Visits the row's columns after `id` in schema order: the run, the record's fields, and
    /// `epochSeconds` (the wall clock) where the schema has it.
    static func visit<V: ColumnVisitor>(_ v: inout V, run: inout Int64, epochSeconds: inout Double, record: inout Self)
}

/// A stored row: a record with its row id, its run and its time on the wall clock (seconds since
/// 1970), for time-range queries. `RequestRow` and `IntervalRow` are the two kinds.
public struct StoredRow<Record: Hashable & Sendable>: Hashable, Sendable {
    /// The row id (the audit chain names rows by it; the API pages by it).
    public var rowID: Int64
    public var runID: Int64
    public var epochSeconds: Double
    public var record: Record

    public init(rowID: Int64, runID: Int64, epochSeconds: Double, record: Record) {
        self.rowID = rowID
        self.runID = runID
        self.epochSeconds = epochSeconds
        self.record = record
    }
}

extension StoredRow where Record: StoredRecord {
    init(rowID: Int64 = 0, runID: Int64, runStartEpochSeconds: Double, record: Record) {
        self.init(rowID: rowID, runID: runID, epochSeconds: runStartEpochSeconds + record.runSeconds, record: record)
    }

    static var table: String { Record.table }
    static var blank: StoredRow { StoredRow(runID: 0, runStartEpochSeconds: 0, record: Record.blank) }

    mutating func visit<V: ColumnVisitor>(_ v: inout V) {
        Record.visit(&v, run: &runID, epochSeconds: &epochSeconds, record: &record)
    }

    /// The columns after `id`, in schema order.
    static var columnNames: [String] {
        var names = NameCollector()
        var row = blank
        row.visit(&names)
        return names.names
    }
}

extension StoredRow where Record == RequestRecord {
    /// The `request` table's columns after `id`, in schema order.
    public static var columns: [String] { columnNames }
}

extension StoredRow where Record == ClusterInterval {
    /// The `clusterInterval` table's columns after `id`, in schema order.
    public static var columns: [String] { columnNames }
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
    mutating func sketch(_ name: StaticString, _ value: inout QuantileSketch) { names.append("\(name)") }
}

/// A stored request: the `request` table, one row per request a run recorded.
///
/// The record's times are seconds after the run's start; `arrivalEpochSeconds` is the same
/// arrival on the wall clock (seconds since 1970), for time-range queries. Latencies are the
/// record's (`ttft`, `tpot`, `endToEnd`, `queueWait`), derived from its times in one place.
public typealias RequestRow = StoredRow<RequestRecord>

/// A stored unit interval: the `clusterInterval` table, one row per unit per accounting interval.
public typealias IntervalRow = StoredRow<ClusterInterval>

extension RequestRecord: StoredRecord {
    static let table = "request"
    static let blank = RequestRecord(
        id: 0, inFlight: false, arrival: 0, prefillStart: nil, firstToken: nil, finish: nil, prefillUnit: nil, decodeUnit: nil,
        promptTokens: 0, cachedTokens: 0, outputTokens: 0, gpuActiveJoules: 0, gpuIdleJoules: 0, hostJoules: 0,
        facilityOverheadJoules: 0, facilityJoules: 0, gpuSeconds: 0, intensityGramsPerKWh: 0, operationalCarbonGrams: 0,
        embodiedCarbonGrams: 0, meanPowerWatts: 0
    )
    var runSeconds: Double { arrival }

    static func visit<V: ColumnVisitor>(_ v: inout V, run: inout Int64, epochSeconds: inout Double, record r: inout RequestRecord) {
        v.integer("runId", &run)
        v.integer("requestId", &r.id)
        v.flag("inFlight", &r.inFlight)
        v.real("arrivalSeconds", &r.arrival)
        v.real("arrivalEpochSeconds", &epochSeconds)
        v.real("prefillStartSeconds", &r.prefillStart)
        v.real("firstTokenSeconds", &r.firstToken)
        v.real("finishSeconds", &r.finish)
        v.integer("prefillUnit", &r.prefillUnit)
        v.integer("decodeUnit", &r.decodeUnit)
        v.integer("promptTokens", &r.promptTokens)
        v.integer("cachedTokens", &r.cachedTokens)
        v.integer("outputTokens", &r.outputTokens)
        v.real("gpuActiveJoules", &r.gpuActiveJoules)
        v.real("gpuIdleJoules", &r.gpuIdleJoules)
        v.real("hostJoules", &r.hostJoules)
        v.real("facilityOverheadJoules", &r.facilityOverheadJoules)
        v.real("facilityJoules", &r.facilityJoules)
        v.real("gpuSeconds", &r.gpuSeconds)
        v.real("intensityGramsPerKWh", &r.intensityGramsPerKWh)
        v.real("operationalCarbonGrams", &r.operationalCarbonGrams)
        v.real("embodiedCarbonGrams", &r.embodiedCarbonGrams)
        v.real("meanPowerWatts", &r.meanPowerWatts)
        // v3: the request's share of its model's training footprint (NULL when none is charged).
        var tokens = r.training?.tokens, joules = r.training?.facilityJoules
        var grams = r.training?.carbonGrams, seconds = r.training?.gpuSeconds
        v.real("trainingTokens", &tokens)
        v.real("trainingFacilityJoules", &joules)
        v.real("trainingCarbonGrams", &grams)
        v.real("trainingGPUSeconds", &seconds)
        r.training = tokens.map { TrainingShare(tokens: $0, facilityJoules: joules ?? 0, carbonGrams: grams ?? 0, gpuSeconds: seconds ?? 0) }
    }
}

extension ClusterInterval: StoredRecord {
    static let table = "clusterInterval"
    static let blank = ClusterInterval(
        unit: 0, role: .prefill, start: 0, end: 0, gpuActiveJoules: 0, hostActiveJoules: 0, gpuIdleJoules: 0, hostIdleJoules: 0,
        facilityJoules: 0, operationalCarbonGrams: 0, gpuSeconds: 0, busyFraction: 0, inServiceSeconds: 0, nodes: 0
    )
    var runSeconds: Double { start }

    static func visit<V: ColumnVisitor>(_ v: inout V, run: inout Int64, epochSeconds: inout Double, record i: inout ClusterInterval) {
        var role = i.role.rawValue
        v.integer("runId", &run)
        v.integer("unit", &i.unit)
        v.text("role", &role)
        i.role = UnitRole(rawValue: role) ?? .colocated
        v.real("startSeconds", &i.start)
        v.real("endSeconds", &i.end)
        v.real("startEpochSeconds", &epochSeconds)
        v.integer("nodes", &i.nodes)
        v.real("gpuActiveJoules", &i.gpuActiveJoules)
        v.real("hostActiveJoules", &i.hostActiveJoules)
        v.real("gpuIdleJoules", &i.gpuIdleJoules)
        v.real("hostIdleJoules", &i.hostIdleJoules)
        v.real("facilityJoules", &i.facilityJoules)
        v.derived("meanPowerWatts", i.meanFacilityWatts)
        v.real("busyFraction", &i.busyFraction)
        v.real("inServiceSeconds", &i.inServiceSeconds)
        v.real("gpuSeconds", &i.gpuSeconds)
        v.derived("intensityGramsPerKWh", i.intensityGramsPerKWh)
        v.real("operationalCarbonGrams", &i.operationalCarbonGrams)
    }
}

extension StoredRow: Encodable where Record == RequestRecord {
    /// The row's identity, then every field of its record (with the derived latencies and totals),
    /// under the record's names: what the API returns.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: RequestRowKey.self)
        try c.encode(rowID, forKey: .row)
        try c.encode(runID, forKey: .run)
        try c.encode(epochSeconds, forKey: .arrivalEpochSeconds)
        try record.encode(to: encoder)
    }
}

private enum RequestRowKey: String, CodingKey { case row, run, arrivalEpochSeconds }

extension StoredRow where Record == RequestRecord {
    /// The arrival on the wall clock, seconds since 1970.
    public var arrivalEpochSeconds: Double { epochSeconds }

    /// The record's end-to-end latency (`RequestRecord.endToEnd`) as SQL over the stored columns,
    /// for filters: NULL while in flight.
    static let endToEndSQL = "CASE WHEN inFlight = 0 THEN finishSeconds - arrivalSeconds END"
}

extension StoredRow where Record == ClusterInterval {
    /// The interval's start on the wall clock, seconds since 1970.
    public var startEpochSeconds: Double { epochSeconds }
    public var interval: ClusterInterval { record }
}
