/// What one request took and cost: the per-request record Joule stores and reports.
///
/// Times are seconds after the run's start. Energies are joules; `facilityJoules` is the total
/// (IT energy × PUE) and equals `gpuActiveJoules + gpuIdleJoules + hostJoules + facilityOverheadJoules`.
/// Carbon is grams of CO₂e.
public struct RequestRecord: Hashable, Sendable, Encodable {
    public var id: Int
    /// True when the run ended before the request finished: figures cover what it had drawn so far.
    public var inFlight: Bool
    public var arrival: Double
    /// Start of its first prefill step (nil if it never started).
    public var prefillStart: Double?
    /// When its first output token was produced (end of its prefill).
    public var firstToken: Double?
    /// When its last output token was produced.
    public var finish: Double?
    /// Prefill unit (or colocated unit) index, and decode unit index.
    public var prefillUnit: Int?
    public var decodeUnit: Int?
    public var promptTokens: Int
    public var cachedTokens: Int
    public var outputTokens: Int

    /// GPU energy of the steps it was in, its share.
    public var gpuActiveJoules: Double
    /// Its share of GPU energy drawn while idle.
    public var gpuIdleJoules: Double
    /// Its share of host energy (during its steps and while idle).
    public var hostJoules: Double
    /// Facility overhead on the above: (PUE − 1) × IT energy.
    public var facilityOverheadJoules: Double
    /// Total energy at the facility meter.
    public var facilityJoules: Double
    /// GPU-seconds it used, its share of idle GPU-time included.
    public var gpuSeconds: Double
    /// Grid intensity time-weighted over its steps, in gCO₂e/kWh.
    public var intensityGramsPerKWh: Double
    /// Operational emissions: energy × intensity at the time it was drawn.
    public var operationalCarbonGrams: Double
    /// Embodied emissions of the GPU-time it used.
    public var embodiedCarbonGrams: Double
    /// Its share of the model's training footprint, when the scenario amortises one (finished
    /// requests only); kept apart from operational and embodied carbon.
    public var training: TrainingShare?

    public init(
        id: Int, inFlight: Bool, arrival: Double, prefillStart: Double?, firstToken: Double?, finish: Double?,
        prefillUnit: Int?, decodeUnit: Int?, promptTokens: Int, cachedTokens: Int, outputTokens: Int,
        gpuActiveJoules: Double, gpuIdleJoules: Double, hostJoules: Double, facilityOverheadJoules: Double, facilityJoules: Double,
        gpuSeconds: Double, intensityGramsPerKWh: Double, operationalCarbonGrams: Double, embodiedCarbonGrams: Double,
        meanPowerWatts: Double
    ) {
        self.id = id
        self.inFlight = inFlight
        self.arrival = arrival
        self.prefillStart = prefillStart
        self.firstToken = firstToken
        self.finish = finish
        self.prefillUnit = prefillUnit
        self.decodeUnit = decodeUnit
        self.promptTokens = promptTokens
        self.cachedTokens = cachedTokens
        self.outputTokens = outputTokens
        self.gpuActiveJoules = gpuActiveJoules
        self.gpuIdleJoules = gpuIdleJoules
        self.hostJoules = hostJoules
        self.facilityOverheadJoules = facilityOverheadJoules
        self.facilityJoules = facilityJoules
        self.gpuSeconds = gpuSeconds
        self.intensityGramsPerKWh = intensityGramsPerKWh
        self.operationalCarbonGrams = operationalCarbonGrams
        self.embodiedCarbonGrams = embodiedCarbonGrams
        self.meanPowerWatts = meanPowerWatts
    }

    /// Queue wait before its prefill started.
    public var queueWait: Double? { prefillStart.map { $0 - arrival } }
    /// Time to first token.
    public var ttft: Double? { firstToken.map { $0 - arrival } }
    /// Time per output token after the first (nil with a single output token).
    public var tpot: Double? {
        guard let f = firstToken, let e = finish, outputTokens > 1 else { return nil }
        return (e - f) / Double(outputTokens - 1)
    }
    /// End-to-end latency.
    public var endToEnd: Double? { finish.map { $0 - arrival } }
    /// IT energy (before PUE).
    public var itJoules: Double { gpuActiveJoules + gpuIdleJoules + hostJoules }
    /// Mean facility power over its lifetime (arrival to finish, or to the run's end while in flight).
    public var meanPowerWatts: Double
    /// Operational plus embodied.
    public var totalCarbonGrams: Double { operationalCarbonGrams + embodiedCarbonGrams }

    private enum CodingKeys: String, CodingKey {
        case id, inFlight, arrival, prefillStart, firstToken, finish, queueWait, ttft, tpot, endToEnd
        case prefillUnit, decodeUnit, promptTokens, cachedTokens, outputTokens
        case gpuActiveJoules, gpuIdleJoules, hostJoules, facilityOverheadJoules, facilityJoules, itJoules, meanPowerWatts
        case gpuSeconds, intensityGramsPerKWh, operationalCarbonGrams, embodiedCarbonGrams, totalCarbonGrams, training
    }

    /// Encodes every field, the derived latencies and totals included (absent times are omitted).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(inFlight, forKey: .inFlight)
        try c.encode(arrival, forKey: .arrival)
        try c.encodeIfPresent(prefillStart, forKey: .prefillStart)
        try c.encodeIfPresent(firstToken, forKey: .firstToken)
        try c.encodeIfPresent(finish, forKey: .finish)
        try c.encodeIfPresent(queueWait, forKey: .queueWait)
        try c.encodeIfPresent(ttft, forKey: .ttft)
        try c.encodeIfPresent(tpot, forKey: .tpot)
        try c.encodeIfPresent(endToEnd, forKey: .endToEnd)
        try c.encodeIfPresent(prefillUnit, forKey: .prefillUnit)
        try c.encodeIfPresent(decodeUnit, forKey: .decodeUnit)
        try c.encode(promptTokens, forKey: .promptTokens)
        try c.encode(cachedTokens, forKey: .cachedTokens)
        try c.encode(outputTokens, forKey: .outputTokens)
        try c.encode(gpuActiveJoules, forKey: .gpuActiveJoules)
        try c.encode(gpuIdleJoules, forKey: .gpuIdleJoules)
        try c.encode(hostJoules, forKey: .hostJoules)
        try c.encode(facilityOverheadJoules, forKey: .facilityOverheadJoules)
        try c.encode(facilityJoules, forKey: .facilityJoules)
        try c.encode(itJoules, forKey: .itJoules)
        try c.encode(meanPowerWatts, forKey: .meanPowerWatts)
        try c.encode(gpuSeconds, forKey: .gpuSeconds)
        try c.encode(intensityGramsPerKWh, forKey: .intensityGramsPerKWh)
        try c.encode(operationalCarbonGrams, forKey: .operationalCarbonGrams)
        try c.encode(embodiedCarbonGrams, forKey: .embodiedCarbonGrams)
        try c.encode(totalCarbonGrams, forKey: .totalCarbonGrams)
        try c.encodeIfPresent(training, forKey: .training)
    }
}

/// Energy one unit drew over one accounting interval, by kind. Joules are IT energy unless named.
public struct ClusterInterval: Hashable, Sendable, Codable {
    public var unit: Int
    public var role: UnitRole
    public var start: Double
    public var end: Double
    public var gpuActiveJoules: Double
    public var hostActiveJoules: Double
    public var gpuIdleJoules: Double
    public var hostIdleJoules: Double
    public var facilityJoules: Double
    public var operationalCarbonGrams: Double
    public var gpuSeconds: Double
    /// Share of the interval the unit spent in steps.
    public var busyFraction: Double
    /// Seconds the unit was in service during the interval.
    public var inServiceSeconds: Double
    /// Nodes in the unit.
    public var nodes: Int
    public init(
        unit: Int, role: UnitRole, start: Double, end: Double, gpuActiveJoules: Double, hostActiveJoules: Double, gpuIdleJoules: Double,
        hostIdleJoules: Double, facilityJoules: Double, operationalCarbonGrams: Double, gpuSeconds: Double, busyFraction: Double,
        inServiceSeconds: Double, nodes: Int
    ) {
        self.unit = unit
        self.role = role
        self.start = start
        self.end = end
        self.gpuActiveJoules = gpuActiveJoules
        self.hostActiveJoules = hostActiveJoules
        self.gpuIdleJoules = gpuIdleJoules
        self.hostIdleJoules = hostIdleJoules
        self.facilityJoules = facilityJoules
        self.operationalCarbonGrams = operationalCarbonGrams
        self.gpuSeconds = gpuSeconds
        self.busyFraction = busyFraction
        self.inServiceSeconds = inServiceSeconds
        self.nodes = nodes
    }

    /// IT energy.
    public var itJoules: Double { gpuActiveJoules + hostActiveJoules + gpuIdleJoules + hostIdleJoules }
    /// Mean facility power over the interval.
    public var meanFacilityWatts: Double { end > start ? facilityJoules / (end - start) : 0 }
    /// Operational carbon per facility kWh: the grid intensity the interval ran under.
    public var intensityGramsPerKWh: Double { facilityJoules > 0 ? operationalCarbonGrams / (facilityJoules / 3.6e6) : 0 }
}

/// Where the books of a run stand at an interval close, or at its end.
///
/// The law it carries: the energy of all intervals emitted equals the energy of all records emitted
/// plus `pendingFacilityJoules` plus `unattributedFacilityJoules` (all facility joules).
public struct Checkpoint: Hashable, Sendable, Codable {
    /// Simulated seconds since the run's start.
    public var time: Double
    /// Records and unit intervals emitted so far, counted from the run's start.
    public var records: Int
    public var intervals: Int
    /// Requests the simulator still holds, and the energy they have drawn up to `time`.
    public var pendingRequests: Int
    public var pendingFacilityJoules: Double
    /// Idle energy of intervals in which no unit worked, waiting for an interval with work.
    public var unattributedFacilityJoules: Double

    public init(
        time: Double, records: Int, intervals: Int, pendingRequests: Int, pendingFacilityJoules: Double, unattributedFacilityJoules: Double
    ) {
        self.time = time
        self.records = records
        self.intervals = intervals
        self.pendingRequests = pendingRequests
        self.pendingFacilityJoules = pendingFacilityJoules
        self.unattributedFacilityJoules = unattributedFacilityJoules
    }
}

/// What a deployment unit does.
public enum UnitRole: String, CaseIterable, Codable, Hashable, Sendable {
    /// Computes prompts, then hands the KV cache to a decode unit.
    case prefill
    /// Generates output tokens with continuous batching.
    case decode
    /// Does both, on the same GPUs.
    case colocated
}

/// One request's share of its model's training footprint.
public struct TrainingShare: Hashable, Sendable, Encodable {
    /// Tokens it was charged for (prompt and output).
    public var tokens: Double
    public var facilityJoules: Double
    public var carbonGrams: Double
    public var gpuSeconds: Double

    public init(tokens: Double, facilityJoules: Double, carbonGrams: Double, gpuSeconds: Double) {
        self.tokens = tokens
        self.facilityJoules = facilityJoules
        self.carbonGrams = carbonGrams
        self.gpuSeconds = gpuSeconds
    }
}
