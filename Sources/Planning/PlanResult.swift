import Accounting
import Routing
import Serving

/// One deployment the planner looked at, and what became of it.
public struct CandidateResult: Hashable, Sendable, Codable {
    public var id: Int
    public var plan: CandidatePlan
    /// Where it came from: analytic screen, prefill sweep, decode sweep, combination or unit sweep.
    public var stage: String
    public var gpus: Int
    public var nodes: Int
    /// Window figures, when it was simulated.
    public var figures: WindowFigures?
    /// Why it lost (nil: it meets every target).
    public var rejection: Rejection?
    /// The pools as deployed where pruning repacked them onto fewer GPUs than the plan's `ep`
    /// (for example "decode EP112+32"), or nil.
    public var deployedAs: String?
    /// The plan's label, with the deployed layout where it differs.
    public var label: String { plan.label + (deployedAs.map { ", deployed as \($0)" } ?? "") }
    /// On the Pareto front of the feasible candidates.
    public var onFront = false
    /// A front member that is at least as good in every objective and better in one.
    public var dominatedBy: Int?

    public var feasible: Bool { rejection == nil && figures != nil }

    /// The front's objectives, all minimised: energy and carbon per request, GPUs, p99 TTFT and TPOT.
    public var objectives: [Double] {
        guard let f = figures else { return [] }
        return [f.whPerRequest, f.carbonGramsPerRequest, Double(gpus), f.ttft99, f.tpot99]
    }

    /// Whether this candidate is at least as good as `other` everywhere and better somewhere.
    public func dominates(_ other: CandidateResult) -> Bool {
        let a = objectives, b = other.objectives
        guard a.count == b.count, !a.isEmpty else { return false }
        return zip(a, b).allSatisfy { $0 <= $1 } && zip(a, b).contains { $0 < $1 }
    }
}

/// The search's best plan under one pruning configuration (nil: dense).
public struct SearchOutcome: Hashable, Sendable, Codable {
    public var pruning: PruningChoice?
    public var candidates: [CandidateResult]
    /// The best candidate for the objective that also held its targets over the whole run.
    public var best: Int?
    /// The best plan re-simulated over the workload's whole duration.
    public var verified: RunSummary?
    /// Each whole-workload verification in order: the candidate, and what the run found.
    public var verifications: [Verification] = []
    /// The best plan as a scenario file.
    public var bestScenario: String?
    /// The fidelity proxy of the pruned model (nil when dense).
    public var fidelity: Fidelity?
    public var simulated: Int
    public var wallSeconds: Double
}

/// One verification of a candidate over the whole workload.
public struct Verification: Hashable, Sendable, Codable {
    public var candidate: Int
    public var label: String
    /// nil: it held every target; else the target it missed.
    public var missed: String?
}

/// What `joule plan` found.
public struct PlanResult: Hashable, Sendable, Codable {
    public var workload: String
    public var model: String
    public var hardware: String
    public var slo: PlanSLO
    public var objective: PlanObjective
    /// Pre-warm (long requests only), full-load warm-up and measured window, simulated seconds.
    public var prewarmSeconds: Double
    public var warmupSeconds: Double
    public var windowSeconds: Double
    public var load: OfferedLoad
    public var carbonRegion: String
    public var gpuHourUSD: Double
    /// The dense search, then one per pruning configuration.
    public var dense: SearchOutcome
    public var pruned: [SearchOutcome]
    public var quality: [String: [PlanningData.QualityFigure]]
    public var limits: [String]
    public var stepShapesCached: Int
    public var wallSeconds: Double
}
