import Accounting
import Foundation
import Hardware
import MoE
import Units

/// Latency targets a sized fleet must meet.
public struct FleetSLO: Hashable, Sendable {
    /// Time per output token of a decode step (1 ÷ per-user speed).
    public var timePerOutputToken: TimeSpan
    /// The longest a prefill step may take (a bound on time to first token before queueing).
    public var prefillStep: TimeSpan

    public init(timePerOutputToken: TimeSpan, prefillStep: TimeSpan) {
        self.timePerOutputToken = timePerOutputToken
        self.prefillStep = prefillStep
    }
}

/// How many units each pool needs, stretch by stretch of a workload's daily profile, to carry the
/// offered load at the SLO: capacity mode, where node counts follow from the step model instead of
/// being taken as given.
public struct FleetSizing: Hashable, Sendable, Codable {
    /// One unit's operating point and capacity.
    public struct Pool: Hashable, Sendable, Codable {
        public var role: String
        public var nodesPerUnit: Int
        /// Decode: sequences per rank; prefill: tokens computed per rank in a step.
        public var operatingPoint: Double
        public var stepSeconds: Double
        /// Tokens per second one unit carries (prefill: input incl. cache hits; decode: output).
        public var tokensPerSecondPerUnit: Double
        public var tokensPerSecondPerNode: Double
        public var gpuPowerWatts: Double
    }

    /// One stretch of constant demand.
    public struct Segment: Hashable, Sendable, Codable {
        public var startEpochSeconds: Double
        public var seconds: Double
        public var inputTokensPerSecond: Double
        public var outputTokensPerSecond: Double
        public var prefillUnits: Int
        public var decodeUnits: Int
        public var nodes: Int
    }

    public var prefill: Pool
    public var decode: Pool
    public var segments: [Segment]
    /// Mean context (KV length) of a sequence in decode, weighted by the steps it spends there.
    public var decodeContextTokens: Double
    public var nodeHours: Double
    public var meanNodes: Double
    public var peakNodes: Int
}

public enum FleetSizingError: Error, Hashable, CustomStringConvertible {
    case unsupported(String)
    case infeasible(String)

    public var description: String {
        switch self {
        case .unsupported(let m), .infeasible(let m): return m
        }
    }
}

/// Sizes a disaggregated deployment to a generated workload (pure).
public struct FleetSizer: Sendable {
    public var model: ModelArchitecture
    public var node: NodeSpec
    public var site: SiteSpec
    public var topology: ServingTopology

    public init(model: ModelArchitecture, node: NodeSpec, site: SiteSpec, topology: ServingTopology) {
        self.model = model
        self.node = node
        self.site = site
        self.topology = topology
    }

    /// The mean and second moment of `lengths`, from a fixed-seed sample (clamping included).
    static func moments(_ lengths: LengthDistribution, samples: Int = 20_000) -> (mean: Double, second: Double) {
        var rng = SplitMix64(seed: 0x51ED)
        var m1 = 0.0, m2 = 0.0
        for _ in 0..<samples {
            let x = Double(lengths.sample(&rng))
            m1 += x
            m2 += x * x
        }
        return (m1 / Double(samples), m2 / Double(samples))
    }

    /// One prefill unit at the largest token budget per rank (halving from the pool's) whose step meets the SLO.
    func prefillPool(_ pool: PoolSpec, prompt: Double, cachedFraction: Double, slo: FleetSLO) throws -> FleetSizing.Pool {
        let cost = StepCostModel(model: model, node: node, site: site, deployment: pool.deployment)
        var budget = Double(pool.tokenBudgetPerRank)
        while true {
            let e = cost.estimate(.prefill(computedTokens: budget, cachedFraction: cachedFraction, context: prompt))
            if e.stepTime <= slo.prefillStep || budget <= 64 {
                guard e.stepTime <= slo.prefillStep else {
                    throw FleetSizingError.infeasible("prefill: even \(Int(budget)) tokens per rank take \(e.stepTime.seconds) s per step, over the \(slo.prefillStep.seconds) s target")
                }
                let nodes = pool.deployment.nodes(on: node)
                return .init(
                    role: "prefill", nodesPerUnit: nodes, operatingPoint: budget, stepSeconds: e.stepTime.seconds,
                    tokensPerSecondPerUnit: e.tokensPerSecondPerNode * Double(nodes), tokensPerSecondPerNode: e.tokensPerSecondPerNode,
                    gpuPowerWatts: e.gpuPower.watts
                )
            }
            budget = (budget / 2).rounded(.down)
        }
    }

    /// One decode unit at the largest whole batch per rank that meets the TPOT target and fits the KV cache.
    func decodePool(_ pool: PoolSpec, context: Double, slo: FleetSLO) throws -> FleetSizing.Pool {
        let cost = StepCostModel(model: model, node: node, site: site, deployment: pool.deployment)
        let kvSequences = (Double(cost.kvTokensPerRank(memoryReserveFraction: pool.memoryReserveFraction)) / context).rounded(.down)
        let cap = min(pool.maxBatchPerRank, Int(kvSequences))
        guard cap >= 1 else {
            throw FleetSizingError.infeasible("decode: not one sequence of \(Int(context)) tokens fits a rank's KV cache")
        }
        // Step time grows with the batch: the largest batch within the target, by bisection.
        func step(_ b: Int) -> StepEstimate { cost.estimate(.decode(sequences: Double(b), context: context)) }
        guard step(1).stepTime <= slo.timePerOutputToken else {
            throw FleetSizingError.infeasible("decode: one sequence per rank already takes \(step(1).stepTime.seconds * 1e3) ms per token, over the \(slo.timePerOutputToken.seconds * 1e3) ms target")
        }
        var lo = 1, hi = cap
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if step(mid).stepTime <= slo.timePerOutputToken { lo = mid } else { hi = mid - 1 }
        }
        let e = step(lo)
        let nodes = pool.deployment.nodes(on: node)
        let ranks = Double(pool.deployment.attentionRanks)
        let perUnit = Double(lo) * ranks / e.stepTime.seconds
        return .init(
            role: "decode", nodesPerUnit: nodes, operatingPoint: Double(lo), stepSeconds: e.stepTime.seconds,
            tokensPerSecondPerUnit: perUnit, tokensPerSecondPerNode: perUnit / Double(nodes), gpuPowerWatts: e.gpuPower.watts
        )
    }

    /// Sizes the pools for `workload` over `[start, start + duration)`.
    public func size(_ workload: GeneratorSpec, startEpochSeconds start: Double, duration: Double, slo: FleetSLO) throws -> FleetSizing {
        guard case .disaggregated(let prefillSpec, let decodeSpec) = topology else {
            throw FleetSizingError.unsupported("--size-fleet sizes disaggregated prefill and decode pools; this scenario is colocated")
        }
        guard duration.isFinite, duration > 0, duration <= 366 * 86_400 else {
            throw FleetSizingError.unsupported("--size-fleet needs a duration from 1 s to 366 days, got \(duration)")
        }
        let p = Self.moments(workload.prompt), o = Self.moments(workload.output)
        // A sequence spends one step per output token in decode: weight its context by its output length.
        let context = p.mean + o.second / (2 * o.mean)
        let prefill = try prefillPool(prefillSpec, prompt: p.mean, cachedFraction: workload.cachedFraction, slo: slo)
        let decode = try decodePool(decodeSpec, context: context, slo: slo)
        let profile = workload.profile.normalised
        var segments: [FleetSizing.Segment] = []
        var nodeSeconds = 0.0
        for s in profile.segments(fromEpochSeconds: start, duration: duration) {
            let rate = workload.ratePerSecond * s.factor
            let input = rate * p.mean, output = rate * o.mean
            let pu = input > 0 ? Int((input / prefill.tokensPerSecondPerUnit).rounded(.up)) : 0
            let du = output > 0 ? Int((output / decode.tokensPerSecondPerUnit).rounded(.up)) : 0
            let nodes = pu * prefill.nodesPerUnit + du * decode.nodesPerUnit
            segments.append(.init(
                startEpochSeconds: s.start, seconds: s.seconds, inputTokensPerSecond: input, outputTokensPerSecond: output,
                prefillUnits: pu, decodeUnits: du, nodes: nodes
            ))
            nodeSeconds += Double(nodes) * s.seconds
        }
        return FleetSizing(
            prefill: prefill, decode: decode, segments: segments, decodeContextTokens: context, nodeHours: nodeSeconds / 3600,
            meanNodes: nodeSeconds / duration, peakNodes: segments.map(\.nodes).max() ?? 0
        )
    }
}
