import Hardware
import Units

/// A steady-state serving benchmark in the terms of `joule estimate serving`: continuous
/// batching at `batch` concurrent sequences over the whole deployment, each request `inputTokens`
/// long (a share `cachedFraction` of it from the prefix cache) and generating `outputTokens`.
public struct ServingBenchmark: Hashable, Sendable {
    public var model: String
    public var hardware: String
    public var site: String
    /// GPUs of the deployment.
    public var gpus: Int
    /// Attention (and dense FFN) tensor-parallel degree.
    public var tp: Int
    /// Expert-parallel degree: 1 (experts sharded over the TP GPUs) or every GPU.
    public var ep: Int
    /// Attention data-parallel degree (default: gpus ÷ tp).
    public var dp: Int?
    /// Concurrent sequences over the whole deployment.
    public var batch: Double
    public var inputTokens: Double
    public var outputTokens: Double
    public var cachedFraction: Double
    /// Weight precision as served, when the model is served in more than one.
    public var weights: Precision?
    /// Place experts with EPLB and redundant copies (DeepSeek) instead of in order (vLLM's default).
    public var balancer: Bool
    /// Override of the EP load imbalance.
    public var expertLoadImbalance: Double?

    public init(
        model: String, hardware: String, site: String = "default", gpus: Int, tp: Int, ep: Int = 1, dp: Int? = nil, batch: Double,
        inputTokens: Double, outputTokens: Double, cachedFraction: Double = 0, weights: Precision? = nil, balancer: Bool = false,
        expertLoadImbalance: Double? = nil
    ) {
        self.model = model
        self.hardware = hardware
        self.site = site
        self.gpus = gpus
        self.tp = tp
        self.ep = ep
        self.dp = dp
        self.batch = batch
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.cachedFraction = cachedFraction
        self.weights = weights
        self.balancer = balancer
        self.expertLoadImbalance = expertLoadImbalance
    }
}

/// What a steady-state serving benchmark measures, per output token with the prefill share included.
public struct ServingEstimate: Hashable, Sendable {
    /// Mean draw of one GPU.
    public var gpuPowerWatts: Double
    /// Energy of all the deployment's GPUs (GPU only, as NVML measures it) per output token.
    public var gpuJoulesPerOutputToken: Double
    /// Energy of the deployment's share of its nodes (GPUs and host) per output token.
    public var nodeJoulesPerOutputToken: Double
    /// Time between two tokens of one sequence.
    public var interTokenLatencySeconds: Double
    /// Output tokens per second of the whole deployment.
    public var outputTokensPerSecond: Double
    /// Time from a request's arrival (at steady state, no queue) to its first token.
    public var timeToFirstTokenSeconds: Double
    /// The steady-state step (a decode step carrying its share of prefill).
    public var step: StepEstimate
}

extension SpecLibrary {
    /// Resolves `request` into a cost model and its steady-state step workload.
    public func resolve(_ request: ServingBenchmark) throws -> (StepCostModel, StepWorkload, prompt: StepWorkload.MixedPrefill) {
        var model = try model(request.model)
        let node = try node(request.hardware)
        let site = try site(request.site)
        var problems: [String] = []
        if let w = request.weights { model.weightPrecision = w }
        if !(request.gpus >= 1 && request.gpus <= 1_000_000) { problems.append("--gpus: expected 1 to 1000000, got \(request.gpus)") }
        if !(request.tp >= 1 && request.tp <= 64) { problems.append("--tp: expected 1 to 64, got \(request.tp)") }
        if !(request.ep >= 1 && request.ep <= 1_000_000) { problems.append("--ep: expected 1 to 1000000, got \(request.ep)") }
        let dp = request.dp ?? max(1, request.gpus / max(request.tp, 1))
        if dp * request.tp != request.gpus { problems.append("--dp: expected tp × dp = gpus (\(request.tp) × \(dp) ≠ \(request.gpus))") }
        if !(request.batch.isFinite && request.batch >= 1 && request.batch <= 1e7) { problems.append("--batch: expected 1 to 10000000 concurrent sequences, got \(request.batch)") }
        if !(request.inputTokens.isFinite && request.inputTokens >= 1 && request.inputTokens <= 1e7) { problems.append("--input-tokens: expected 1 to 10000000, got \(request.inputTokens)") }
        if !(request.outputTokens.isFinite && request.outputTokens >= 1 && request.outputTokens <= 1e7) { problems.append("--output-tokens: expected 1 to 10000000, got \(request.outputTokens)") }
        if !(0..<1).contains(request.cachedFraction) { problems.append("--cached-fraction: expected 0 up to (not including) 1, got \(request.cachedFraction)") }
        guard problems.isEmpty else { throw StepRequestError(problems: problems) }
        let deployment = serving.deployment(
            for: model, phase: .decode, ep: request.ep, tp: request.tp, dp: dp, microBatches: 1, redundantExperts: request.balancer ? nil : 0,
            expertLoadImbalance: request.expertLoadImbalance, balancer: request.balancer, gpusPerNode: node.gpusPerNode
        )
        problems += deployment.validate(for: model, on: node).map { "--\($0.field): \($0.message)" }
        guard problems.isEmpty else { throw StepRequestError(problems: problems) }
        let perRank = request.batch / Double(dp)
        let i = request.inputTokens, o = request.outputTokens, c = request.cachedFraction
        // Each step finishes perRank / o sequences; as many new ones are prefilled in the same passes.
        let arrivals = perRank / o
        let mixed = StepWorkload.MixedPrefill(sequences: arrivals, computedTokens: arrivals * i * (1 - c), cachedTokens: arrivals * i * c)
        var workload = StepWorkload.decode(sequences: perRank, context: i + o / 2)
        workload.mixedPrefill = mixed
        let prompt = StepWorkload.MixedPrefill(sequences: 1, computedTokens: i * (1 - c), cachedTokens: i * c)
        return (StepCostModel(model: model, node: node, site: site, deployment: deployment), workload, prompt)
    }

    /// Estimates `request` at steady state.
    public func estimate(_ request: ServingBenchmark) throws -> ServingEstimate {
        let (costModel, workload, prompt) = try resolve(request)
        let step = costModel.estimate(workload)
        let gpus = Double(request.gpus)
        let itl = step.stepTime.seconds
        let throughput = request.batch / itl
        let gpuWatts = step.gpuPower.watts
        let node = costModel.node
        let hostWatts = node.hostPower(gpuPower: step.gpuPower).watts * gpus / Double(node.gpusPerNode)
        // The first token: the whole prompt prefilled in one pass beside the running batch, then one more step.
        var first = workload
        first.mixedPrefill = prompt
        let ttft = costModel.estimate(first).stepTime.seconds
        return ServingEstimate(
            gpuPowerWatts: gpuWatts, gpuJoulesPerOutputToken: gpuWatts * gpus / throughput,
            nodeJoulesPerOutputToken: (gpuWatts * gpus + hostWatts) / throughput, interTokenLatencySeconds: itl,
            outputTokensPerSecond: throughput, timeToFirstTokenSeconds: ttft, step: step
        )
    }
}
