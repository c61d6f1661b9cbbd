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
    /// All-to-all of one MoE layer (all micro-batches, busiest GPU).
    public var moeLayerCommunication: TimeSpan
    /// The output head and embedding.
    public var headTime: TimeSpan
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
    /// Draw of one GPU during the step.
    public var gpuPower: Power
    /// Draw of one node (GPUs and host) during the step.
    public var nodePower: Power
    /// Draw of one node including the facility overhead (PUE).
    public var facilityPower: Power
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
        guard deployment.expertParallel > 1, model.isMixtureOfExperts else { return 1 }
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
                ? deployment.maximumExpertSlotsPerGPU(for: model) + Double(moe.sharedExperts)
                : Double(moe.routedExperts + moe.sharedExperts) / tp
            bytes += Double(model.moeLayers) * experts * p.perExpert * w
        }
        return bytes
    }

    /// Time and cost of one step of `workload` (per GPU) on this deployment.
    public func estimate(_ workload: StepWorkload) -> StepEstimate {
        let planner = LayerPlanner(model: model, deployment: deployment)
        let m = Double(deployment.microBatches)
        let overlap = deployment.microBatches >= 2 && deployment.expertParallel > 1
        let share = overlap && workload.phase == .prefill ? computeShare : 1
        let tokens = workload.computedTokens / m
        let contextTokens = (workload.sequences * workload.cachedPerSequence + workload.computedTokens) / m
        let attended = workload.meanAttendedPositions
        let a2a = node.allToAll

        var total = KernelCost.zero
        var denseTime = TimeSpan.zero
        var moeTime = TimeSpan.zero
        var moeCompute = TimeSpan.zero
        var moeComm = TimeSpan.zero
        for (layer, count, isMoE) in planner.distinctLayers(phase: workload.phase, tokens: tokens, attended: attended, contextTokens: contextTokens) {
            let cost = gpu.cost(of: layer.kernels, computeShare: share) * m
            let comm = (a2a.time(ep: deployment.expertParallel, bytesPerGPU: layer.dispatchBytes)
                + a2a.time(ep: deployment.expertParallel, bytesPerGPU: layer.combineBytes)) * m
            let allReduce = allReduceTime(bytes: layer.allReduceBytes) * Double(layer.allReduces) * m
            let time = (overlap ? max(cost.time, comm) : cost.time + comm) + allReduce
            let n = Double(count)
            total = total + cost * n
            if isMoE {
                moeTime += time * n
                moeCompute = cost.time
                moeComm = comm
            } else {
                denseTime += time * n
            }
        }
        let headRows = workload.sequences
        let head = gpu.cost(of: [
            Kernel(name: "embed", shape: .elementwise(bytes: 4 * workload.computedTokens * Double(model.hidden)), precision: .bf16),
            Kernel(name: "head", shape: .gemm(rows: headRows, outputs: Double(model.vocabulary) / Double(deployment.tensorParallel), depth: Double(model.hidden), groups: 1), precision: .bf16),
        ])
        total = total + head
        let step = denseTime + moeTime + head.time

        let uC = total.peakComputeTime / step
        let uM = total.bytes / (step.seconds * gpu.memoryBandwidthBytesPerSecond)
        let gpuPower = gpu.power.busyPower(computeUtilisation: uC, memoryUtilisation: uM)
        let nodePower = gpuPower * Double(node.gpusPerNode) + node.hostActive
        let facility = nodePower * site.pue
        let perGPU: Double = workload.phase == .decode ? workload.computedTokens : workload.servedTokens
        let perNode = perGPU * Double(node.gpusPerNode) / Double(deployment.tensorParallel) / step.seconds
        let perUser: Double = switch workload.phase {
        case .decode: 1 / step.seconds
        case .prefill: workload.meanContext / step.seconds
        }
        let kvBytes = workload.sequences * workload.meanContext * model.kvCacheBytesPerToken / Double(deployment.tensorParallel)
        return StepEstimate(
            phase: workload.phase, stepTime: step, denseLayersTime: denseTime, moeLayersTime: moeTime,
            moeLayerCompute: moeCompute, moeLayerCommunication: moeComm, headTime: head.time,
            tokensPerGPU: perGPU, tokensPerSecondPerNode: perNode, tokensPerSecondPerUser: perUser,
            computeUtilisation: uC, memoryUtilisation: uM, gpuPower: gpuPower, nodePower: nodePower,
            facilityPower: facility, joulesPerToken: nodePower.watts / perNode,
            facilityJoulesPerToken: facility.watts / perNode, weightBytesPerGPU: weightBytesPerGPU,
            kvCacheBytesPerGPU: kvBytes, memoryCapacityBytes: gpu.memoryBytes
        )
    }

    /// A ring all-reduce of `bytes` over the tensor-parallel GPUs of one node.
    private func allReduceTime(bytes: Double) -> TimeSpan {
        let tp = Double(deployment.tensorParallel)
        guard tp > 1, bytes > 0 else { return .zero }
        return node.allToAll.baseLatency + TimeSpan(seconds: 2 * (tp - 1) / tp * bytes / node.allToAll.nvlinkBytesPerSecond)
    }
}
