import ArgumentParser
import Calibration
import Catalog
import Foundation
import MoE
import Units

struct Estimate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Estimate the cost of a serving step or a training run, without a workload.",
        subcommands: [EstimateStep.self, EstimateServing.self, EstimateTraining.self]
    )
}

struct EstimateStep: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "step",
        abstract: "Time, throughput, power and energy of one batch step on one deployment unit.",
        discussion: """
        Decode takes sequences per GPU and their mean KV length; prefill takes the tokens computed \
        per GPU, the share of input tokens served from the prefix cache (on top of those computed), \
        and the mean prompt length. Throughput per node counts decode output tokens, or prefill \
        input tokens including cache hits (as DeepSeek reports them).

        Examples:
          joule estimate step --model deepseek-v3 --hardware h800 --phase decode --ep 144 --batch-per-gpu 88 --context 4989 --json
          joule estimate step --model deepseek-v3 --hardware h800 --phase prefill --ep 32 --tokens-per-gpu 16384 --cached-fraction 0.563 --context 4096 --json
          joule estimate step --model llama-3.1-70b --hardware h100 --phase decode --ep 1 --tp 4 --batch-per-gpu 64 --context 1024
        """
    )

    @OptionGroup var data: DataOptions
    @Option(help: "Model id (see Data/models).") var model: String = "deepseek-v3"
    @Option(help: "Node type id (see Data/hardware/nodes).") var hardware: String = "h800"
    @Option(help: "Site id, for PUE (see Data/hardware/sites).") var site: String = "default"
    @Option(help: "prefill or decode.") var phase: ServingPhase = .decode
    @Option(help: "Expert-parallel degree: GPUs in the unit (attention is data-parallel over them).") var ep: Int = 144
    @Option(help: "Tensor-parallel degree for attention and dense FFNs.") var tp: Int = 1
    @Option(help: "Attention data-parallel degree (default: GPUs ÷ tp).") var dp: Int?
    @Option(name: .customLong("micro-batches"), help: "Micro-batches overlapping computation and all-to-all (default: Data/serving/defaults.yaml with EP, else 1).") var microBatches: Int?
    @Option(name: .customLong("batch-per-gpu"), help: "Decode: sequences per GPU.") var batchPerGPU: Double?
    @Option(name: .customLong("tokens-per-gpu"), help: "Prefill: tokens computed per GPU in the step.") var tokensPerGPU: Double?
    @Option(name: .customLong("cached-fraction"), help: "Prefill: share of all input tokens served from the prefix cache.") var cachedFraction: Double = 0
    @Option(help: "Mean context: decode KV length, or prefill prompt length.") var context: Double = 4096
    @Option(name: .customLong("redundant-experts"), help: "Redundant expert copies (default: Data/serving/defaults.yaml).") var redundantExperts: Int?
    @Option(name: .customLong("expert-load-imbalance"), help: "Override: the busiest EP rank's load ÷ mean at every step (default: computed from the routing model).") var expertLoadImbalance: Double?
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let (library, _) = try failing { try Composition.library(data) }
        var batch = batchPerGPU
        if phase == .decode && batch == nil && tokensPerGPU == nil { batch = 88 }
        var tokens = tokensPerGPU
        if phase == .prefill && tokens == nil && batchPerGPU == nil { tokens = 16384 }
        let request = StepRequest(
            model: model, hardware: hardware, site: site, phase: phase, ep: ep, tp: tp, batchPerGPU: batch,
            tokensPerGPU: tokens, cachedFraction: cachedFraction, context: context,
            redundantExperts: redundantExperts, expertLoadImbalance: expertLoadImbalance, dp: dp, microBatches: microBatches
        )
        let (costModel, workload) = try failing { try library.resolve(request) }
        let estimate = costModel.estimate(workload)
        let output = StepOutput(estimate, model: costModel)
        if json {
            print(try jsonText(output))
        } else {
            print(output.text(request: request))
        }
    }
}

extension ServingPhase: ExpressibleByArgument {}

struct StepOutput: Encodable {
    var phase: String
    var model: String
    var hardware: String
    var stepSeconds: Double
    var tokensPerSecondPerNode: Double
    var tokensPerSecondPerUser: Double
    var gpuPowerWatts: Double
    var nodePowerWatts: Double
    var facilityPowerWatts: Double
    var gpuJoulesPerToken: Double
    var joulesPerToken: Double
    var facilityJoulesPerToken: Double
    var computeUtilisation: Double
    var memoryUtilisation: Double
    var linkUtilisation: Double
    var throttle: Double
    var overheadSeconds: Double
    var moeLayerComputeSeconds: Double
    var moeLayerCommunicationSeconds: Double
    var nodesPerUnit: Int
    var expertsPerGPU: Double
    var redundantExperts: Int
    var expertLoadImbalance: Double
    var expertLoadImbalanceIsOverride: Bool
    var expertsTouchedPerGPU: Double
    var weightBytesPerGPU: Double
    var kvCacheBytesPerGPU: Double
    var fitsInMemory: Bool
    var pue: Double

    init(_ e: StepEstimate, model m: StepCostModel) {
        phase = e.phase.rawValue
        model = m.model.id
        hardware = m.node.id
        stepSeconds = e.stepTime.seconds
        tokensPerSecondPerNode = e.tokensPerSecondPerNode
        tokensPerSecondPerUser = e.tokensPerSecondPerUser
        gpuPowerWatts = e.gpuPower.watts
        nodePowerWatts = e.nodePower.watts
        facilityPowerWatts = e.facilityPower.watts
        gpuJoulesPerToken = e.gpuJoulesPerToken
        joulesPerToken = e.joulesPerToken
        facilityJoulesPerToken = e.facilityJoulesPerToken
        computeUtilisation = e.computeUtilisation
        memoryUtilisation = e.memoryUtilisation
        linkUtilisation = e.linkUtilisation
        throttle = e.throttle
        overheadSeconds = e.overheadTime.seconds
        moeLayerComputeSeconds = e.moeLayerCompute.seconds
        moeLayerCommunicationSeconds = e.moeLayerCommunication.seconds
        nodesPerUnit = m.deployment.nodes(on: m.node)
        expertsPerGPU = m.deployment.expertSlotsPerGPU(for: m.model)
        redundantExperts = m.deployment.redundantExperts
        expertLoadImbalance = e.loadImbalance
        expertLoadImbalanceIsOverride = m.deployment.imbalanceOverride != nil
        expertsTouchedPerGPU = e.expertsTouched
        weightBytesPerGPU = e.weightBytesPerGPU
        kvCacheBytesPerGPU = e.kvCacheBytesPerGPU
        fitsInMemory = e.fitsInMemory
        pue = m.site.pue
    }

    func text(request: StepRequest) -> String {
        let f = CalibrationReport.format
        var lines = [
            "\(model) \(phase) step on \(hardware) (EP\(request.ep)\(request.tp > 1 ? ", TP\(request.tp)" : ""), \(nodesPerUnit) node\(nodesPerUnit == 1 ? "" : "s") per unit)",
            "  step time            \(f(stepSeconds * 1e3)) ms",
            "  throughput per node  \(f(tokensPerSecondPerNode)) tokens/s",
            "  per user             \(f(tokensPerSecondPerUser)) tokens/s",
            "  MoE layer            compute \(f(moeLayerComputeSeconds * 1e6)) µs, communication \(f(moeLayerCommunicationSeconds * 1e6)) µs",
            "  experts              \(f(expertsTouchedPerGPU)) touched per GPU and layer; busiest rank \(f(expertLoadImbalance))× the mean\(expertLoadImbalanceIsOverride ? " (override)" : " (computed from the routing model)")",
            "  utilisation          tensor cores \(f(computeUtilisation * 100)) %, HBM \(f(memoryUtilisation * 100)) %, links \(f(linkUtilisation * 100)) %\(throttle > 1.0001 ? ", TDP-bound (step ×\(f(throttle)))" : "")",
            "  power                GPU \(f(gpuPowerWatts)) W, node \(f(nodePowerWatts)) W, facility \(f(facilityPowerWatts)) W (PUE \(pue))",
            "  energy per token     \(f(gpuJoulesPerToken)) J (GPUs only), \(f(joulesPerToken)) J (node), \(f(facilityJoulesPerToken)) J (facility)",
            "  memory per GPU       weights \(f(weightBytesPerGPU / 1e9)) GB + KV \(f(kvCacheBytesPerGPU / 1e9)) GB",
        ]
        if !fitsInMemory { lines.append("  warning: weights and KV cache exceed the GPU's memory") }
        return lines.joined(separator: "\n")
    }
}

struct EstimateServing: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serving",
        abstract: "Steady-state serving at a batch size, as a benchmark measures it: power, energy and latency per output token.",
        discussion: """
        Continuous batching at --batch concurrent sequences over the whole deployment. Every decode \
        step carries its share of prefill (batch ÷ output tokens new requests per step, each \
        --input-tokens long), as chunked prefill runs it. GPU-only figures are comparable with NVML \
        measurements (ML.ENERGY); node figures add the host's share.

        Layouts: --tp is attention's tensor parallelism, --dp its data parallelism (tp × dp = gpus), \
        --ep 1 shards experts over the TP GPUs, --ep GPUS spreads them (vLLM's expert parallelism \
        under TP attention, or DeepSeek's under DP attention with --tp 1).

        Examples:
          joule estimate serving --model llama-3.1-70b --hardware h100 --gpus 4 --tp 4 --batch 64 --input-tokens 200 --output-tokens 350 --json
          joule estimate serving --model qwen3-30b-a3b --hardware h100 --gpus 2 --tp 2 --ep 2 --batch 256 --input-tokens 200 --output-tokens 900
          joule estimate serving --model llama-3.1-405b --hardware h100 --gpus 8 --tp 8 --batch 128 --input-tokens 200 --output-tokens 360 --weights fp8
        """
    )

    @OptionGroup var data: DataOptions
    @Option(help: "Model id (see Data/models).") var model: String
    @Option(help: "Node type id (see Data/hardware/nodes).") var hardware: String = "h100"
    @Option(help: "Site id, for PUE (see Data/hardware/sites).") var site: String = "default"
    @Option(help: "GPUs of the deployment.") var gpus: Int
    @Option(help: "Attention tensor-parallel degree.") var tp: Int = 1
    @Option(help: "Expert-parallel degree: 1 or every GPU.") var ep: Int = 1
    @Option(help: "Attention data-parallel degree (default: gpus ÷ tp).") var dp: Int?
    @Option(help: "Concurrent sequences over the whole deployment.") var batch: Double
    @Option(name: .customLong("input-tokens"), help: "Mean prompt tokens per request.") var inputTokens: Double
    @Option(name: .customLong("output-tokens"), help: "Mean output tokens per request.") var outputTokens: Double
    @Option(name: .customLong("cached-fraction"), help: "Share of prompt tokens from the prefix cache.") var cachedFraction: Double = 0
    @Option(help: "Weight precision as served: bf16 or fp8 (default: the model file's).") var weights: Precision?
    @Flag(help: "Place experts with EPLB and redundant copies (default: in order, as vLLM does).") var eplb = false
    @Option(name: .customLong("expert-load-imbalance"), help: "Override: the busiest EP rank's load ÷ mean.") var expertLoadImbalance: Double?
    @Flag(help: "Print JSON.") var json = false

    struct Output: Encodable {
        var model: String
        var hardware: String
        var gpus: Int
        var tp: Int
        var ep: Int
        var dp: Int
        var batch: Double
        var gpuPowerWatts: Double
        var gpuJoulesPerOutputToken: Double
        var nodeJoulesPerOutputToken: Double
        var interTokenLatencySeconds: Double
        var outputTokensPerSecond: Double
        var timeToFirstTokenSeconds: Double
        var throttle: Double
        var expertLoadImbalance: Double
        var expertsTouchedPerGPU: Double
    }

    func run() throws {
        let (library, _) = try failing { try Composition.library(data) }
        let request = ServingBenchmark(
            model: model, hardware: hardware, site: site, gpus: gpus, tp: tp, ep: ep, dp: dp, batch: batch, inputTokens: inputTokens,
            outputTokens: outputTokens, cachedFraction: cachedFraction, weights: weights, balancer: eplb, expertLoadImbalance: expertLoadImbalance
        )
        let e = try failing { try library.estimate(request) }
        let out = Output(
            model: model, hardware: hardware, gpus: gpus, tp: tp, ep: ep, dp: dp ?? gpus / max(tp, 1), batch: batch,
            gpuPowerWatts: e.gpuPowerWatts, gpuJoulesPerOutputToken: e.gpuJoulesPerOutputToken, nodeJoulesPerOutputToken: e.nodeJoulesPerOutputToken,
            interTokenLatencySeconds: e.interTokenLatencySeconds, outputTokensPerSecond: e.outputTokensPerSecond,
            timeToFirstTokenSeconds: e.timeToFirstTokenSeconds, throttle: e.step.throttle, expertLoadImbalance: e.step.loadImbalance,
            expertsTouchedPerGPU: e.step.expertsTouched
        )
        if json {
            print(try jsonText(out))
        } else {
            let f = CalibrationReport.format
            print("""
            \(model) on \(gpus) × \(hardware) (TP\(tp), DP\(out.dp)\(ep > 1 ? ", EP\(ep)" : "")), \(f(batch)) concurrent sequences, \(f(inputTokens)) in / \(f(outputTokens)) out
              inter-token latency  \(f(e.interTokenLatencySeconds * 1e3)) ms; first token \(f(e.timeToFirstTokenSeconds * 1e3)) ms
              throughput           \(f(e.outputTokensPerSecond)) output tokens/s
              GPU power            \(f(e.gpuPowerWatts)) W per GPU\(e.step.throttle > 1.0001 ? " (TDP-bound: steps ×\(f(e.step.throttle)))" : "")
              energy per token     \(f(e.gpuJoulesPerOutputToken)) J (GPUs only) · \(f(e.nodeJoulesPerOutputToken)) J (with the host's share)
            """)
        }
    }
}

extension Precision: ExpressibleByArgument {}

struct EstimateTraining: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "training",
        abstract: "GPU-hours, energy, carbon and cost of training a model, stage by stage.",
        discussion: """
        Builds each optimizer step from the pipeline schedule: every block's forward, input-gradient \
        and weight-gradient kernels (the serving model's kernel costs, with FP8 casts, norms, \
        routing, recomputation and the MTP module), all-to-all overlapped with computation \
        (DualPipe, communication SMs taken from computation), blocks cut into pipeline stages, \
        DualPipe's bubble, the ZeRO-1 optimizer step and the gradient exchange. MFU is model FLOPs \
        (balanced routing, causal attention, no recomputation) over the cluster's dense BF16 peak.

        --plan reads a training plan (a file, or a name in Data/training) and prints every stage \
        and the total; without it the flags describe one pre-training stage. Each stage is checked \
        first: whole (for DualPipe, even) micro-batches per pipeline replica and a step that fits \
        in HBM, or an error naming the field.

        Examples:
          joule estimate training --plan deepseek-v3
          joule estimate training --plan deepseek-v3 --grid CN --usd-per-gpu-hour 2 --json
          joule estimate training --model deepseek-v3 --hardware h800 --gpus 2048 --pp 16 --ep 64 --tokens 14.8e12 --seq-len 4096 --global-batch 15360 --json
        """
    )

    @OptionGroup var data: DataOptions
    @Option(help: "Training plan: a file, or a name in Data/training (deepseek-v3). Overrides the single-stage flags.") var plan: String?
    @Option(help: "Model id.") var model: String = "deepseek-v3"
    @Option(help: "Node type id.") var hardware: String = "h800"
    @Option(help: "Site id, for PUE.") var site: String = "default"
    @Option(help: "GPUs in the cluster.") var gpus: Int = 2048
    @Option(help: "Pipeline-parallel stages.") var pp: Int = 16
    @Option(help: "Expert-parallel degree.") var ep: Int = 64
    @Option(help: "Context-parallel degree (GPUs one sequence is split over).") var cp: Int = 1
    @Option(help: "Training tokens.") var tokens: Double = 14.8e12
    @Option(name: .customLong("seq-len"), help: "Sequence length.") var seqLen: Double = 4096
    @Option(name: .customLong("global-batch"), help: "Sequences per optimizer step.") var globalBatch: Double = 15360
    @Option(help: "What the backward pass recomputes: none, selective (DeepSeek-V3's) or full.") var recompute: Recompute = .selective
    @Option(help: "Grid region for carbon (an annual average from Data/grids, e.g. CN).") var grid: String = "CN"
    @Option(name: .customLong("usd-per-gpu-hour"), help: "Rental price per GPU-hour, for the cost column.") var usdPerGPUHour: Double = 2
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Print the stages as a Markdown table (as docs/calibration.md embeds it).") var markdown = false

    struct Stage: Encodable {
        var name: String
        var tokens: Double
        var steps: Double
        var stepSeconds: Double
        var microBatches: Int
        var bubbleFraction: Double
        var gpuHours: Double
        var rolloutGPUHours: Double
        var wallClockDays: Double
        var mfu: Double
        var gpuPowerWatts: Double
        var gpuEnergyKWh: Double
        var nodeEnergyKWh: Double
        var facilityEnergyKWh: Double
        var carbonTonnes: Double
        var costUSD: Double
        var memoryGBPerGPU: Double
        var memory: Memory
        /// Transformer layers (MTP's included) on each pipeline stage.
        var layersPerStage: [Int]
        var contextParallel: Int
        var recompute: String
        /// How much the power limit stretched the step (1 = not TDP-bound).
        var throttle: Double
        var assumptions: [String]
    }

    struct Memory: Encodable {
        var weightsGB: Double
        var gradientsGB: Double
        var optimizerGB: Double
        var activationsGB: Double
        var capacityGB: Double
    }

    struct Output: Encodable {
        var plan: String
        var grid: String
        var gridGramsPerKWh: Double
        var stepSeconds: Double
        var steps: Double
        var gpuHours: Double
        var gpuEnergyKWh: Double
        var nodeEnergyKWh: Double
        var facilityEnergyKWh: Double
        var carbonTonnes: Double
        var costUSD: Double
        var mfu: Double
        var gpuPowerWatts: Double
        var bubbleFraction: Double
        var wallClockDays: Double
        var stages: [Stage]
    }

    func run() throws {
        let (library, directory) = try failing { try Composition.library(data) }
        let trainingPlan: TrainingPlan = try failing {
            if let plan { return try Catalog.loadTrainingPlan(at: try Catalog.trainingPlanPath(plan, dataDirectory: directory)) }
            return .singleStage(
                model: model, hardware: hardware, site: site, gpus: gpus, pp: pp, ep: ep, cp: cp, tokens: tokens, sequenceLength: seqLen,
                globalBatch: globalBatch, communicationSMs: library.serving.communicationSMs[.prefill] ?? 0, recompute: recompute
            )
        }
        guard usdPerGPUHour.isFinite && usdPerGPUHour >= 0 else { throw CLIError(message: "--usd-per-gpu-hour: expected zero or a positive price, got \(usdPerGPUHour)") }
        let grids = try failing { try Catalog.loadGridDefaults(dataDirectory: directory) }
        guard let factor = grids.annual(region: grid) else {
            throw CLIError(message: "--grid: no annual average for '\(grid)' in Data/grids (try `joule carbon defaults`)")
        }
        let e: TrainingRunEstimate
        do {
            e = try library.estimate(trainingPlan)
        } catch let error as TrainingPlanError {
            throw CLIError(message: (plan.map { "\($0): " } ?? "") + error.problems.joined(separator: "\n"))
        }
        let g = factor.gramsPerKWh
        let stages = e.stages.map { s in
            Stage(
                name: s.name, tokens: s.tokens, steps: s.steps, stepSeconds: s.step.stepTime.seconds, microBatches: s.step.microBatches,
                bubbleFraction: s.step.bubbleTime / s.step.stepTime, gpuHours: s.gpuHours, rolloutGPUHours: s.rolloutGPUHours,
                wallClockDays: s.wallTime.hours / 24, mfu: s.mfu, gpuPowerWatts: s.step.gpuPower.watts,
                gpuEnergyKWh: s.gpuEnergy.kilowattHours, nodeEnergyKWh: s.nodeEnergy.kilowattHours, facilityEnergyKWh: s.facilityEnergy.kilowattHours,
                carbonTonnes: s.facilityEnergy.kilowattHours * g / 1e6, costUSD: s.gpuHours * usdPerGPUHour, memoryGBPerGPU: s.step.memoryBytes / 1e9,
                memory: Memory(
                    weightsGB: s.step.weightBytes / 1e9, gradientsGB: s.step.gradientBytes / 1e9, optimizerGB: s.step.optimizerBytes / 1e9,
                    activationsGB: s.step.activationBytes / 1e9, capacityGB: s.step.memoryCapacityBytes / 1e9
                ),
                layersPerStage: s.step.blocksPerStage.map { $0.filter { $0 == "moe" || $0 == "dense" }.count },
                contextParallel: s.layout.contextParallel, recompute: s.layout.recompute.rawValue, throttle: s.step.throttle,
                assumptions: s.assumptions
            )
        }
        let first = e.stages[0]
        let output = Output(
            plan: e.plan, grid: factor.region, gridGramsPerKWh: g, stepSeconds: first.step.stepTime.seconds, steps: first.steps, gpuHours: e.gpuHours,
            gpuEnergyKWh: e.gpuEnergy.kilowattHours, nodeEnergyKWh: e.nodeEnergy.kilowattHours, facilityEnergyKWh: e.facilityEnergy.kilowattHours,
            carbonTonnes: e.facilityEnergy.kilowattHours * g / 1e6, costUSD: e.gpuHours * usdPerGPUHour, mfu: first.mfu,
            gpuPowerWatts: first.step.gpuPower.watts, bubbleFraction: first.step.bubbleTime / first.step.stepTime,
            wallClockDays: e.wallTime.hours / 24, stages: stages
        )
        if json {
            print(try jsonText(output))
            return
        }
        if markdown {
            print(FitReport.trainingMarkdown(e), terminator: "")
            return
        }
        let f = CalibrationReport.format
        let l = trainingPlan.layout
        print("\(trainingPlan.id): \(trainingPlan.model) on \(l.gpus) × \(trainingPlan.hardware) (PP\(l.pipelineParallel) \(l.schedule.rawValue), EP\(l.expertParallel), DP\(l.dataParallel)); carbon at \(factor.region) \(f(g)) g/kWh, $\(f(usdPerGPUHour))/GPU-hour")
        for (s, out) in zip(e.stages, stages) {
            print("""
              \(s.name)
                layout        \(f(s.tokens / 1e9))B tokens in steps of \(Int(s.step.batch)) × \(Int(s.sequenceLength))-token sequences; CP\(s.layout.contextParallel), recompute \(s.layout.recompute.rawValue)
                step          \(f(s.step.stepTime.seconds)) s (\(s.step.microBatches) micro-batches, bubble \(f(out.bubbleFraction * 100)) %\(s.step.throttle > 1.0001 ? ", TDP-bound ×\(f(s.step.throttle))" : "")) × \(f(s.steps)) steps = \(f(out.wallClockDays)) days
                GPU-hours     \(f(s.gpuHours))\(s.rolloutGPUHours > 0 ? " (rollouts \(f(s.rolloutGPUHours)))" : "")
                micro-batch   F \(f(s.step.forward.milliseconds)) ms, B \(f(s.step.inputGradient.milliseconds)) ms, W \(f(s.step.weightGradient.milliseconds)) ms, all-to-all \(f(s.step.communication.milliseconds)) ms on the busiest rank; layers per stage \(out.layersPerStage.map(String.init).joined(separator: " "))
                MFU           \(f(s.mfu * 100)) % of dense BF16 peak; GPU \(f(s.step.gpuPower.watts)) W
                memory        \(f(out.memoryGBPerGPU)) of \(f(out.memory.capacityGB)) GB on the fullest GPU (weights \(f(out.memory.weightsGB)), gradients \(f(out.memory.gradientsGB)), optimizer \(f(out.memory.optimizerGB)), activations \(f(out.memory.activationsGB)))
                energy        GPUs \(f(out.gpuEnergyKWh / 1000)) MWh, nodes \(f(out.nodeEnergyKWh / 1000)) MWh, facility \(f(out.facilityEnergyKWh / 1000)) MWh
                carbon, cost  \(f(out.carbonTonnes)) tCO2e, $\(f(out.costUSD))
            """)
            for a in s.assumptions { print("    assumes: \(a)") }
        }
        print("""
          total
            GPU-hours     \(f(e.gpuHours)) over \(f(output.wallClockDays)) days
            energy        GPUs \(f(output.gpuEnergyKWh / 1000)) MWh, nodes \(f(output.nodeEnergyKWh / 1000)) MWh, facility \(f(output.facilityEnergyKWh / 1000)) MWh
            carbon, cost  \(f(output.carbonTonnes)) tCO2e, $\(f(output.costUSD))
        """)
    }
}

extension Recompute: ExpressibleByArgument {}
