import Units

/// Energy, carbon and time drawn, as a running sum: the unit of per-request, per-unit and
/// per-interval accounting. Energies are IT joules (before PUE); carbon is grams CO₂e of the
/// facility energy at the grid intensity it was drawn under; times are seconds.
///
/// Whether a draw is active (in steps) or idle is said by where it is held: a request's direct
/// draw and its attributed idle share are two `Draw`s. Only direct draws fill `stepSeconds` and
/// `intensitySeconds`.
public struct Draw: Hashable, Sendable {
    public var gpuJoules = 0.0
    public var hostJoules = 0.0
    public var carbonGrams = 0.0
    public var gpuSeconds = 0.0
    /// Wall time of the steps a request was in (not divided among the batch).
    public var stepSeconds = 0.0
    /// Σ step time × grid intensity (gCO₂e/kWh), for a time-weighted intensity.
    public var intensitySeconds = 0.0

    @inlinable
    public init(
        gpuJoules: Double = 0, hostJoules: Double = 0, carbonGrams: Double = 0, gpuSeconds: Double = 0, stepSeconds: Double = 0,
        intensitySeconds: Double = 0
    ) {
        self.gpuJoules = gpuJoules
        self.hostJoules = hostJoules
        self.carbonGrams = carbonGrams
        self.gpuSeconds = gpuSeconds
        self.stepSeconds = stepSeconds
        self.intensitySeconds = intensitySeconds
    }

    /// Nothing drawn.
    public static let zero = Draw()

    /// IT energy.
    public var it: Energy { Energy(joules: gpuJoules + hostJoules) }

    @inlinable
    public static func + (a: Draw, b: Draw) -> Draw {
        Draw(
            gpuJoules: a.gpuJoules + b.gpuJoules, hostJoules: a.hostJoules + b.hostJoules, carbonGrams: a.carbonGrams + b.carbonGrams,
            gpuSeconds: a.gpuSeconds + b.gpuSeconds, stepSeconds: a.stepSeconds + b.stepSeconds,
            intensitySeconds: a.intensitySeconds + b.intensitySeconds
        )
    }

    @inlinable
    public static func - (a: Draw, b: Draw) -> Draw { a + b * -1 }

    @inlinable
    public static func * (a: Draw, k: Double) -> Draw {
        Draw(
            gpuJoules: a.gpuJoules * k, hostJoules: a.hostJoules * k, carbonGrams: a.carbonGrams * k, gpuSeconds: a.gpuSeconds * k,
            stepSeconds: a.stepSeconds * k, intensitySeconds: a.intensitySeconds * k
        )
    }

    @inlinable
    public static func += (a: inout Draw, b: Draw) { a = a + b }
}

/// A request's (or a unit's) draw in an interval, as attribution leaves it: what it drew in
/// steps, and the idle draw attributed to it (or, for a unit, what it drew idle).
public struct AttributedDraw: Hashable, Sendable {
    public var direct = Draw()
    public var idle = Draw()
    public init(direct: Draw = Draw(), idle: Draw = Draw()) {
        self.direct = direct
        self.idle = idle
    }
    public var total: Draw { direct + idle }
}

/// What a request did in one unit's steps over part of an interval: the weight an attribution
/// policy gives it comes from this.
public struct StepWork: Hashable, Sendable {
    /// Its share of the steps' active GPU energy, joules.
    public var activeGPUJoules: Double
    /// Seconds it spent in the steps (each request in a step spends the step's whole length).
    public var requestSeconds: Double

    @inlinable
    public init(activeGPUJoules: Double, requestSeconds: Double) {
        self.activeGPUJoules = activeGPUJoules
        self.requestSeconds = requestSeconds
    }
}

/// How energy that no step's requests drew directly (idle GPUs between steps, hosts while idle)
/// is shared out over requests, so that the requests of a run add up to what the cluster drew.
///
/// The rule common to every policy: within each accounting interval, each unit's idle draw goes to
/// the requests it served in the interval in proportion to their weights; a unit with no work in
/// the interval passes its idle draw to the whole cluster's requests of the interval (in proportion
/// to weight); an interval in which the cluster did no work carries its idle draw forward to the
/// next one with work. A policy chooses only the weight, and the weight must be linear in the work
/// (weight(a + b) = weight(a) + weight(b)), so producers may keep running sums and difference them.
public protocol AttributionPolicy: Sendable {
    /// The name scenario files and reports use.
    var id: String { get }
    /// What the policy does, for reports' method sections.
    var summary: String { get }
    /// A request's weight for `work`.
    func weight(_ work: StepWork) -> Double
}

/// Idle energy in proportion to the GPU active energy each request drew (the default).
public struct ProportionalToActive: AttributionPolicy {
    public init() {}
    public var id: String { "proportional-to-active" }
    public var summary: String { "idle energy in proportion to each request's GPU active energy" }
    public func weight(_ work: StepWork) -> Double { work.activeGPUJoules }
}

/// Idle energy in equal shares per request-second spent in steps: a request that sat in a batch
/// twice as long carries twice the idle share, whatever its tokens cost.
public struct EqualPerRequestSecond: AttributionPolicy {
    public init() {}
    public var id: String { "equal-per-request-second" }
    public var summary: String { "idle energy in equal shares per request-second spent in steps" }
    public func weight(_ work: StepWork) -> Double { work.requestSeconds }
}

/// A policy's weight as the two coefficients its linearity gives (weight per GPU active joule and
/// per request-second), for producers that weigh every step: no dynamic dispatch per step.
public struct LinearWeight: Sendable {
    public let perActiveJoule: Double
    public let perRequestSecond: Double

    public init(_ policy: any AttributionPolicy) {
        perActiveJoule = policy.weight(StepWork(activeGPUJoules: 1, requestSeconds: 0))
        perRequestSecond = policy.weight(StepWork(activeGPUJoules: 0, requestSeconds: 1))
    }

    @inlinable
    public func callAsFunction(activeGPUJoules: Double, requestSeconds: Double) -> Double {
        perActiveJoule * activeGPUJoules + perRequestSecond * requestSeconds
    }
}

/// The attribution policies Joule ships, by id.
public enum AttributionPolicies {
    public static let all: [any AttributionPolicy] = [ProportionalToActive(), EqualPerRequestSecond()]
    public static let `default`: any AttributionPolicy = ProportionalToActive()

    /// The policy named `id`, or nil.
    public static func named(_ id: String) -> (any AttributionPolicy)? { all.first { $0.id == id } }
}

/// The interval rule every policy shares, on a unit's totals.
public enum IdleAttribution {
    /// One unit's books for a closing interval: the idle it drew and the total weight of the
    /// requests it served.
    public struct UnitBooks: Sendable {
        public var idle: Draw
        public var weight: Double
        public init(idle: Draw, weight: Double) {
            self.idle = idle
            self.weight = weight
        }
    }

    /// Idle draw per unit of weight, per unit (nil for a unit that did no work), and what is
    /// carried to the next interval (non-zero only when no unit did any work).
    ///
    /// A request of unit u with weight w receives `rates[u]! * w`. Summed over every request of
    /// every unit with work, that is the idle of all units plus `carry` in; the law
    /// Σ received + carry out = Σ idle + carry in holds to rounding.
    public static func rates(_ units: [UnitBooks], carry: Draw) -> (rates: [Draw?], carry: Draw) {
        var pooled = carry
        var totalWeight = 0.0
        for u in units {
            if u.weight > 0 {
                totalWeight += u.weight
            } else {
                pooled += u.idle
            }
        }
        guard totalWeight > 0 else { return (units.map { _ in nil }, pooled) }
        let poolRate = pooled * (1 / totalWeight)
        return (units.map { $0.weight > 0 ? $0.idle * (1 / $0.weight) + poolRate : nil }, .zero)
    }
}

/// Attribution for any producer of unit draws: a simulator, or measured power telemetry.
///
/// A producer reports, interval by interval, what each unit drew in steps and for which requests
/// (with each request's part of the step), and what it drew idle; `close()` returns every
/// request's draw for the interval, direct and idle share, under the book's policy. Requests'
/// draws plus what is carried equal what the units drew.
public struct AttributionBook<Request: Hashable & Sendable>: Sendable {
    public let policy: any AttributionPolicy
    /// Idle draw of intervals in which no unit worked, waiting for one that did.
    public private(set) var carried = Draw.zero
    private var units: [Int: (drawn: AttributedDraw, weight: Double)] = [:]
    private var work: [Int: [Request: (direct: Draw, weight: Double)]] = [:]

    public init(policy: any AttributionPolicy) { self.policy = policy }

    /// Unit `unit` ran a step of `seconds` drawing `draw`, shared by `requests` in the given parts
    /// (which should sum to 1).
    public mutating func step(unit: Int, draw: Draw, seconds: Double, requests: [(request: Request, part: Double)]) {
        units[unit, default: (AttributedDraw(), 0)].drawn.direct += draw
        for (request, part) in requests {
            let direct = Draw(
                gpuJoules: draw.gpuJoules * part, hostJoules: draw.hostJoules * part, carbonGrams: draw.carbonGrams * part,
                gpuSeconds: draw.gpuSeconds * part, stepSeconds: seconds
            )
            let w = policy.weight(StepWork(activeGPUJoules: direct.gpuJoules, requestSeconds: seconds))
            units[unit]!.weight += w
            work[unit, default: [:]][request, default: (.zero, 0)].direct += direct
            work[unit]![request]!.weight += w
        }
    }

    /// Unit `unit` drew `draw` with no step running.
    public mutating func idle(unit: Int, draw: Draw) {
        units[unit, default: (AttributedDraw(), 0)].drawn.idle += draw
    }

    /// Closes the interval: each request's draw in it (summed over units), and each unit's draw.
    public mutating func close() -> (requests: [Request: AttributedDraw], units: [Int: AttributedDraw]) {
        let ids = units.keys.sorted()
        let books = ids.map { IdleAttribution.UnitBooks(idle: units[$0]!.drawn.idle, weight: units[$0]!.weight) }
        let (rates, carry) = IdleAttribution.rates(books, carry: carried)
        carried = carry
        var out: [Request: AttributedDraw] = [:]
        for (k, u) in ids.enumerated() {
            for (request, w) in work[u] ?? [:] {
                out[request, default: AttributedDraw()].direct += w.direct
                if let rate = rates[k] { out[request]!.idle += rate * w.weight }
            }
        }
        let drawn = units.mapValues(\.drawn)
        units.removeAll()
        work.removeAll()
        return (out, drawn)
    }
}
