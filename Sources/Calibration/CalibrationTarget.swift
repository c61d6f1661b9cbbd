/// Which Joule computation a published figure is compared with, and its inputs.
public enum CalibrationCheck: Hashable, Sendable {
    /// A model's total parameters.
    case totalParameters(model: String)
    /// A model's active parameters per token, counting the input embedding or not (vendors differ).
    case activeParameters(model: String, includesEmbedding: Bool)
    /// A model's KV-cache bytes per token.
    case kvCacheBytesPerToken(model: String)
    /// The analytical all-to-all bound for one round, in µs.
    case analyticalAllToAllRound(AnalyticalBoundInputs)
    /// The analytical TPOT bound (rounds × micro-batches × layers), in ms.
    case analyticalTPOT(AnalyticalBoundInputs, microBatches: Int, layers: Int)
    /// A (grouped) FP8 GEMM's throughput on a GPU, in TFLOPS.
    case gemmThroughput(gpu: String, rows: Double, outputs: Double, depth: Double, groups: Double)
    /// A FlashMLA-style decode attention kernel, in TFLOPS or GB/s.
    case attentionKernel(gpu: String, model: String, batch: Double, context: Double, heads: Double, queryTokens: Double, metric: AttentionMetric)
    /// One all-to-all on a node type, in µs or GB/s.
    case allToAll(node: String, ep: Int, tokensPerRank: Double, hidden: Double, expertsPerToken: Double, operation: AllToAllOperation, metric: AllToAllMetric)
    /// A serving step's figure (throughput per node, per user, or GPU power).
    case servingStep(ServingStepInputs, metric: ServingMetric)
    /// GPU-hours of a pre-training run.
    case trainingGPUHours(TrainingInputs)
    /// Node-hours a scenario's workload needs when its pools are sized at an SLO (capacity mode).
    case fleetNodeHours(FleetInputs)
    /// GPU-hours of some stages of a training plan (`Data/training`), summed.
    case trainingPlanGPUHours(plan: String, stages: [String]?)
}

/// The ISCA'25 style bound's inputs, as the paper states them.
public struct AnalyticalBoundInputs: Hashable, Sendable {
    public var tokens: Double
    public var experts: Double
    public var hidden: Double
    public var dispatchBytesPerElement: Double
    public var combineBytesPerElement: Double
    public var bandwidthGBps: Double

    public init(tokens: Double, experts: Double, hidden: Double, dispatchBytesPerElement: Double, combineBytesPerElement: Double, bandwidthGBps: Double) {
        self.tokens = tokens
        self.experts = experts
        self.hidden = hidden
        self.dispatchBytesPerElement = dispatchBytesPerElement
        self.combineBytesPerElement = combineBytesPerElement
        self.bandwidthGBps = bandwidthGBps
    }
}

/// What an attention-kernel check measures.
public enum AttentionMetric: String, CaseIterable, Hashable, Sendable {
    case tflops
    case gbps
}

/// Dispatch or combine.
public enum AllToAllOperation: String, CaseIterable, Hashable, Sendable {
    case dispatch
    case combine
}

/// What an all-to-all check measures: time, or bandwidth as DeepEP reports it.
public enum AllToAllMetric: String, CaseIterable, Hashable, Sendable {
    /// Kernel time in µs.
    case microseconds
    /// All bytes sent ÷ time (DeepEP's NVLink figure).
    case algorithmicGBps
    /// Bytes that cross InfiniBand ÷ time (DeepEP's RDMA figure).
    case rdmaGBps
}

/// What a serving-step check measures.
public enum ServingMetric: String, CaseIterable, Hashable, Sendable {
    case tokensPerSecondPerNode
    case tokensPerSecondPerUser
    case gpuPowerWatts
}

/// Inputs of a serving step, as `joule estimate step` takes them.
public struct ServingStepInputs: Hashable, Sendable {
    public var model: String
    public var hardware: String
    public var site: String
    public var phase: String
    public var ep: Int
    public var tp: Int
    public var batchPerGPU: Double?
    public var tokensPerGPU: Double?
    public var cachedFraction: Double
    public var context: Double

    public init(model: String, hardware: String, site: String, phase: String, ep: Int, tp: Int, batchPerGPU: Double?, tokensPerGPU: Double?, cachedFraction: Double, context: Double) {
        self.model = model
        self.hardware = hardware
        self.site = site
        self.phase = phase
        self.ep = ep
        self.tp = tp
        self.batchPerGPU = batchPerGPU
        self.tokensPerGPU = tokensPerGPU
        self.cachedFraction = cachedFraction
        self.context = context
    }
}

/// Inputs of a training estimate, as `joule estimate training` takes them.
public struct TrainingInputs: Hashable, Sendable {
    public var model: String
    public var hardware: String
    public var gpus: Int
    public var pp: Int
    public var ep: Int
    public var tokens: Double
    public var seqLen: Double
    public var globalBatch: Double

    public init(model: String, hardware: String, gpus: Int, pp: Int, ep: Int, tokens: Double, seqLen: Double, globalBatch: Double) {
        self.model = model
        self.hardware = hardware
        self.gpus = gpus
        self.pp = pp
        self.ep = ep
        self.tokens = tokens
        self.seqLen = seqLen
        self.globalBatch = globalBatch
    }
}

/// A published figure Joule is held to: its value, source, tolerance and the computation it is compared with.
public struct CalibrationTarget: Hashable, Sendable {
    /// Stable identifier (`deepseek-v3.parameters.total`).
    public var id: String
    /// What the figure is, in words.
    public var description: String
    /// The published value.
    public var published: Double
    /// Its unit.
    public var unit: String
    /// Allowed relative error (0.15 = ±15 %); `nil` for a figure shown for comparison only.
    public var tolerance: Double?
    /// Where the figure comes from.
    public var source: String
    /// The computation it is compared with.
    public var check: CalibrationCheck

    public init(id: String, description: String, published: Double, unit: String, tolerance: Double?, source: String, check: CalibrationCheck) {
        self.id = id
        self.description = description
        self.published = published
        self.unit = unit
        self.tolerance = tolerance
        self.source = source
        self.check = check
    }
}

/// Inputs of a capacity-mode check, as `joule simulate --size-fleet` takes them.
public struct FleetInputs: Hashable, Sendable {
    public var scenario: String
    public var tpotMilliseconds: Double
    public var prefillStepMilliseconds: Double

    public init(scenario: String, tpotMilliseconds: Double, prefillStepMilliseconds: Double) {
        self.scenario = scenario
        self.tpotMilliseconds = tpotMilliseconds
        self.prefillStepMilliseconds = prefillStepMilliseconds
    }
}
