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
