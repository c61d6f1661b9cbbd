import Hardware
import Routing
import Units

/// Serving-system defaults applied where a command or scenario says nothing (from
/// `Data/serving/defaults.yaml`, and the fitted engine overhead from `Data/calibration/fitted.yaml`).
public struct ServingDefaults: Hashable, Sendable {
    /// Micro-batches overlapped with all-to-all.
    public var microBatches: Int
    /// Redundant experts DeepSeek-style deployments add.
    public var redundantExperts: Int
    /// SMs taken by communication while it overlaps computation, by phase.
    public var communicationSMs: [ServingPhase: Int]
    /// The expert-popularity model the busiest EP rank's load is computed from.
    public var expertPopularity: ExpertPopularitySpec
    /// The serving engine's costs beyond the kernels (fitted).
    public var engine: EngineCosts

    /// Creates serving defaults.
    public init(
        microBatches: Int, redundantExperts: Int, communicationSMs: [ServingPhase: Int],
        expertPopularity: ExpertPopularitySpec = ExpertPopularitySpec(skew: 0), engine: EngineCosts = .none
    ) {
        self.microBatches = microBatches
        self.redundantExperts = redundantExperts
        self.communicationSMs = communicationSMs
        self.expertPopularity = expertPopularity
        self.engine = engine
    }

    /// The deployment for `model` in `phase` with EP degree `ep` and TP degree `tp`.
    ///
    /// Redundant experts default to `redundantExperts` when that divides evenly over `ep`,
    /// otherwise to the fewest extra copies that do; dense models and `ep == 1` get none. The
    /// busiest rank's expected load comes from `expertPopularity` placed by EPLB (or in order,
    /// `balancer: false`, as vLLM places experts without EPLB); `expertLoadImbalance` overrides it.
    public func deployment(
        for model: ModelArchitecture, phase: ServingPhase, ep: Int, tp: Int, dp: Int? = nil, microBatches explicitMicroBatches: Int? = nil,
        redundantExperts explicitRedundant: Int? = nil, expertLoadImbalance explicitImbalance: Double? = nil, balancer: Bool = true,
        gpusPerNode: Int = 8
    ) -> Deployment {
        var redundant = 0
        if let moe = model.moe, ep > 1 {
            if let explicitRedundant {
                redundant = explicitRedundant
            } else if !balancer {
                redundant = (ep - moe.routedExperts % ep) % ep
            } else if (moe.routedExperts + redundantExperts) % ep == 0 {
                redundant = redundantExperts
            } else {
                redundant = (ep - moe.routedExperts % ep) % ep
            }
        } else if let explicitRedundant {
            redundant = explicitRedundant
        }
        let dataParallel = dp ?? max(1, max(ep, tp) / max(tp, 1))
        var d = Deployment(
            expertParallel: ep, tensorParallel: tp, dataParallel: dataParallel, redundantExperts: redundant,
            microBatches: explicitMicroBatches ?? (ep > 1 && tp == 1 ? microBatches : 1),
            imbalanceOverride: ep > 1 ? explicitImbalance : nil,
            communicationSMs: communicationSMs[phase] ?? 0
        )
        d.engine = engine
        if let moe = model.moe, ep > 1 {
            d.placementImbalance = expertPopularity.placementImbalance(
                experts: moe.routedExperts, groups: moe.groups, slots: moe.routedExperts + redundant, gpus: ep,
                gpusPerNode: gpusPerNode, balancer: balancer
            )
        }
        return d
    }

    /// Problems with the defaults.
    public func validate() -> [SpecProblem] {
        var check = SpecChecker()
        check.positive(microBatches, "microBatches")
        check.nonNegative(redundantExperts, "redundantExperts")
        check.within(expertPopularity.skew, 0...4, "expertPopularity.skew")
        check.positive(expertPopularity.layers, "expertPopularity.layers")
        check.nonNegative(engine.stepOverhead.seconds, "engine.stepOverheadMicroseconds")
        check.nonNegative(engine.allReduceLatency.seconds, "engine.allReduceLatencyMicroseconds")
        check.nonNegative(engine.samplerBytesPerLogit, "engine.samplerBytesPerLogit")
        check.nonNegative(engine.perSequenceOverhead.seconds, "engine.perSequenceOverheadMicroseconds")
        for phase in ServingPhase.allCases {
            if let sms = communicationSMs[phase] {
                check.nonNegative(sms, "communicationSMs.\(phase.rawValue)")
            } else {
                check.require(false, "communicationSMs.\(phase.rawValue)", "missing")
            }
        }
        return check.problems
    }
}

/// The expert-popularity model behind every computed load imbalance: Zipf popularity over a
/// seeded random order per sampled layer (`Routing.ExpertPopularity`), with no sampling noise.
public struct ExpertPopularitySpec: Hashable, Sendable {
    /// Zipf exponent (0: uniform). The shipped value is an assumption (Data/SOURCES.md).
    public var skew: Double
    /// Layers sampled (each its own popularity order); the imbalance is their mean.
    public var layers: Int
    public var seed: UInt64

    public init(skew: Double, layers: Int = 2, seed: UInt64 = 1) {
        self.skew = skew
        self.layers = layers
        self.seed = seed
    }

    /// The busiest GPU's expected load over the mean when `slots` expert instances (experts plus
    /// redundant copies) are placed on `gpus` GPUs by EPLB (`balancer`) or in order.
    public func placementImbalance(experts: Int, groups: Int, slots: Int, gpus: Int, gpusPerNode: Int, balancer: Bool) -> Double {
        guard gpus > 1, experts > 0, slots >= experts, slots % gpus == 0 else { return 1 }
        let popularity = ExpertPopularity.zipf(experts: experts, layers: layers, skew: skew, seed: seed)
        var sum = 0.0
        for load in popularity.layers {
            if balancer, let placement = try? EPLB.rebalance(
                load: load, replicas: slots, groups: groups, nodes: max(1, gpus / gpusPerNode), gpus: gpus
            ) {
                sum += placement.imbalance(load)
            } else {
                // In order: GPU g holds experts g·n ..< (g+1)·n (no replicas).
                let perGPU = (experts + gpus - 1) / gpus
                let loads = (0..<gpus).map { g in load[min(g * perGPU, experts)..<min((g + 1) * perGPU, experts)].reduce(0, +) }
                let mean = loads.reduce(0, +) / Double(gpus)
                sum += mean > 0 ? loads.max()! / mean : 1
            }
        }
        return max(1, sum / Double(popularity.layers.count))
    }
}
