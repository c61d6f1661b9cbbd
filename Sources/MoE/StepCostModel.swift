import Hardware
import Units

/// What one batch step costs on one deployment unit: time, throughput, power and energy.
public struct StepEstimate: Hashable, Sendable {
    /// The phase.
    public var phase: ServingPhase
    /// Wall time of the step.
    public var stepTime: TimeSpan
    /// Time of the dense layers, all micro-batches.
    public var denseLayersTime: TimeSpan
    /// Time of the MoE layers, all micro-batches, after overlap.
    public var moeLayersTime: TimeSpan
    /// Computation of one MoE layer (all micro-batches, busiest GPU).
    public var moeLayerCompute: TimeSpan
    /// Communication of one MoE layer (all micro-batches, busiest GPU).
    public var moeLayerCommunication: TimeSpan
    /// The output head and embedding.
    public var headTime: TimeSpan
    /// The step's fixed overhead outside kernels.
    public var overheadTime: TimeSpan
    /// How much the power limit stretched the step (1 = not TDP-bound).
    public var throttle: Double
    /// Tokens per step per GPU counted as throughput (decode: output tokens; prefill: input tokens incl. cache hits).
    public var tokensPerGPU: Double
    /// Throughput of one node, in tokens per second.
    public var tokensPerSecondPerNode: Double
    /// What one sequence sees, in tokens per second (decode: output speed; prefill: prompt tokens per second).
    public var tokensPerSecondPerUser: Double
    /// Fraction of the step the tensor cores would be busy at peak rate.
    public var computeUtilisation: Double
    /// Fraction of HBM bandwidth used over the step.
    public var memoryUtilisation: Double
    /// Fraction of the step collectives keep the links busy.
    public var linkUtilisation: Double
    /// The busiest EP rank's load over the mean in an MoE layer (1 without expert parallelism).
    public var loadImbalance: Double
    /// Distinct routed-expert instances the busiest GPU runs per MoE layer.
    public var expertsTouched: Double
    /// Draw of one GPU during the step.
    public var gpuPower: Power
    /// Draw of one node (GPUs and host) during the step.
    public var nodePower: Power
    /// Draw of one node including the facility overhead (PUE).
    public var facilityPower: Power
    /// GPU-only energy of one node per token of throughput.
    public var gpuJoulesPerToken: Double
    /// IT energy of one node per token of throughput.
    public var joulesPerToken: Double
    /// Facility energy of one node per token of throughput.
    public var facilityJoulesPerToken: Double
    /// Weights held by one GPU, in bytes.
    public var weightBytesPerGPU: Double
    /// KV cache held by one GPU for the step's sequences, in bytes.
    public var kvCacheBytesPerGPU: Double
    /// HBM capacity of one GPU, in bytes.
    public var memoryCapacityBytes: Double

    /// Whether weights and KV cache fit in HBM.
    public var fitsInMemory: Bool { weightBytesPerGPU + kvCacheBytesPerGPU <= memoryCapacityBytes }
}

/// Estimates batch steps of a model on a node type and a deployment. Pure and deterministic.
public struct StepCostModel: Sendable {
    /// The model.
    public var model: ModelArchitecture
    /// The node type.
    public var node: NodeSpec
    /// The site (PUE).
    public var site: SiteSpec
    /// The deployment.
    public var deployment: Deployment

    /// Creates a step cost model.
    public init(model: ModelArchitecture, node: NodeSpec, site: SiteSpec, deployment: Deployment) {
        self.model = model
        self.node = node
        self.site = site
        self.deployment = deployment
    }

    private var gpu: GPUSpec { node.gpu }

    /// Share of SMs left to computation while communication kernels run beside it.
    public var computeShare: Double {
        guard deployment.usesAllToAll, model.isMixtureOfExperts else { return 1 }
        return Double(gpu.streamingMultiprocessors - deployment.communicationSMs) / Double(gpu.streamingMultiprocessors)
    }

    /// Bytes of weights one GPU holds.
    public var weightBytesPerGPU: Double {
        let p = model.parameters
        let w = model.weightPrecision.bytesPerElement
        let tp = Double(deployment.tensorParallel)
        var bytes = (p.embedding + p.outputHead) * Precision.bf16.bytesPerElement / tp
        bytes += Double(model.layers) * p.attentionPerLayer * w / tp
        bytes += Double(model.denseLayers) * 3 * Double(model.hidden) * Double(model.denseIntermediate) * w / tp
        if let moe = model.moe {
            let experts = deployment.expertParallel > 1
                ? deployment.maximumExpertSlotsPerGPU(for: model) + Double(moe.sharedExperts) / tp
                : Double(moe.routedExperts + moe.sharedExperts) / tp
            bytes += Double(model.moeLayers) * experts * p.perExpert * w
        }
        return bytes
    }

    /// KV-cache tokens one attention rank holds once weights and a `reserve` share of HBM are set aside.
    public func kvTokensPerRank(memoryReserveFraction reserve: Double) -> Int {
        let free = gpu.memoryBytes * (1 - reserve) - weightBytesPerGPU
        let perRank = free * Double(deployment.tensorParallel) / model.kvCacheBytesPerToken
        // No room (or a deployment that does not hold together) is 0; a count beyond Int is Int.max.
        guard perRank.isFinite, perRank >= 1 else { return perRank == .infinity ? Int.max : 0 }
        return Int(exactly: perRank.rounded(.down)) ?? Int.max
    }

    /// Time and cost of one step of `workload` (per attention rank) on this deployment.
    public func estimate(_ workload: StepWorkload) -> StepEstimate {
        let planner = LayerPlanner(model: model, deployment: deployment)
        let mb = planner.microBatch(workload)
        let m = Double(max(deployment.microBatches, 1))
        let overlap = deployment.microBatches >= 2 && deployment.usesAllToAll
        let share = overlap && workload.phase == .prefill ? computeShare : 1
        let a2a = node.allToAll

        var total = KernelCost.zero
        var denseTime = TimeSpan.zero
        var moeTime = TimeSpan.zero
        var moeCompute = TimeSpan.zero
        var moeComm = TimeSpan.zero
        var linkBusy = TimeSpan.zero
        var imbalance = 1.0
        var touched = 0.0
        for (layer, count, isMoE) in planner.distinctLayers(phase: workload.phase, mb) {
            let cost = gpu.cost(of: layer.kernels, computeShare: share) * m
            let allToAll = (a2a.time(ep: deployment.expertParallel, bytesPerGPU: layer.dispatchBytes)
                + a2a.time(ep: deployment.expertParallel, bytesPerGPU: layer.combineBytes)) * m
            let allReduce = allReduceTime(bytes: layer.allReduceBytes) * Double(layer.allReduces) * m
            let time = (overlap ? max(cost.time, allToAll) : cost.time + allToAll) + allReduce
            let n = Double(count)
            total = total + cost * n
            linkBusy += (allToAll + allReduce) * n
            if isMoE {
                moeTime += time * n
                moeCompute = cost.time
                moeComm = allToAll + allReduce
                imbalance = layer.loadImbalance
                touched = layer.expertsTouched
            } else {
                denseTime += time * n
            }
        }
        let headRows = workload.sequences * workload.busiestRankFactor + (workload.mixedPrefill?.sequences ?? 0)
        let head = gpu.cost(of: [
            Kernel(name: "embed", shape: .elementwise(bytes: 4 * workload.linearTokens * Double(model.hidden)), precision: .bf16),
            Kernel(name: "head", shape: .gemm(rows: headRows, outputs: Double(model.vocabulary) / Double(deployment.tensorParallel), depth: Double(model.hidden), groups: 1), precision: .bf16),
            Kernel(name: "sample", shape: .elementwise(bytes: headRows * Double(model.vocabulary) * deployment.engine.samplerBytesPerLogit), precision: .bf16),
        ])
        total = total + head
        let kernelsTime = denseTime + moeTime + head.time
        let overhead = deployment.engine.overhead(sequences: headRows)
        let unthrottled = kernelsTime + overhead

        // Power at full clocks; past the board limit the step stretches at constant energy per operation.
        let uC = total.peakComputeTime / unthrottled
        let uM = total.bytes / (unthrottled.seconds * gpu.memoryBandwidthBytesPerSecond)
        let uL = min(1, linkBusy / unthrottled)
        let demand = gpu.power.demand(computeUtilisation: uC, memoryUtilisation: uM, linkUtilisation: uL)
        let throttle = gpu.power.throttle(demand: demand)
        let step = unthrottled * throttle
        let gpuPower = min(demand, gpu.power.tdp)
        let nodePower = gpuPower * Double(node.gpusPerNode) + node.hostPower(gpuPower: gpuPower)
        let facility = nodePower * site.pue
        let perGPU: Double = workload.phase == .decode ? workload.computedTokens : workload.servedTokens
        let perNode = perGPU * Double(node.gpusPerNode) / Double(deployment.tensorParallel) / step.seconds
        let perUser: Double = switch workload.phase {
        case .decode: 1 / step.seconds
        case .prefill: workload.meanContext / step.seconds
        }
        let kvBytes = workload.sequences * workload.busiestRankFactor * workload.meanContext * model.kvCacheBytesPerToken / Double(deployment.tensorParallel)
        return StepEstimate(
            phase: workload.phase, stepTime: step, denseLayersTime: denseTime, moeLayersTime: moeTime,
            moeLayerCompute: moeCompute, moeLayerCommunication: moeComm, headTime: head.time, overheadTime: overhead,
            throttle: throttle, tokensPerGPU: perGPU, tokensPerSecondPerNode: perNode, tokensPerSecondPerUser: perUser,
            computeUtilisation: uC / throttle, memoryUtilisation: uM / throttle, linkUtilisation: uL / throttle,
            loadImbalance: imbalance, expertsTouched: touched, gpuPower: gpuPower, nodePower: nodePower,
            facilityPower: facility, gpuJoulesPerToken: gpuPower.watts * Double(node.gpusPerNode) / perNode,
            joulesPerToken: nodePower.watts / perNode, facilityJoulesPerToken: facility.watts / perNode,
            weightBytesPerGPU: weightBytesPerGPU, kvCacheBytesPerGPU: kvBytes, memoryCapacityBytes: gpu.memoryBytes
        )
    }

    /// A ring all-reduce of `bytes` over the tensor-parallel GPUs of one node.
    private func allReduceTime(bytes: Double) -> TimeSpan {
        let tp = Double(deployment.tensorParallel)
        guard tp > 1, bytes > 0 else { return .zero }
        return deployment.engine.allReduceLatency + TimeSpan(seconds: 2 * (tp - 1) / tp * bytes / node.allToAll.nvlinkBytesPerSecond)
    }
}
