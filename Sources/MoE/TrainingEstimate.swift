import Foundation
import Hardware
import Units

/// How pipeline stages exchange micro-batches.
public enum PipelineSchedule: String, CaseIterable, Codable, Hashable, Sendable {
    /// DeepSeek-V3's bidirectional schedule: every rank holds two stages (one per direction),
    /// forward and backward chunks of different micro-batches overlap with their all-to-all.
    /// Bubble (PP/2 − 1)(F&B + B − 3W), PP + 1 micro-batches of activations (V3 report, Table 2).
    case dualpipe
    /// One-forward-one-backward: bubble (PP − 1)(F + B + W), PP micro-batches of activations.
    case oneFOneB = "1f1b"
}

/// How a training cluster is split.
public struct TrainingLayout: Hashable, Sendable {
    /// GPUs in the cluster.
    public var gpus: Int
    /// Pipeline-parallel stages (ranks).
    public var pipelineParallel: Int
    /// Expert-parallel degree, inside data parallelism.
    public var expertParallel: Int
    /// GPUs one sequence is split over (context parallelism), inside data parallelism.
    public var contextParallel: Int
    public var schedule: PipelineSchedule
    /// SMs reserved for communication while it overlaps computation (DeepSeek-V3: 20 of 132).
    public var communicationSMs: Int
    public var recompute: Recompute

    public init(
        gpus: Int, pipelineParallel: Int, expertParallel: Int, contextParallel: Int = 1, schedule: PipelineSchedule = .dualpipe,
        communicationSMs: Int = 20, recompute: Recompute = .selective
    ) {
        self.gpus = gpus
        self.pipelineParallel = pipelineParallel
        self.expertParallel = expertParallel
        self.contextParallel = contextParallel
        self.schedule = schedule
        self.communicationSMs = communicationSMs
        self.recompute = recompute
    }

    /// GPUs per pipeline stage (data, expert and context parallelism together).
    public var dataParallel: Int { gpus / max(pipelineParallel, 1) }
    /// Sequences one micro-batch slot holds over the cluster (data-parallel replicas of a sequence).
    public var sequenceReplicas: Int { dataParallel / max(contextParallel, 1) }
    /// The step that batch sizes come in: whole micro-batches per pipeline replica, an even number for DualPipe.
    public var batchUnit: Double { Double(sequenceReplicas * (schedule == .dualpipe ? 2 : 1)) }

    /// Problems with the layout for `model` on `node`, named by `prefix` + field.
    public func validate(for model: ModelArchitecture, on node: NodeSpec, prefix: String = "--") -> [String] {
        var problems: [String] = []
        func bad(_ field: String, _ message: String) { problems.append("\(prefix)\(field): \(message)") }
        if gpus <= 0 { bad("gpus", "expected a positive number, got \(gpus)") }
        if pipelineParallel <= 0 || gpus % max(pipelineParallel, 1) != 0 {
            bad("pp", "expected a divisor of gpus (\(gpus)), got \(pipelineParallel)")
        } else if schedule == .dualpipe && pipelineParallel % 2 != 0 {
            bad("pp", "expected an even number of stages for DualPipe, got \(pipelineParallel)")
        }
        if pipelineParallel > model.layers { bad("pp", "expected at most the model's \(model.layers) layers, got \(pipelineParallel)") }
        if contextParallel <= 0 || (pipelineParallel > 0 && dataParallel % max(contextParallel, 1) != 0) {
            bad("cp", "expected a divisor of the GPUs per stage (\(pipelineParallel > 0 ? dataParallel : 0)), got \(contextParallel)")
        }
        if expertParallel <= 0 || (pipelineParallel > 0 && dataParallel % max(expertParallel, 1) != 0) {
            bad("ep", "expected a divisor of the GPUs per stage (\(pipelineParallel > 0 ? dataParallel : 0)), got \(expertParallel)")
        }
        if let moe = model.moe, expertParallel > 0, moe.routedExperts % expertParallel != 0 {
            bad("ep", "expected a divisor of the \(moe.routedExperts) routed experts, got \(expertParallel)")
        }
        if model.moe == nil && expertParallel != 1 { bad("ep", "expected 1 for a dense model (\(model.id)), got \(expertParallel)") }
        if !(0..<node.gpu.streamingMultiprocessors).contains(communicationSMs) {
            bad("communication-sms", "expected 0 to \(node.gpu.streamingMultiprocessors - 1), got \(communicationSMs)")
        }
        return problems
    }
}

/// One optimizer step's cost on one layout.
public struct TrainingStep: Hashable, Sendable {
    /// Sequences per step over the cluster.
    public var batch: Double
    /// Micro-batches each pipeline replica runs per step.
    public var microBatches: Int
    public var stepTime: TimeSpan
    /// Steady-state time (every micro-batch through the busiest rank, overlapped).
    public var steadyTime: TimeSpan
    /// The schedule's bubble.
    public var bubbleTime: TimeSpan
    /// The optimizer update (AdamW over this GPU's ZeRO-1 shard).
    public var optimizerTime: TimeSpan
    /// Data-parallel gradient reduce-scatter and weight all-gather, not overlapped (an assumption).
    public var gradientSyncTime: TimeSpan
    /// Per micro-batch on the busiest rank (mean of its stages): forward, input-gradient and
    /// weight-gradient computation, and all-to-all (forward + backward).
    public var forward: TimeSpan
    public var inputGradient: TimeSpan
    public var weightGradient: TimeSpan
    public var communication: TimeSpan
    /// Blocks (embedding, layers, MTP parts, head) per pipeline stage, in order.
    public var blocksPerStage: [[String]]
    /// Memory of the fullest GPU, in bytes: weights, gradients, optimizer state, activations.
    public var weightBytes: Double
    public var gradientBytes: Double
    public var optimizerBytes: Double
    public var activationBytes: Double
    public var memoryCapacityBytes: Double
    /// Model FLOPs of one step (balanced routing, causal attention, no padding, no recomputation).
    public var modelFLOPs: Double
    /// Model FLOPs per second over the cluster's dense BF16 peak.
    public var mfu: Double
    public var gpuPower: Power
    /// How much the power limit stretched the step (1 = not TDP-bound).
    public var throttle: Double

    public var memoryBytes: Double { weightBytes + gradientBytes + optimizerBytes + activationBytes }
    public var fitsInMemory: Bool { memoryBytes <= memoryCapacityBytes }
}

/// Training steps from the pipeline schedule up, on the serving model's kernel costs.
///
/// Each block's forward kernels come from the serving planner (prefill: causal attention over the
/// sequence, balanced routing); its backward passes from `TrainingPasses.derive`. Blocks are cut
/// into `pp` contiguous stages that minimise the slowest; DualPipe gives each rank stage `r` and
/// stage `pp − 1 − r`. A block's micro-batch costs max(computation, all-to-all): DualPipe overlaps
/// them, with the communication SMs taken from computation.
public struct TrainingCostModel: Sendable {
    public var model: ModelArchitecture
    public var node: NodeSpec
    public var site: SiteSpec

    public init(model: ModelArchitecture, node: NodeSpec, site: SiteSpec) {
        self.model = model
        self.node = node
        self.site = site
    }

    private struct BlockCost {
        var name: String
        var forward: KernelCost
        var inputGradient: KernelCost
        var weightGradient: KernelCost
        var communication: TimeSpan
        var saved: Double
        var dense: Double
        var expert: Double
        var time: TimeSpan { max(forward.time + inputGradient.time + weightGradient.time, communication) }
        var compute: KernelCost { forward + inputGradient + weightGradient }
    }

    /// Contiguous cut of `costs` into `parts` non-empty groups minimising the largest sum (exact,
    /// by dynamic programming over cut points).
    public static func partition(_ costs: [Double], parts: Int) -> [Range<Int>] {
        let n = costs.count
        let k = max(1, min(parts, n))
        var prefix = [0.0]
        for c in costs { prefix.append(prefix.last! + c) }
        // best[j][i]: the smallest possible largest group when the first i blocks form j groups.
        var best = Array(repeating: Array(repeating: Double.infinity, count: n + 1), count: k + 1)
        var cut = Array(repeating: Array(repeating: 0, count: n + 1), count: k + 1)
        best[0][0] = 0
        for j in 1...k {
            for i in j...n {
                for s in (j - 1)..<i {
                    let value = max(best[j - 1][s], prefix[i] - prefix[s])
                    if value < best[j][i] { best[j][i] = value; cut[j][i] = s }
                }
            }
        }
        var ranges: [Range<Int>] = []
        var end = n
        for j in stride(from: k, through: 1, by: -1) {
            let start = cut[j][end]
            ranges.insert(start..<end, at: 0)
            end = start
        }
        return ranges
    }

    /// One optimizer step of `batch` sequences `sequenceLength` long on `layout`. The layout must
    /// be valid and `batch` a whole number of micro-batches (see `TrainingStage.validate`).
    public func step(layout: TrainingLayout, sequenceLength t: Double, batch: Double) -> TrainingStep {
        let gpu = node.gpu
        let planner = TrainingPlanner(model: model, expertParallel: layout.expertParallel, contextParallel: layout.contextParallel, recompute: layout.recompute)
        let overlapped = layout.expertParallel > 1 || layout.contextParallel > 1
        let share = overlapped ? Double(gpu.streamingMultiprocessors - layout.communicationSMs) / Double(gpu.streamingMultiprocessors) : 1
        let a2a = node.allToAll
        let ringBandwidth = layout.contextParallel <= node.gpusPerNode ? a2a.nvlinkBytesPerSecond : a2a.infinibandBytesPerSecond
        let costs: [BlockCost] = planner.blocks(sequenceLength: t).map { b in
            let p = b.passes
            let allToAll = a2a.time(ep: layout.expertParallel, bytesPerGPU: b.dispatchBytes) + a2a.time(ep: layout.expertParallel, bytesPerGPU: b.combineBytes)
            // Forward and backward each send the dispatch and combine bytes; the ring passes KV latents forward and their gradients back.
            let ring = TimeSpan(seconds: 3 * b.ringBytes / ringBandwidth)
            return BlockCost(
                name: b.name, forward: gpu.cost(of: p.forward, computeShare: share), inputGradient: gpu.cost(of: p.inputGradient, computeShare: share),
                weightGradient: gpu.cost(of: p.weightGradient, computeShare: share), communication: allToAll * 2 + ring,
                saved: b.savedActivationBytes, dense: b.denseParameters, expert: b.expertParameters
            )
        }
        let pp = layout.pipelineParallel
        let stages = Self.partition(costs.map { $0.time.seconds }, parts: pp)
        func sum(_ r: Range<Int>, _ f: (BlockCost) -> Double) -> Double { costs[r].reduce(0) { $0 + f($1) } }
        // The stages each rank holds: DualPipe pairs r with pp − 1 − r.
        let ranks: [[Range<Int>]] = (0..<pp).map { r in
            layout.schedule == .dualpipe && pp > 1 ? [stages[r], stages[pp - 1 - r]] : [stages[r]]
        }
        func mean(_ rank: [Range<Int>], _ f: (BlockCost) -> Double) -> Double { rank.reduce(0) { $0 + sum($1, f) } / Double(rank.count) }
        let busiest = ranks.max { mean($0) { $0.time.seconds } < mean($1) { $0.time.seconds } }!
        let perMicroBatch = mean(busiest) { $0.time.seconds }
        let fTime = mean(busiest) { $0.forward.time.seconds }
        let bTime = mean(busiest) { $0.inputGradient.time.seconds }
        let wTime = mean(busiest) { $0.weightGradient.time.seconds }
        let comm = mean(busiest) { $0.communication.seconds }

        let m = Int((batch / Double(layout.sequenceReplicas)).rounded())
        let steady = perMicroBatch * Double(m)
        let bubble: Double = switch layout.schedule {
        case .dualpipe:
            // F&B: a forward and a backward chunk overlapped, with their all-to-all.
            Double(max(pp / 2 - 1, 0)) * max(0, max(fTime + bTime, comm) + bTime - 3 * wTime)
        case .oneFOneB:
            Double(pp - 1) * (fTime + bTime + wTime)
        }

        // Parameters this GPU holds (both DualPipe copies), and their data-parallel replication.
        let dense = busiest.reduce(0) { $0 + sum($1) { $0.dense } }
        let expert = busiest.reduce(0) { $0 + sum($1) { $0.expert } }
        let dp = Double(layout.dataParallel)
        let expertReplicas = max(1, dp / Double(max(layout.expertParallel, 1)))
        let copies = Double(busiest.count)
        // ZeRO-1: FP32 master weights and BF16 moments (V3 report §3.3.3), one state per parameter
        // sharded over its replicas (the DualPipe copies included).
        let optimizerParameters = (dense / dp + expert / expertReplicas) / copies
        let optimizer = gpu.cost(of: Kernel(name: "adamw", shape: .elementwise(bytes: optimizerParameters * 22), precision: .bf16))
        let syncBytes = 2 * 2 * (dense * (dp - 1) / dp + expert * (expertReplicas - 1) / expertReplicas)
        let sync = TimeSpan(seconds: layout.gpus > node.gpusPerNode ? syncBytes / a2a.infinibandBytesPerSecond : syncBytes / a2a.nvlinkBytesPerSecond)
        let inFlight = Double(layout.schedule == .dualpipe ? pp + 1 : pp)
        let activations = inFlight * mean(busiest) { $0.saved }

        let modelFLOPs = 3 * TrainingPlanner(model: model, expertParallel: layout.expertParallel, recompute: .none)
            .blocks(sequenceLength: t).reduce(0) { $0 + $1.forwardFLOPs } * batch
        // Power in the steady state, at full clocks; past the board limit the computation (and the
        // bubble, made of the same chunks) stretches at constant energy per operation. The
        // optimizer step and the gradient exchange are memory- and link-bound and do not stretch.
        let uC = mean(busiest) { $0.compute.peakComputeTime.seconds } / perMicroBatch
        let uM = mean(busiest) { $0.compute.bytes } / (perMicroBatch * gpu.memoryBandwidthBytesPerSecond)
        let uL = min(1, comm / perMicroBatch)
        let demand = gpu.power.demand(computeUtilisation: uC, memoryUtilisation: uM, linkUtilisation: uL)
        let throttle = gpu.power.throttle(demand: demand)
        let working = min(demand, gpu.power.tdp)
        let optimizerPower = gpu.power.busyPower(computeUtilisation: 0, memoryUtilisation: optimizer.bytes / max(optimizer.time.seconds, 1e-12) / gpu.memoryBandwidthBytesPerSecond)
        let syncPower = gpu.power.busyPower(computeUtilisation: 0, memoryUtilisation: 0, linkUtilisation: 1)
        // In the bubble a rank waits on its neighbours at the busy floor.
        let bubblePower = gpu.power.busy
        let steadyTime = steady * throttle, bubbleTime = bubble * throttle
        let stepTime = steadyTime + bubbleTime + optimizer.time.seconds + sync.seconds
        let energy = working.watts * steadyTime + bubblePower.watts * bubbleTime + optimizerPower.watts * optimizer.time.seconds + syncPower.watts * sync.seconds
        return TrainingStep(
            batch: batch, microBatches: m, stepTime: TimeSpan(seconds: stepTime), steadyTime: TimeSpan(seconds: steadyTime),
            bubbleTime: TimeSpan(seconds: bubbleTime), optimizerTime: optimizer.time, gradientSyncTime: sync,
            forward: TimeSpan(seconds: fTime), inputGradient: TimeSpan(seconds: bTime), weightGradient: TimeSpan(seconds: wTime), communication: TimeSpan(seconds: comm),
            blocksPerStage: stages.map { costs[$0].map(\.name) },
            weightBytes: (dense + expert) * 2, gradientBytes: (dense + expert) * 4, optimizerBytes: optimizerParameters * copies * 8,
            activationBytes: activations, memoryCapacityBytes: gpu.memoryBytes,
            modelFLOPs: modelFLOPs, mfu: modelFLOPs / (stepTime * Double(layout.gpus) * gpu.peak(.bf16)),
            gpuPower: Power(watts: energy / stepTime), throttle: throttle
        )
    }
}
