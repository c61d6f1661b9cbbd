import Accounting
import Hardware
import MoE

/// Everything a serving run needs except its requests: the model, the hardware, how serving is laid
/// out, the grid, the embodied model, and the accounting rules. Built from a scenario file by the
/// catalog; flags override single fields.
public struct ServingScenario: Sendable {
    /// Name (the scenario file's `name`).
    public var name: String
    public var model: ModelArchitecture
    public var node: NodeSpec
    public var site: SiteSpec
    public var topology: ServingTopology
    /// Nodes in service over the day (nil: every unit all the time).
    public var schedule: NodeSchedule?
    public var routing: RoutingChoice
    /// The run's time zero, in seconds since the Unix epoch (UTC).
    public var startEpochSeconds: Double
    /// Simulated seconds to run (nil: until the last request of a trace has finished).
    public var duration: Double?
    public var seed: UInt64
    public var carbon: CarbonSeries
    public var embodied: EmbodiedModel
    /// Length of an accounting interval, in seconds.
    public var intervalSeconds: Double
    /// How idle energy is shared over requests.
    public var attribution: any AttributionPolicy
    /// What expert routing and pruning did to the model and pools (nil: the serving defaults'
    /// load imbalance, no pruning).
    public var experts: MoERoutingReport?
    /// The model's training footprint, amortised over the tokens it serves (nil: none charged).
    public var training: TrainingAmortisation?
    /// Step costs shared with other runs of the same layouts (the planner's), or nil.
    public var stepCosts: StepCostCache?

    /// Creates a scenario.
    public init(
        name: String, model: ModelArchitecture, node: NodeSpec, site: SiteSpec, topology: ServingTopology,
        schedule: NodeSchedule? = nil, routing: RoutingChoice = .leastLoaded, startEpochSeconds: Double,
        duration: Double?, seed: UInt64, carbon: CarbonSeries, embodied: EmbodiedModel,
        intervalSeconds: Double = 60, attribution: any AttributionPolicy = AttributionPolicies.default
    ) {
        self.name = name
        self.model = model
        self.node = node
        self.site = site
        self.topology = topology
        self.schedule = schedule
        self.routing = routing
        self.startEpochSeconds = startEpochSeconds
        self.duration = duration
        self.seed = seed
        self.carbon = carbon
        self.embodied = embodied
        self.intervalSeconds = intervalSeconds
        self.attribution = attribution
    }

    /// A run's simulated duration: up to a leap year (as a trace's span).
    public static let durationRange = 1e-3...(366 * 86_400.0)
    /// An accounting interval: a millisecond (shorter closes millions of empty intervals) to a day.
    public static let intervalRange = 1e-3...86_400.0

    /// Every problem with the scenario, by field path as in a scenario file.
    public func validate() -> [(field: String, message: String)] {
        var problems: [(String, String)] = []
        if let d = duration, !Self.durationRange.contains(d) {
            problems.append(("duration", "expected 0.001 to 31622400 seconds (366 days), got \(d)"))
        }
        if !Self.intervalRange.contains(intervalSeconds) {
            problems.append(("accounting.intervalSeconds", "expected 0.001 to 86400 seconds, got \(intervalSeconds)"))
        }
        for pool in topology.pools {
            // As the file names the pool: a colocated deployment's is `unit`.
            let key = "deployment.\(pool.role == .colocated ? "unit" : pool.role.rawValue)"
            if pool.units < 1 { problems.append(("\(key).units", "expected at least 1, got \(pool.units)")) }
            if pool.maxBatchPerRank < 1 { problems.append(("\(key).maxBatchPerRank", "expected at least 1, got \(pool.maxBatchPerRank)")) }
            if pool.tokenBudgetPerRank < 1 { problems.append(("\(key).tokenBudgetPerRank", "expected at least 1, got \(pool.tokenBudgetPerRank)")) }
            if !(0..<1).contains(pool.memoryReserveFraction) {
                problems.append(("\(key).memoryReserveFraction", "expected a share from 0 up to 1, got \(pool.memoryReserveFraction)"))
            }
            let before = problems.count
            for p in pool.deployment.validate(for: model, on: node) {
                problems.append(("\(key).\(p.field)", p.message))
            }
            // The memory check needs a deployment that holds together (tp 0 divides by zero).
            guard problems.count == before, (0..<1).contains(pool.memoryReserveFraction) else { continue }
            let unit = UnitModel(pool: pool, model: model, node: node, site: site)
            if pool.role != .prefill && unit.kvTokensPerRank < 1 {
                problems.append((
                    key, "the weights (\(Int(unit.costModel.weightBytesPerGPU / 1e9)) GB per GPU) leave no room for KV cache in \(Int(node.gpu.memoryBytes / 1e9)) GB; use more GPUs per unit"
                ))
            }
        }
        if let schedule, schedule.peakNodes < 1 { problems.append(("schedule", "expected a peak of at least 1 node")) }
        for p in embodied.validate() { problems.append(("embodied.\(p.field)", p.message)) }
        return problems
    }
}
