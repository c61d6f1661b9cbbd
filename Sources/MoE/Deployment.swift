import Foundation
import Hardware
import Units

/// How a model is laid out over GPUs for serving: one deployment unit of a prefill, decode or
/// colocated instance, as serving engines run them.
///
/// - **Attention** is tensor-parallel over `tensorParallel` GPUs and data-parallel over the rest
///   (`attentionRanks` replicas). DeepSeek's units: TP 1, DP = all GPUs. vLLM's: TP = all GPUs.
/// - **Routed experts** are expert-parallel over `expertParallel` GPUs (EP = all GPUs), or, with
///   `expertParallel == 1`, sharded like a dense FFN over the tensor-parallel GPUs.
/// - With data-parallel attention and expert parallelism, tokens reach their experts by
///   all-to-all (DeepEP), overlapped across `microBatches`; with tensor-parallel attention every GPU
///   sees every token and the MoE output is all-reduced (vLLM's expert parallelism).
public struct Deployment: Hashable, Sendable {
    /// GPUs the routed experts are spread over (1 = every expert sharded over the TP GPUs).
    public var expertParallel: Int
    /// GPUs each attention and dense FFN is sharded over.
    public var tensorParallel: Int
    /// Attention replicas (data parallelism) in the unit.
    public var dataParallel: Int
    /// Extra copies of hot experts (EPLB's redundant experts).
    public var redundantExperts: Int
    /// Micro-batches whose computation and all-to-all overlap (DeepSeek uses 2).
    public var microBatches: Int
    /// The busiest EP rank's expected load over the mean, from the routing model's expert
    /// popularity and the placement (EPLB or in order), with no sampling noise (≥ 1).
    public var placementImbalance: Double
    /// A user's override of the busiest rank's load over the mean, at every step size.
    public var imbalanceOverride: Double?
    /// SMs taken by communication kernels while they overlap computation.
    public var communicationSMs: Int
    /// The serving engine's costs beyond the model's kernels (step overhead, all-reduce latency,
    /// sampling); fitted on ML.ENERGY's vLLM runs.
    public var engine: EngineCosts = .none
    /// Whether expert slots may not divide evenly over the EP GPUs (after pruning, some GPUs hold
    /// one expert fewer): memory is then sized for the fullest GPU.
    public var unevenExperts = false

    /// Creates a deployment. `dataParallel` defaults to `max(expertParallel, tensorParallel) / tensorParallel`.
    public init(
        expertParallel: Int, tensorParallel: Int = 1, dataParallel: Int? = nil, redundantExperts: Int = 0, microBatches: Int = 2,
        placementImbalance: Double = 1, imbalanceOverride: Double? = nil, communicationSMs: Int = 0
    ) {
        self.expertParallel = expertParallel
        self.tensorParallel = tensorParallel
        self.dataParallel = dataParallel ?? max(1, max(expertParallel, tensorParallel) / max(tensorParallel, 1))
        self.redundantExperts = redundantExperts
        self.microBatches = microBatches
        self.placementImbalance = placementImbalance
        self.imbalanceOverride = imbalanceOverride
        self.communicationSMs = communicationSMs
    }

    /// GPUs in one deployment unit.
    public var gpus: Int { max(expertParallel, tensorParallel * dataParallel) }

    /// Attention ranks (replicas) that each hold a share of the unit's sequences.
    public var attentionRanks: Int { max(1, dataParallel) }

    /// Whether tokens reach routed experts by all-to-all (data-parallel attention with EP).
    public var usesAllToAll: Bool { expertParallel > 1 && tensorParallel == 1 }

    /// Nodes in one deployment unit on `node`.
    public func nodes(on node: NodeSpec) -> Int { (gpus + node.gpusPerNode - 1) / node.gpusPerNode }

    /// Routed-expert instances (originals plus redundant copies) per GPU, on average.
    public func expertSlotsPerGPU(for model: ModelArchitecture) -> Double {
        guard let moe = model.moe else { return 0 }
        return Double(moe.routedExperts + redundantExperts) / Double(expertParallel)
    }

    /// Routed-expert instances on the fullest GPU (what its memory must hold).
    public func maximumExpertSlotsPerGPU(for model: ModelArchitecture) -> Double {
        let mean = expertSlotsPerGPU(for: model)
        return unevenExperts ? mean.rounded(.up) : mean
    }

    /// The busiest EP rank's load over the mean when each rank receives `copiesPerRank` token
    /// copies on average: the placement's expected imbalance plus the sampling spread of the
    /// busiest of `expertParallel` ranks (a rank's load is close to Poisson, and the largest of R
    /// such loads lies about √(2 ln R) standard deviations above the mean). An override wins.
    public func loadImbalance(copiesPerRank: Double) -> Double {
        if let imbalanceOverride { return imbalanceOverride }
        guard expertParallel > 1, copiesPerRank > 0 else { return placementImbalance }
        return placementImbalance + (2 * log(Double(expertParallel)) / copiesPerRank).squareRoot()
    }

    /// Every problem with this deployment of `model` on `node`, named by command-line flag.
    public func validate(for model: ModelArchitecture, on node: NodeSpec) -> [SpecProblem] {
        var check = SpecChecker()
        check.positive(expertParallel, "ep")
        check.positive(tensorParallel, "tp")
        check.positive(dataParallel, "dp")
        check.nonNegative(redundantExperts, "redundant-experts")
        check.positive(microBatches, "micro-batches")
        check.within(placementImbalance, 1...10, "expert-load-imbalance")
        if let imbalanceOverride { check.within(imbalanceOverride, 1...10, "expert-load-imbalance") }
        check.require(
            communicationSMs >= 0 && communicationSMs < node.gpu.streamingMultiprocessors, "communication-sms",
            "expected 0 to \(node.gpu.streamingMultiprocessors - 1), got \(communicationSMs)"
        )
        if let moe = model.moe {
            let slots = moe.routedExperts + redundantExperts
            check.require(
                expertParallel > 0 && (unevenExperts || slots % expertParallel == 0), "ep",
                "expected a divisor of routed + redundant experts (\(moe.routedExperts) + \(redundantExperts) = \(slots)), got \(expertParallel)"
            )
            check.require(
                expertParallel == 1 || expertParallel == tensorParallel * dataParallel, "ep",
                "expected 1 (experts sharded over the TP GPUs) or every GPU of the unit (tp × dp = \(tensorParallel * dataParallel)), got \(expertParallel)"
            )
        } else {
            check.require(expertParallel == 1, "ep", "expected 1 for a dense model (\(model.id)), got \(expertParallel)")
            check.require(redundantExperts == 0, "redundant-experts", "expected 0 for a dense model (\(model.id)), got \(redundantExperts)")
        }
        if case .gqa(let g) = model.attention {
            check.require(
                tensorParallel > 0 && g.kvHeads % tensorParallel == 0 || tensorParallel > 0 && tensorParallel % g.kvHeads == 0,
                "tp", "expected tp to divide or be a multiple of the \(g.kvHeads) KV heads, got \(tensorParallel)"
            )
        }
        check.require(
            tensorParallel <= node.gpusPerNode, "tp",
            "expected at most the \(node.gpusPerNode) GPUs of one node (tensor parallelism runs over NVLink), got \(tensorParallel)"
        )
        return check.problems
    }
}
