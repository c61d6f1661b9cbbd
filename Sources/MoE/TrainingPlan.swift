import Foundation
import Hardware
import Units

/// Generation before the policy updates of an RL stage, run as serving steps on the training cluster.
public struct Rollout: Hashable, Sendable {
    /// Prompts over the whole stage.
    public var prompts: Double
    /// Completions sampled per prompt (GRPO's group).
    public var samplesPerPrompt: Double
    public var promptTokens: Double
    /// Mean completion length.
    public var outputTokens: Double
    /// Concurrent sequences per GPU while decoding.
    public var decodeBatchPerGPU: Double
    /// Expert-parallel degree of the rollout's serving units.
    public var expertParallel: Int

    public init(prompts: Double, samplesPerPrompt: Double, promptTokens: Double, outputTokens: Double, decodeBatchPerGPU: Double, expertParallel: Int) {
        self.prompts = prompts
        self.samplesPerPrompt = samplesPerPrompt
        self.promptTokens = promptTokens
        self.outputTokens = outputTokens
        self.decodeBatchPerGPU = decodeBatchPerGPU
        self.expertParallel = expertParallel
    }

    /// Sequences generated.
    public var completions: Double { prompts * samplesPerPrompt }
    /// Tokens the policy update trains on (prompt and completion of every sample).
    public var trainingTokens: Double { completions * (promptTokens + outputTokens) }
}

/// One stage of a training plan: an amount of training at one sequence length and batch.
public struct TrainingStage: Hashable, Sendable {
    public var name: String
    public var sequenceLength: Double
    /// Sequences per optimizer step (after any ramp).
    public var batch: Double
    /// The batch at the start of a linear ramp (in tokens) up to `batch`, if any.
    public var rampFrom: Double?
    /// Tokens over which the batch ramps.
    public var rampTokens: Double
    /// Training tokens; nil when `steps` sets the amount (or a rollout does).
    public var tokens: Double?
    /// Optimizer steps at full batch; nil when `tokens` sets the amount.
    public var steps: Double?
    /// Overrides of the plan's layout for this stage.
    public var contextParallel: Int?
    public var recompute: Recompute?
    /// Let Joule choose the context-parallel degree and the recomputation: of the layouts that give
    /// whole micro-batches and fit in HBM, the one with the shortest step.
    public var chooseContextParallel = false
    public var chooseRecompute = false
    /// RL: generation before the updates, whose completions are the training tokens.
    public var rollout: Rollout?
    /// RL: a reference policy's forward pass over the same tokens (GRPO's KL term).
    public var referenceForward: Bool
    /// What the stage assumes where its source gives no figure, with the reason.
    public var assumptions: [String]

    public init(
        name: String, sequenceLength: Double, batch: Double, rampFrom: Double? = nil, rampTokens: Double = 0, tokens: Double? = nil,
        steps: Double? = nil, contextParallel: Int? = nil, recompute: Recompute? = nil, rollout: Rollout? = nil, referenceForward: Bool = false,
        assumptions: [String] = []
    ) {
        self.name = name
        self.sequenceLength = sequenceLength
        self.batch = batch
        self.rampFrom = rampFrom
        self.rampTokens = rampTokens
        self.tokens = tokens
        self.steps = steps
        self.contextParallel = contextParallel
        self.recompute = recompute
        self.rollout = rollout
        self.referenceForward = referenceForward
        self.assumptions = assumptions
    }

    /// Tokens trained on.
    public var trainingTokens: Double {
        if let tokens { return tokens }
        if let steps { return steps * batch * sequenceLength }
        return rollout?.trainingTokens ?? 0
    }

    /// The layout this stage runs on, before any choice Joule makes (`chooseContextParallel`, `chooseRecompute`).
    public func layout(on base: TrainingLayout) -> TrainingLayout {
        var l = base
        if let contextParallel { l.contextParallel = contextParallel }
        if let recompute { l.recompute = recompute }
        return l
    }
}

/// A model's training as data: the cluster and every stage (`Data/training/<id>.yaml`).
public struct TrainingPlan: Hashable, Sendable {
    public var id: String
    public var model: String
    public var hardware: String
    public var site: String
    public var layout: TrainingLayout
    public var stages: [TrainingStage]

    public init(id: String, model: String, hardware: String, site: String = "default", layout: TrainingLayout, stages: [TrainingStage]) {
        self.id = id
        self.model = model
        self.hardware = hardware
        self.site = site
        self.layout = layout
        self.stages = stages
    }
}

/// What one stage costs.
public struct StageEstimate: Hashable, Sendable {
    public var name: String
    /// The layout the stage ran on (with Joule's choices made).
    public var layout: TrainingLayout
    public var sequenceLength: Double
    public var tokens: Double
    public var steps: Double
    /// The stage's full-batch optimizer step.
    public var step: TrainingStep
    public var gpuHours: Double
    /// Of which generation (RL rollouts).
    public var rolloutGPUHours: Double
    public var wallTime: TimeSpan
    /// Model FLOPs over the stage's GPU time at the dense BF16 peak (updates only).
    public var mfu: Double
    public var gpuEnergy: Energy
    public var nodeEnergy: Energy
    public var facilityEnergy: Energy
    public var assumptions: [String]
}

/// What a whole plan costs.
public struct TrainingRunEstimate: Hashable, Sendable {
    public var plan: String
    public var gpus: Int
    public var stages: [StageEstimate]
    public var gpuHours: Double { stages.reduce(0) { $0 + $1.gpuHours } }
    public var wallTime: TimeSpan { stages.reduce(.zero) { $0 + $1.wallTime } }
    public var gpuEnergy: Energy { stages.reduce(Energy(joules: 0)) { $0 + $1.gpuEnergy } }
    public var nodeEnergy: Energy { stages.reduce(Energy(joules: 0)) { $0 + $1.nodeEnergy } }
    public var facilityEnergy: Energy { stages.reduce(Energy(joules: 0)) { $0 + $1.facilityEnergy } }
}

/// A stage that cannot run as given.
public struct TrainingPlanError: Error, CustomStringConvertible, Sendable {
    public var problems: [String]
    public var description: String { problems.joined(separator: "\n") }
}

extension SpecLibrary {
    /// Problems with stage `index` of `plan` on its layout, each naming its field
    /// (`stages[1].batch`): whole micro-batches per pipeline replica (even for DualPipe), a ramp
    /// in whole micro-batches, and a step that fits in HBM.
    public func validate(_ plan: TrainingPlan) throws -> [String] {
        let model = try self.model(plan.model)
        let node = try self.node(plan.hardware)
        var problems = plan.layout.validate(for: model, on: node, prefix: "layout.")
        guard problems.isEmpty else { return problems }
        if plan.stages.isEmpty { problems.append("stages: expected at least one stage") }
        let cost = TrainingCostModel(model: model, node: node, site: try site(plan.site))
        for (i, stage) in plan.stages.enumerated() {
            let p = "stages[\(i)] (\(stage.name))."
            var layout = stage.layout(on: plan.layout)
            if stage.chooseContextParallel || stage.chooseRecompute {
                guard let chosen = choose(stage, base: plan.layout, cost: cost) else {
                    problems.append("\(p)cp: no context-parallel degree and recomputation gives whole micro-batches and fits in HBM (tried \(candidates(stage, base: plan.layout).map { "cp \($0.contextParallel) \($0.recompute.rawValue)" }.joined(separator: ", ")))")
                    continue
                }
                layout = chosen
            }
            problems += layout.validate(for: model, on: node, prefix: p).filter { $0.hasPrefix(p + "cp") }
            guard layout.validate(for: model, on: node).isEmpty else { continue }
            if !(stage.sequenceLength >= 1 && stage.sequenceLength <= 1e7) {
                problems.append("\(p)sequenceLength: expected 1 to 10000000 tokens, got \(stage.sequenceLength)"); continue
            }
            if layout.contextParallel > 1, Int(stage.sequenceLength) % layout.contextParallel != 0 {
                problems.append("\(p)sequenceLength: expected a multiple of contextParallel (\(layout.contextParallel)), got \(stage.sequenceLength)")
            }
            let unit = layout.batchUnit
            let what = layout.schedule == .dualpipe ? "an even number of micro-batches per pipeline replica (a multiple of \(Int(unit)) sequences)" : "whole micro-batches per pipeline replica (a multiple of \(Int(unit)) sequences)"
            for (field, value) in [("batch", stage.batch)] + (stage.rampFrom.map { [("batch.from", $0)] } ?? []) {
                let m = value / unit
                if !(value <= 1e9) {
                    problems.append("\(p)\(field): expected at most 1000000000 sequences per step, got \(value)")
                } else if !(value >= unit && m == m.rounded()) {
                    problems.append("\(p)\(field): expected \(what) with \(layout.sequenceReplicas) sequences per micro-batch slot (GPUs per stage \(layout.dataParallel) ÷ cp \(layout.contextParallel)), got \(value) (\(value / Double(layout.sequenceReplicas)) micro-batches)")
                }
            }
            if let from = stage.rampFrom, from > stage.batch { problems.append("\(p)batch.from: expected at most batch (\(stage.batch)), got \(from)") }
            if (stage.tokens == nil) == (stage.steps == nil) && stage.rollout == nil {
                problems.append("\(p)tokens: expected exactly one of tokens and steps")
            }
            if let t = stage.tokens, !(t > 0 && t <= 1e17) { problems.append("\(p)tokens: expected a positive number up to 1e17, got \(t)") }
            if let s = stage.steps, !(s > 0 && s <= 1e12) { problems.append("\(p)steps: expected a positive number up to 1e12, got \(s)") }
            if stage.rampTokens > stage.trainingTokens { problems.append("\(p)batch.overTokens: expected at most the stage's \(stage.trainingTokens) tokens, got \(stage.rampTokens)") }
            if let r = stage.rollout {
                for (field, v) in [("prompts", r.prompts), ("samplesPerPrompt", r.samplesPerPrompt), ("promptTokens", r.promptTokens), ("outputTokens", r.outputTokens), ("decodeBatchPerGPU", r.decodeBatchPerGPU)] where !(v > 0 && v.isFinite) {
                    problems.append("\(p)rollout.\(field): expected a positive number, got \(v)")
                }
            }
            guard problems.allSatisfy({ !$0.hasPrefix(p) }) else { continue }
            let step = cost.step(layout: layout, sequenceLength: stage.sequenceLength, batch: stage.batch)
            if !step.fitsInMemory {
                let gb = { (x: Double) in String(format: "%.1f", x / 1e9) }
                problems.append(
                    "\(p)sequenceLength: a step of \(Int(stage.sequenceLength))-token sequences needs \(gb(step.memoryBytes)) GB on the fullest GPU "
                        + "(weights \(gb(step.weightBytes)), gradients \(gb(step.gradientBytes)), optimizer \(gb(step.optimizerBytes)), "
                        + "activations \(gb(step.activationBytes)) for \(layout.schedule == .dualpipe ? plan.layout.pipelineParallel + 1 : plan.layout.pipelineParallel) micro-batches in flight) "
                        + "against \(gb(step.memoryCapacityBytes)) GB; "
                        + (step.activationBytes > step.weightBytes + step.gradientBytes + step.optimizerBytes
                            ? "raise cp or set recompute: full"
                            : "use more pipeline stages (pp) or more GPUs per stage, over which ZeRO-1 shards the optimizer state")
                )
            }
        }
        return problems
    }

    /// Estimates every stage of `plan`. Throws the problems `validate` finds.
    public func estimate(_ plan: TrainingPlan) throws -> TrainingRunEstimate {
        let problems = try validate(plan)
        guard problems.isEmpty else { throw TrainingPlanError(problems: problems) }
        let model = try self.model(plan.model)
        let node = try self.node(plan.hardware)
        let site = try self.site(plan.site)
        let cost = TrainingCostModel(model: model, node: node, site: site)
        let gpus = Double(plan.layout.gpus)
        let nodes = gpus / Double(node.gpusPerNode)
        var stages: [StageEstimate] = []
        for stage in plan.stages {
            let layout = (stage.chooseContextParallel || stage.chooseRecompute) ? choose(stage, base: plan.layout, cost: cost)! : stage.layout(on: plan.layout)
            let full = cost.step(layout: layout, sequenceLength: stage.sequenceLength, batch: stage.batch)
            // The ramp: every whole micro-batch count from the first batch to the full one, each for an equal share of the ramp's tokens.
            var segments: [(step: TrainingStep, tokens: Double)] = []
            let tokens = stage.trainingTokens
            if let from = stage.rampFrom, from < stage.batch, stage.rampTokens > 0 {
                let unit = layout.batchUnit
                let levels = stride(from: from, to: stage.batch, by: unit).map { $0 }
                for b in levels {
                    segments.append((cost.step(layout: layout, sequenceLength: stage.sequenceLength, batch: b), stage.rampTokens / Double(levels.count)))
                }
                segments.append((full, tokens - stage.rampTokens))
            } else {
                segments.append((full, tokens))
            }
            var wall = 0.0, steps = 0.0, flops = 0.0, gpuJ = 0.0, nodeJ = 0.0
            for (s, t) in segments where t > 0 {
                let n = t / (s.batch * stage.sequenceLength)
                var seconds = s.stepTime.seconds * n
                if stage.referenceForward {
                    // The reference policy's forward over the same micro-batches: forward chunks only, overlapped with their all-to-all.
                    seconds += max(s.forward.seconds, s.communication.seconds / 2) * Double(s.microBatches) * n
                }
                wall += seconds
                steps += n
                flops += s.modelFLOPs * n
                gpuJ += s.gpuPower.watts * seconds * gpus
                nodeJ += (s.gpuPower.watts * gpus + node.hostPower(gpuPower: s.gpuPower).watts * nodes) * seconds
            }
            let updateSeconds = wall
            var rolloutHours = 0.0
            if let r = stage.rollout {
                let (seconds, gpuWatts, nodeWatts) = try rolloutCost(r, model: model, node: node, site: site, gpus: plan.layout.gpus)
                wall += seconds
                rolloutHours = seconds * gpus / 3600
                gpuJ += gpuWatts * seconds * gpus
                nodeJ += nodeWatts * seconds * nodes
            }
            stages.append(StageEstimate(
                name: stage.name, layout: layout, sequenceLength: stage.sequenceLength, tokens: tokens, steps: steps, step: full, gpuHours: wall * gpus / 3600, rolloutGPUHours: rolloutHours,
                wallTime: TimeSpan(seconds: wall), mfu: updateSeconds > 0 ? flops / (updateSeconds * gpus * node.gpu.peak(.bf16)) : 0,
                gpuEnergy: Energy(joules: gpuJ), nodeEnergy: Energy(joules: nodeJ), facilityEnergy: Energy(joules: nodeJ * site.pue),
                assumptions: stage.assumptions
            ))
        }
        return TrainingRunEstimate(plan: plan.id, gpus: plan.layout.gpus, stages: stages)
    }

    /// The layouts a stage may run on: its own, or every context-parallel degree dividing the GPUs
    /// per stage and the sequence, and every recomputation, where the stage leaves them to Joule.
    func candidates(_ stage: TrainingStage, base: TrainingLayout) -> [TrainingLayout] {
        let own = stage.layout(on: base)
        let cps = stage.chooseContextParallel
            ? (1...max(1, own.dataParallel)).filter { own.dataParallel % $0 == 0 && Int(stage.sequenceLength) % $0 == 0 }
            : [own.contextParallel]
        let recomputes = stage.chooseRecompute ? Recompute.allCases : [own.recompute]
        return cps.flatMap { cp in recomputes.map { r in
            var l = own
            l.contextParallel = cp
            l.recompute = r
            return l
        } }
    }

    /// Of `candidates`, the layout with whole (for DualPipe, even) micro-batches, a step that fits
    /// in HBM and the shortest step; nil when none qualifies.
    func choose(_ stage: TrainingStage, base: TrainingLayout, cost: TrainingCostModel) -> TrainingLayout? {
        var best: (TrainingLayout, TimeSpan)?
        for l in candidates(stage, base: base) {
            let unit = l.batchUnit
            let sizes = [stage.batch] + (stage.rampFrom.map { [$0] } ?? [])
            guard sizes.allSatisfy({ $0 >= unit && ($0 / unit).rounded() == $0 / unit }) else { continue }
            let step = cost.step(layout: l, sequenceLength: stage.sequenceLength, batch: stage.batch)
            guard step.fitsInMemory else { continue }
            if best == nil || step.stepTime < best!.1 { best = (l, step.stepTime) }
        }
        return best?.0
    }

    /// Seconds the whole cluster spends generating `r`'s completions (prefill, then decode at the
    /// rollout's batch), with the GPU and node draw while it does.
    func rolloutCost(_ r: Rollout, model: ModelArchitecture, node: NodeSpec, site: SiteSpec, gpus: Int) throws -> (seconds: Double, gpuWatts: Double, nodeWatts: Double) {
        let decodeDeployment = serving.deployment(for: model, phase: .decode, ep: r.expertParallel, tp: 1, gpusPerNode: node.gpusPerNode)
        let prefillDeployment = serving.deployment(for: model, phase: .prefill, ep: r.expertParallel, tp: 1, gpusPerNode: node.gpusPerNode)
        let decode = StepCostModel(model: model, node: node, site: site, deployment: decodeDeployment)
            .estimate(.decode(sequences: r.decodeBatchPerGPU, context: r.promptTokens + r.outputTokens / 2))
        // Every prompt is prefilled once per sample batch: its completions share the prompt's KV (prefix caching).
        let prefill = StepCostModel(model: model, node: node, site: site, deployment: prefillDeployment)
            .estimate(.prefill(computedTokens: max(r.promptTokens, 1) * r.decodeBatchPerGPU, cachedFraction: 0, context: r.promptTokens))
        let perGPU = { (e: StepEstimate) in e.tokensPerSecondPerNode / Double(node.gpusPerNode) }
        let decodeSeconds = r.completions * r.outputTokens / (perGPU(decode) * Double(gpus))
        let prefillSeconds = r.prompts * r.promptTokens / (perGPU(prefill) * Double(gpus))
        let total = decodeSeconds + prefillSeconds
        let gpuWatts = (decode.gpuPower.watts * decodeSeconds + prefill.gpuPower.watts * prefillSeconds) / total
        let nodeWatts = (decode.nodePower.watts * decodeSeconds + prefill.nodePower.watts * prefillSeconds) / total
        return (total, gpuWatts, nodeWatts)
    }
}

extension TrainingPlan {
    /// A plan of one pre-training stage, as `joule estimate training`'s flags describe it: DualPipe,
    /// DeepSeek-V3's selective recomputation, `communicationSMs` SMs for communication.
    public static func singleStage(
        model: String, hardware: String, site: String = "default", gpus: Int, pp: Int, ep: Int, cp: Int = 1, tokens: Double,
        sequenceLength: Double, globalBatch: Double, communicationSMs: Int = 20, recompute: Recompute = .selective,
        schedule: PipelineSchedule = .dualpipe
    ) -> TrainingPlan {
        TrainingPlan(
            id: "\(model)-pre-training", model: model, hardware: hardware, site: site,
            layout: TrainingLayout(
                gpus: gpus, pipelineParallel: pp, expertParallel: ep, contextParallel: cp, schedule: schedule,
                communicationSMs: communicationSMs, recompute: recompute
            ),
            stages: [TrainingStage(name: "pre-training", sequenceLength: sequenceLength, batch: globalBatch, tokens: tokens)]
        )
    }
}
