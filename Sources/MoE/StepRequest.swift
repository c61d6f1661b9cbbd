import Hardware

/// A request for one step estimate, in the terms of `joule estimate step`; the one place that turns
/// those terms into a cost model, so that the command line and the calibration run the same code.
public struct StepRequest: Hashable, Sendable {
    public var model: String
    public var hardware: String
    public var site: String
    public var phase: ServingPhase
    public var ep: Int
    public var tp: Int
    /// Decode: sequences per GPU (per TP group with tensor parallelism).
    public var batchPerGPU: Double?
    /// Prefill: tokens computed per GPU.
    public var tokensPerGPU: Double?
    /// Prefill: share of all input tokens served from the prefix cache.
    public var cachedFraction: Double
    /// Mean context length.
    public var context: Double
    /// Override of the redundant experts.
    public var redundantExperts: Int?
    /// Override of the EP load imbalance (otherwise computed from the routing model).
    public var expertLoadImbalance: Double?
    /// Attention data-parallel degree (default: GPUs ÷ tp).
    public var dp: Int?
    /// Micro-batches (default: the serving defaults' for all-to-all layouts, else 1).
    public var microBatches: Int?

    public init(
        model: String, hardware: String, site: String = "default", phase: ServingPhase, ep: Int, tp: Int = 1,
        batchPerGPU: Double? = nil, tokensPerGPU: Double? = nil, cachedFraction: Double = 0, context: Double,
        redundantExperts: Int? = nil, expertLoadImbalance: Double? = nil, dp: Int? = nil, microBatches: Int? = nil
    ) {
        self.model = model
        self.hardware = hardware
        self.site = site
        self.phase = phase
        self.ep = ep
        self.tp = tp
        self.batchPerGPU = batchPerGPU
        self.tokensPerGPU = tokensPerGPU
        self.cachedFraction = cachedFraction
        self.context = context
        self.redundantExperts = redundantExperts
        self.expertLoadImbalance = expertLoadImbalance
        self.dp = dp
        self.microBatches = microBatches
    }

    /// The most GPUs (and the largest parallel degree) a step request may name: far past any
    /// deployment, and small enough that products of degrees stay exact.
    public static let mostGPUs = 100_000
}

/// A step request that cannot be estimated, with every problem listed.
public struct StepRequestError: Error, Hashable, CustomStringConvertible {
    /// Each problem, starting with the flag it concerns.
    public var problems: [String]

    /// Creates the error.
    public init(problems: [String]) { self.problems = problems }
    public var description: String { problems.joined(separator: "\n") }
}

extension SpecLibrary {
    /// Resolves `request` into a cost model and a workload, validating everything at once.
    public func resolve(_ request: StepRequest) throws -> (StepCostModel, StepWorkload) {
        let model = try model(request.model)
        let node = try node(request.hardware)
        let site = try site(request.site)
        var problems: [String] = []
        // Degrees are bounded before any arithmetic on them (Int.max experts once overflowed).
        for (flag, value, least) in [("ep", request.ep, 1), ("tp", request.tp, 1), ("dp", request.dp, 1), ("micro-batches", request.microBatches, 1),
                                     ("redundant-experts", request.redundantExperts, 0)] {
            if let value, !(least...StepRequest.mostGPUs).contains(value) {
                problems.append("--\(flag): expected a whole number from \(least) to \(StepRequest.mostGPUs), got \(value)")
            }
        }
        if let imbalance = request.expertLoadImbalance, !imbalance.isFinite { problems.append("--expert-load-imbalance: expected 1 to 10, got \(imbalance)") }
        if !(0..<1).contains(request.cachedFraction) {
            problems.append("--cached-fraction: expected a share from 0 up to (not including) 1, got \(request.cachedFraction)")
        }
        guard problems.isEmpty else { throw StepRequestError(problems: problems) }
        let workload: StepWorkload
        switch request.phase {
        case .decode:
            if request.batchPerGPU == nil { problems.append("--batch-per-gpu: required for --phase decode") }
            if request.tokensPerGPU != nil { problems.append("--tokens-per-gpu: applies to --phase prefill only; use --batch-per-gpu") }
            workload = .decode(sequences: request.batchPerGPU ?? 0, context: request.context)
        case .prefill:
            if request.tokensPerGPU == nil { problems.append("--tokens-per-gpu: required for --phase prefill") }
            if request.batchPerGPU != nil { problems.append("--batch-per-gpu: applies to --phase decode only; use --tokens-per-gpu") }
            workload = .prefill(computedTokens: request.tokensPerGPU ?? 0, cachedFraction: min(max(request.cachedFraction, 0), 0.999_999), context: request.context)
        }
        if problems.isEmpty { problems += workload.validate() }
        let deployment = serving.deployment(
            for: model, phase: request.phase, ep: request.ep, tp: request.tp, dp: request.dp, microBatches: request.microBatches,
            redundantExperts: request.redundantExperts, expertLoadImbalance: request.expertLoadImbalance, gpusPerNode: node.gpusPerNode
        )
        problems += deployment.validate(for: model, on: node).map { "--\($0.field): \($0.message)" }
        guard problems.isEmpty else { throw StepRequestError(problems: problems) }
        return (StepCostModel(model: model, node: node, site: site, deployment: deployment), workload)
    }

    /// Estimates `request`.
    public func estimate(_ request: StepRequest) throws -> StepEstimate {
        let (costModel, workload) = try resolve(request)
        return costModel.estimate(workload)
    }
}
