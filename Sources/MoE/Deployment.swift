import Hardware
import Units

/// How a model is laid out over GPUs for serving: one deployment unit of a prefill or decode instance.
///
/// MoE models run routed experts with expert parallelism over `expertParallel` GPUs and attention
/// with data parallelism over the same GPUs (DeepSeek's layout). Dense models shard attention and
/// FFN with tensor parallelism over `tensorParallel` GPUs.
public struct Deployment: Hashable, Sendable {
    /// GPUs the routed experts are spread over (1 = every expert on every GPU).
    public var expertParallel: Int
    /// GPUs each attention and dense FFN is sharded over.
    public var tensorParallel: Int
    /// Extra copies of hot experts (EPLB's redundant experts).
    public var redundantExperts: Int
    /// Micro-batches whose computation and all-to-all overlap (DeepSeek uses 2).
    public var microBatches: Int
    /// Load of the busiest EP rank over the mean (≥ 1): the busiest rank sets the step time.
    public var expertLoadImbalance: Double
    /// SMs taken by communication kernels while they overlap computation.
    public var communicationSMs: Int
    /// Whether expert slots may not divide evenly over the EP GPUs (after pruning, some GPUs hold
    /// one expert fewer): memory is then sized for the fullest GPU.
    public var unevenExperts = false

    /// Creates a deployment.
    public init(
        expertParallel: Int, tensorParallel: Int = 1, redundantExperts: Int = 0, microBatches: Int = 2,
        expertLoadImbalance: Double = 1, communicationSMs: Int = 0
    ) {
        self.expertParallel = expertParallel
        self.tensorParallel = tensorParallel
        self.redundantExperts = redundantExperts
        self.microBatches = microBatches
        self.expertLoadImbalance = expertLoadImbalance
        self.communicationSMs = communicationSMs
    }

    /// GPUs in one deployment unit.
    public var gpus: Int { max(expertParallel, tensorParallel) }

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

    /// Every problem with this deployment of `model` on `node`, named by command-line flag.
    public func validate(for model: ModelArchitecture, on node: NodeSpec) -> [SpecProblem] {
        var check = SpecChecker()
        check.positive(expertParallel, "ep")
        check.positive(tensorParallel, "tp")
        check.nonNegative(redundantExperts, "redundant-experts")
        check.positive(microBatches, "micro-batches")
        check.within(expertLoadImbalance, 1...10, "expert-load-imbalance")
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
                tensorParallel == 1 || expertParallel == 1, "tp",
                "expected tp 1 with expert parallelism (attention is data-parallel over the EP GPUs), got tp \(tensorParallel) with ep \(expertParallel)"
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
