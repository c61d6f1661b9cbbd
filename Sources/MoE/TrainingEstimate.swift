import Hardware
import Units

/// A pre-training run: how much data, on how many GPUs, split how.
public struct TrainingPlan: Hashable, Sendable {
    /// GPUs in the cluster.
    public var gpus: Int
    /// Pipeline-parallel stages.
    public var pipelineParallel: Int
    /// Expert-parallel degree (inside the data-parallel dimension, as DeepSeek-V3 trains).
    public var expertParallel: Int
    /// Tokens to train on.
    public var tokens: Double
    /// Sequence length.
    public var sequenceLength: Double
    /// Sequences per optimizer step, over the whole cluster.
    public var globalBatch: Double
    /// SMs reserved for communication (DeepSeek-V3 reserves 20 of 132).
    public var communicationSMs: Int
    /// Load of the busiest EP rank over the mean.
    public var expertLoadImbalance: Double

    /// Creates a training plan.
    public init(
        gpus: Int, pipelineParallel: Int, expertParallel: Int, tokens: Double, sequenceLength: Double,
        globalBatch: Double, communicationSMs: Int = 20, expertLoadImbalance: Double = 1
    ) {
        self.gpus = gpus
        self.pipelineParallel = pipelineParallel
        self.expertParallel = expertParallel
        self.tokens = tokens
        self.sequenceLength = sequenceLength
        self.globalBatch = globalBatch
        self.communicationSMs = communicationSMs
        self.expertLoadImbalance = expertLoadImbalance
    }

    /// Data-parallel replicas (each spans `pipelineParallel` GPUs).
    public var dataParallel: Int { gpus / pipelineParallel }

    /// Problems with the plan, named by command-line flag.
    public func validate(for model: ModelArchitecture) -> [String] {
        var problems: [String] = []
        if gpus <= 0 { problems.append("--gpus: expected a positive number, got \(gpus)") }
        if pipelineParallel <= 0 || gpus % max(pipelineParallel, 1) != 0 {
            problems.append("--pp: expected a divisor of --gpus (\(gpus)), got \(pipelineParallel)")
        } else if pipelineParallel > model.layers {
            problems.append("--pp: expected at most the model's \(model.layers) layers, got \(pipelineParallel)")
        }
        if expertParallel <= 0 || (pipelineParallel > 0 && dataParallel % max(expertParallel, 1) != 0) {
            problems.append("--ep: expected a divisor of the data-parallel degree (\(pipelineParallel > 0 ? dataParallel : 0)), got \(expertParallel)")
        }
        if let moe = model.moe, expertParallel > 0, moe.routedExperts % expertParallel != 0 {
            problems.append("--ep: expected a divisor of the \(moe.routedExperts) routed experts, got \(expertParallel)")
        }
        if model.moe == nil && expertParallel != 1 {
            problems.append("--ep: expected 1 for a dense model (\(model.id)), got \(expertParallel)")
        }
        if !(tokens.isFinite && tokens > 0) { problems.append("--tokens: expected a positive number, got \(tokens)") }
        if !(sequenceLength >= 1) { problems.append("--seq-len: expected at least 1, got \(sequenceLength)") }
        if !(globalBatch >= 1) { problems.append("--global-batch: expected at least 1 sequence, got \(globalBatch)") }
        if pipelineParallel > 0, gpus % max(pipelineParallel, 1) == 0, dataParallel > 0, globalBatch < Double(dataParallel) {
            problems.append("--global-batch: expected at least one sequence per data-parallel replica (\(dataParallel)), got \(globalBatch)")
        }
        return problems
    }
}

/// What a pre-training run costs.
public struct TrainingEstimate: Hashable, Sendable {
    /// Wall time of one optimizer step.
    public var stepTime: TimeSpan
    /// Optimizer steps in the run.
    public var steps: Double
    /// GPU-hours of the run.
    public var gpuHours: Double
    /// Share of the pipeline schedule lost to bubbles.
    public var bubbleFraction: Double
    /// Model FLOPs utilisation: model FLOPs per second over the cluster's dense BF16 peak.
    public var mfu: Double
    /// Draw of one GPU while training.
    public var gpuPower: Power
    /// Energy drawn by the GPUs.
    public var gpuEnergy: Energy
    /// Energy of GPUs, hosts and facility overhead.
    public var facilityEnergy: Energy
    /// Wall time of the run.
    public var wallTime: TimeSpan
}

/// Estimates pre-training from the same kernel costs as serving.
///
/// Each micro-batch (one sequence per data-parallel replica) runs forward and backward through
/// `layers / pp` layers per stage; backward costs twice the forward computation (gradients for
/// inputs and weights). All-to-all (dispatch and combine, forward and backward) overlaps
/// computation as in DualPipe, with `communicationSMs` SMs taken from computation. DualPipe's
/// bubble is modelled as (pp/2 − 1) micro-batch slots. Data-parallel gradient reduction is assumed
/// hidden behind computation (ZeRO-1 with overlap), an assumption stated in `Data/SOURCES.md`.
public struct TrainingCostModel: Sendable {
    /// The model.
    public var model: ModelArchitecture
    /// The node type.
    public var node: NodeSpec
    /// The site (PUE).
    public var site: SiteSpec

    /// Creates a training cost model.
    public init(model: ModelArchitecture, node: NodeSpec, site: SiteSpec) {
        self.model = model
        self.node = node
        self.site = site
    }

    /// Estimates `plan`. The plan must be valid (see `TrainingPlan.validate`).
    public func estimate(_ plan: TrainingPlan) -> TrainingEstimate {
        let gpu = node.gpu
        let deployment = Deployment(
            expertParallel: plan.expertParallel, microBatches: 1,
            imbalanceOverride: plan.expertParallel > 1 ? plan.expertLoadImbalance : nil, communicationSMs: plan.communicationSMs
        )
        let planner = LayerPlanner(model: model, deployment: deployment)
        let share = Double(gpu.streamingMultiprocessors - plan.communicationSMs) / Double(gpu.streamingMultiprocessors)
        let t = plan.sequenceLength
        let pp = Double(plan.pipelineParallel)
        var forward = KernelCost.zero
        var perMicroBatch = TimeSpan.zero
        let sequence = planner.microBatch(StepWorkload(phase: .prefill, sequences: 1, computedTokens: t, cachedTokens: 0, meanContext: t))
        for (layer, count, _) in planner.distinctLayers(phase: .prefill, sequence) {
            let cost = gpu.cost(of: layer.kernels, computeShare: share)
            let comm = node.allToAll.time(ep: plan.expertParallel, bytesPerGPU: layer.dispatchBytes)
                + node.allToAll.time(ep: plan.expertParallel, bytesPerGPU: layer.combineBytes)
            forward = forward + cost * Double(count)
            // Forward + backward (2×) computation against forward + backward all-to-all (2×).
            perMicroBatch += max(cost.time * 3, comm * 2) * Double(count)
        }
        let head = gpu.cost(of: [Kernel(name: "head", shape: .gemm(rows: t, outputs: Double(model.vocabulary), depth: Double(model.hidden), groups: 1), precision: .bf16)])
        forward = forward + head
        perMicroBatch += head.time * 3
        // Work of one micro-batch on one stage.
        let stageSlot = perMicroBatch / pp
        let microBatches = plan.globalBatch / Double(plan.dataParallel)
        let bubbleSlots = max(pp / 2 - 1, 0)
        let stepTime = stageSlot * (microBatches + bubbleSlots)
        let steps = plan.tokens / (plan.globalBatch * plan.sequenceLength)
        let wall = stepTime * steps
        let gpuHours = wall.hours * Double(plan.gpus)

        let modelFLOPsPerToken = 3 * forward.flops / t
        let mfu = modelFLOPsPerToken * plan.tokens / (wall.seconds * Double(plan.gpus) * gpu.peak(.bf16))
        let busy = stageSlot * microBatches
        let uC = (forward.peakComputeTime * 3 / pp * microBatches) / stepTime
        let uM = forward.bytes * 3 / pp * microBatches / (stepTime.seconds * gpu.memoryBandwidthBytesPerSecond)
        let busyPower = gpu.power.busyPower(computeUtilisation: uC, memoryUtilisation: uM)
        let busyShare = busy / stepTime
        let gpuPower = busyPower * busyShare + gpu.power.idle * (1 - busyShare)
        let gpuEnergy = gpuPower * wall * Double(plan.gpus)
        let nodes = Double(plan.gpus) / Double(node.gpusPerNode)
        let hostEnergy = node.hostPower(gpuPower: gpuPower) * wall * nodes
        let facility = (gpuEnergy + hostEnergy) * site.pue
        return TrainingEstimate(
            stepTime: stepTime, steps: steps, gpuHours: gpuHours,
            bubbleFraction: bubbleSlots / (microBatches + bubbleSlots), mfu: mfu, gpuPower: gpuPower,
            gpuEnergy: gpuEnergy, facilityEnergy: facility, wallTime: wall
        )
    }
}
