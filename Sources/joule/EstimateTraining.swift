import ArgumentParser
import Calibration
import Catalog
import Foundation
import MoE
import Units

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
        guard usdPerGPUHour.isFinite && usdPerGPUHour >= 0 && usdPerGPUHour <= 1e6 else {
            throw CLIError(message: "--usd-per-gpu-hour: expected a price from 0 to 1000000, got \(usdPerGPUHour)")
        }
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
