import Serving

/// A stored request record: the `request` table, one row per request a run recorded.
///
/// Times are seconds after the run's start (`arrivalEpochSeconds` is the wall-clock arrival, for
/// time-range queries); energies joules at the facility unless named; carbon grams CO₂e.
public struct RequestRow: Hashable, Sendable {
    /// The row id (the audit chain names rows by it).
    public var rowID: Int64
    public var runID: Int64
    public var arrivalEpochSeconds: Double
    public var record: RequestRecord

    /// The columns after `id`, in schema order: the order rows are inserted and encoded in.
    public enum Columns {
        public static let names = [
            "runId", "requestId", "inFlight", "arrivalSeconds", "arrivalEpochSeconds",
            "prefillStartSeconds", "firstTokenSeconds", "finishSeconds", "prefillUnit", "decodeUnit",
            "promptTokens", "cachedTokens", "outputTokens", "gpuActiveJoules", "gpuIdleJoules", "hostJoules",
            "facilityOverheadJoules", "facilityJoules", "gpuSeconds", "intensityGramsPerKWh",
            "operationalCarbonGrams", "embodiedCarbonGrams", "meanPowerWatts",
            // v3: the request's share of its model's training footprint (NULL when none is charged).
            "trainingTokens", "trainingFacilityJoules", "trainingCarbonGrams", "trainingGPUSeconds",
        ]
        /// The trailing columns later migrations added: encoded for the audit only when present.
        public static let extensionColumns = 4
    }

    static let table = "request"

    /// Walks the column values of `record` in schema order.
    static func write<S: RowSink>(_ r: RequestRecord, run: Int64, startEpochSeconds: Double, to s: inout S) {
        s.integer(run)
        s.integer(r.id)
        s.integer(r.inFlight ? 1 : 0)
        s.real(r.arrival)
        s.real(startEpochSeconds + r.arrival)
        s.real(r.prefillStart)
        s.real(r.firstToken)
        s.real(r.finish)
        s.integer(r.prefillUnit)
        s.integer(r.decodeUnit)
        s.integer(r.promptTokens)
        s.integer(r.cachedTokens)
        s.integer(r.outputTokens)
        s.real(r.gpuActiveJoules)
        s.real(r.gpuIdleJoules)
        s.real(r.hostJoules)
        s.real(r.facilityOverheadJoules)
        s.real(r.facilityJoules)
        s.real(r.gpuSeconds)
        s.real(r.intensityGramsPerKWh)
        s.real(r.operationalCarbonGrams)
        s.real(r.embodiedCarbonGrams)
        s.real(r.meanPowerWatts)
        if let t = r.training {
            s.real(t.tokens)
            s.real(t.facilityJoules)
            s.real(t.carbonGrams)
            s.real(t.gpuSeconds)
        } else {
            for _ in 0..<Columns.extensionColumns { s.absentExtension() }
        }
    }
}

/// A stored unit interval: the `clusterInterval` table, one row per unit per accounting interval.
public struct IntervalRow: Hashable, Sendable {
    public var rowID: Int64
    public var runID: Int64
    public var interval: ClusterInterval

    public enum Columns {
        public static let names = [
            "runId", "unit", "role", "startSeconds", "endSeconds", "startEpochSeconds", "nodes",
            "gpuActiveJoules", "hostActiveJoules", "gpuIdleJoules", "hostIdleJoules", "facilityJoules",
            "meanPowerWatts", "busyFraction", "inServiceSeconds", "gpuSeconds", "intensityGramsPerKWh",
            "operationalCarbonGrams",
        ]
    }

    static let table = "clusterInterval"

    static func write<S: RowSink>(_ i: ClusterInterval, run: Int64, startEpochSeconds: Double, to s: inout S) {
        let seconds = i.end - i.start
        let kWh = i.facilityJoules / 3.6e6
        s.integer(run)
        s.integer(i.unit)
        s.text(i.role.rawValue)
        s.real(i.start)
        s.real(i.end)
        s.real(startEpochSeconds + i.start)
        s.integer(i.nodes)
        s.real(i.gpuActiveJoules)
        s.real(i.hostActiveJoules)
        s.real(i.gpuIdleJoules)
        s.real(i.hostIdleJoules)
        s.real(i.facilityJoules)
        s.real(seconds > 0 ? i.facilityJoules / seconds : 0)
        s.real(i.busyFraction)
        s.real(i.inServiceSeconds)
        s.real(i.gpuSeconds)
        s.real(kWh > 0 ? i.operationalCarbonGrams / kWh : 0)
        s.real(i.operationalCarbonGrams)
    }
}
