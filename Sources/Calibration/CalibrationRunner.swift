import Hardware
import MoE
import Units

/// One row of the calibration table: a published figure, what Joule computes, and the verdict.
public struct CalibrationRow: Hashable, Sendable {
    /// The target.
    public var target: CalibrationTarget
    /// Joule's value, in the target's unit.
    public var computed: Double

    /// (computed − published) ÷ published.
    public var relativeError: Double { (computed - target.published) / target.published }

    /// Whether the row is within tolerance; `nil` for a comparison-only row.
    public var passed: Bool? {
        guard let tolerance = target.tolerance else { return nil }
        return abs(relativeError) <= tolerance
    }
}

/// Computes every calibration row from the spec library. Pure.
public struct CalibrationRunner: Sendable {
    /// The specs the checks read.
    public var library: SpecLibrary
    /// Node-hours of a sized scenario (scenarios are read by the Catalog, above this module).
    public var fleetNodeHours: (@Sendable (FleetInputs) throws -> Double)?
    /// A training plan by name (plans are read by the Catalog, above this module).
    public var trainingPlan: (@Sendable (String) throws -> TrainingPlan)?

    /// Creates a runner.
    public init(
        library: SpecLibrary, trainingPlan: (@Sendable (String) throws -> TrainingPlan)? = nil,
        fleetNodeHours: (@Sendable (FleetInputs) throws -> Double)? = nil
    ) {
        self.library = library
        self.trainingPlan = trainingPlan
        self.fleetNodeHours = fleetNodeHours
    }

    /// Computes all rows, in the order of `targets`.
    public func run(_ targets: [CalibrationTarget]) throws -> [CalibrationRow] {
        try targets.map { CalibrationRow(target: $0, computed: try compute($0.check)) }
    }

    /// Joule's value for one check.
    public func compute(_ check: CalibrationCheck) throws -> Double {
        switch check {
        case .totalParameters(let id):
            return try library.model(id).parameters.total
        case .activeParameters(let id, let includesEmbedding):
            let p = try library.model(id).parameters
            return includesEmbedding && p.outputHead > 0 ? p.active + p.embedding : p.active
        case .kvCacheBytesPerToken(let id):
            return try library.model(id).kvCacheBytesPerToken
        case .analyticalAllToAllRound(let i):
            return Self.round(i).microseconds
        case .analyticalTPOT(let i, let microBatches, let layers):
            return (Self.round(i) * Double(microBatches * layers)).milliseconds
        case .gemmThroughput(let gpuID, let m, let n, let k, let g):
            let gpu = try library.gpu(gpuID)
            let cost = gpu.cost(of: Kernel(name: "check", shape: .gemm(rows: m, outputs: n, depth: k, groups: g), precision: .fp8))
            return cost.flops / cost.time.seconds / 1e12
        case .attentionKernel(let gpuID, let modelID, let batch, let context, let heads, let queryTokens, let metric):
            let gpu = try library.gpu(gpuID)
            guard case .mla(let mla) = try library.model(modelID).attention else {
                throw UnknownSpecError(kind: "MLA model", id: modelID, available: library.models.filter {
                    if case .mla = $0.value.attention { return true } else { return false }
                }.keys.sorted())
            }
            let latent = Double(mla.kvLoraRank + mla.qkRopeHeadDim)
            let rows = batch * queryTokens
            let flops = 2 * rows * heads * context * (latent + Double(mla.kvLoraRank))
            let bytes = batch * context * latent * 2
            let cost = gpu.cost(of: Kernel(name: "flashmla", shape: .attention(flops: flops, bytes: bytes), precision: .bf16))
            return metric == .tflops ? flops / cost.time.seconds / 1e12 : bytes / cost.time.seconds / 1e9
        case .allToAll(let nodeID, let ep, let tokens, let hidden, let k, let operation, let metric):
            let node = try library.node(nodeID)
            let bytes = operation == .dispatch ? tokens * k * (hidden + hidden / 128 * 4) : tokens * k * hidden * 2
            let time = node.allToAll.time(ep: ep, bytesPerGPU: bytes)
            switch metric {
            case .microseconds: return time.microseconds
            case .algorithmicGBps: return bytes / time.seconds / 1e9
            case .rdmaGBps: return bytes * node.allToAll.remoteFraction(ep: ep) / time.seconds / 1e9
            }
        case .servingStep(let i, let metric):
            guard let phase = ServingPhase(rawValue: i.phase) else {
                throw StepRequestError(problems: ["phase: expected prefill or decode, got \(i.phase)"])
            }
            let estimate = try library.estimate(StepRequest(
                model: i.model, hardware: i.hardware, site: i.site, phase: phase, ep: i.ep, tp: i.tp,
                batchPerGPU: i.batchPerGPU, tokensPerGPU: i.tokensPerGPU, cachedFraction: i.cachedFraction, context: i.context
            ))
            switch metric {
            case .tokensPerSecondPerNode: return estimate.tokensPerSecondPerNode
            case .tokensPerSecondPerUser: return estimate.tokensPerSecondPerUser
            case .gpuPowerWatts: return estimate.gpuPower.watts
            }
        case .fleetNodeHours(let i):
            guard let fleetNodeHours else { throw StepRequestError(problems: ["\(i.scenario): capacity checks need a scenario reader"]) }
            return try fleetNodeHours(i)
        case .trainingGPUHours(let i):
            let model = try library.model(i.model)
            let node = try library.node(i.hardware)
            let plan = TrainingPlan.singleStage(
                model: model.id, hardware: node.id, gpus: i.gpus, pp: i.pp, ep: i.ep, tokens: i.tokens, sequenceLength: i.seqLen,
                globalBatch: i.globalBatch, communicationSMs: library.serving.communicationSMs[.prefill] ?? 0
            )
            return try library.estimate(plan).gpuHours
        case .trainingPlanGPUHours(let id, let names):
            guard let trainingPlan else { throw StepRequestError(problems: ["\(id): training-plan checks need a plan reader"]) }
            let estimate = try library.estimate(try trainingPlan(id))
            let chosen = names.map { n in estimate.stages.filter { n.contains($0.name) } } ?? estimate.stages
            if let names, chosen.count != names.count {
                throw StepRequestError(problems: ["\(id): expected stages \(names.joined(separator: ", ")), the plan has \(estimate.stages.map(\.name).joined(separator: ", "))"])
            }
            return chosen.reduce(0) { $0 + $1.gpuHours }
        }
    }

    private static func round(_ i: AnalyticalBoundInputs) -> TimeSpan {
        AllToAllModel.analyticalBound(
            tokens: i.tokens, expertsPerToken: i.experts, hidden: i.hidden,
            dispatchBytesPerElement: i.dispatchBytesPerElement, combineBytesPerElement: i.combineBytesPerElement,
            bandwidthBytesPerSecond: i.bandwidthGBps * 1e9
        )
    }
}
