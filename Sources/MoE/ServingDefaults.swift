import Hardware

/// Serving-system defaults applied where a command or scenario says nothing (from `Data/serving/defaults.yaml`).
public struct ServingDefaults: Hashable, Sendable {
    /// Micro-batches overlapped with all-to-all.
    public var microBatches: Int
    /// Redundant experts DeepSeek-style deployments add.
    public var redundantExperts: Int
    /// Busiest EP rank's load ÷ mean (an assumption; see `Data/SOURCES.md`).
    public var expertLoadImbalance: Double
    /// SMs taken by communication while it overlaps computation, by phase.
    public var communicationSMs: [ServingPhase: Int]

    /// Creates serving defaults.
    public init(microBatches: Int, redundantExperts: Int, expertLoadImbalance: Double, communicationSMs: [ServingPhase: Int]) {
        self.microBatches = microBatches
        self.redundantExperts = redundantExperts
        self.expertLoadImbalance = expertLoadImbalance
        self.communicationSMs = communicationSMs
    }

    /// The deployment for `model` in `phase` with EP degree `ep` and TP degree `tp`.
    ///
    /// Redundant experts default to `redundantExperts` when that divides evenly over `ep`,
    /// otherwise to the fewest extra copies that do; dense models and `ep == 1` get none.
    public func deployment(
        for model: ModelArchitecture, phase: ServingPhase, ep: Int, tp: Int,
        redundantExperts explicitRedundant: Int? = nil, expertLoadImbalance explicitImbalance: Double? = nil
    ) -> Deployment {
        var redundant = 0
        if let moe = model.moe, ep > 1 {
            if let explicitRedundant {
                redundant = explicitRedundant
            } else if (moe.routedExperts + redundantExperts) % ep == 0 {
                redundant = redundantExperts
            } else {
                redundant = (ep - moe.routedExperts % ep) % ep
            }
        } else if let explicitRedundant {
            redundant = explicitRedundant
        }
        return Deployment(
            expertParallel: ep, tensorParallel: tp, redundantExperts: redundant,
            microBatches: ep > 1 ? microBatches : 1,
            expertLoadImbalance: ep > 1 ? (explicitImbalance ?? expertLoadImbalance) : 1,
            communicationSMs: communicationSMs[phase] ?? 0
        )
    }

    /// Problems with the defaults.
    public func validate() -> [SpecProblem] {
        var check = SpecChecker()
        check.positive(microBatches, "microBatches")
        check.nonNegative(redundantExperts, "redundantExperts")
        check.within(expertLoadImbalance, 1...10, "expertLoadImbalance")
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
