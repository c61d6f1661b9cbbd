import Foundation
import Units

/// A numeric reference MoE layer: real matrix arithmetic at reduced width, with deterministic
/// seeded weights and a router whose biases reproduce a layer's expert popularity. Running a
/// calibration batch through it dense and pruned measures how far pruning moves the layer's
/// output: a fidelity *proxy*. It is not model quality: the weights are random, not trained, and
/// one layer's output error says nothing certain about accuracy on a benchmark.
///
/// Shape (DeepSeek-V3's, scaled down): `experts` routed SwiGLU experts of width `expertWidth`
/// over a model width `width`, plus `sharedExperts` always-on ones; sigmoid affinities
/// `σ(w_e·x/√d + b_e)`, group-limited top-k; gate weights are the chosen affinities normalised
/// to sum 1, times `routedScaling`.
public struct ReferenceMoELayer: Sendable {
    public let width: Int
    public let expertWidth: Int
    public let router: GroupLimitedRouter
    public let routedScaling: Double
    let routerWeights: [[Double]]
    let routerBias: [Double]
    let experts: [Expert]
    let shared: [Expert]

    struct Expert: Sendable {
        var gate: [[Double]]  // expertWidth × width
        var up: [[Double]]  // expertWidth × width
        var down: [[Double]]  // width × expertWidth

        init(width: Int, expertWidth: Int, rng: inout SplitMix64) {
            func matrix(_ rows: Int, _ cols: Int) -> [[Double]] {
                let scale = 1 / Double(cols).squareRoot()
                return (0..<rows).map { _ in (0..<cols).map { _ in rng.normal() * scale } }
            }
            gate = matrix(expertWidth, width)
            up = matrix(expertWidth, width)
            down = matrix(width, expertWidth)
        }

        func callAsFunction(_ x: [Double]) -> [Double] {
            let hidden = zip(gate, up).map { g, u -> Double in
                let a = dot(g, x), b = dot(u, x)
                return a / (1 + exp(-a)) * b  // SiLU(a) · b
            }
            return down.map { dot($0, hidden) }
        }
    }

    public init(
        width: Int = 64, expertWidth: Int = 32, router: GroupLimitedRouter, sharedExperts: Int = 1, routedScaling: Double = 2.5,
        popularity: [Double], seed: UInt64
    ) {
        precondition(popularity.count == router.experts, "one popularity per routed expert")
        var rng = SplitMix64(seed: seed)
        self.width = width
        self.expertWidth = expertWidth
        self.router = router
        self.routedScaling = routedScaling
        routerWeights = (0..<router.experts).map { _ in (0..<width).map { _ in rng.normal() } }
        // Biases put the more popular experts ahead (log-popularity relative to uniform), shifted
        // by −2 so that affinities sit mid-range rather than saturate near 1: chosen experts then
        // get visibly different gate weights, as trained routers give them.
        routerBias = popularity.map { log(max($0, 1e-12) * Double(popularity.count)) - 2 }
        experts = (0..<router.experts).map { _ in Expert(width: width, expertWidth: expertWidth, rng: &rng) }
        shared = (0..<sharedExperts).map { _ in Expert(width: width, expertWidth: expertWidth, rng: &rng) }
    }

    /// A calibration batch of `tokens` inputs with unit-variance entries.
    public func calibrationBatch(tokens: Int, seed: UInt64) -> [[Double]] {
        var rng = SplitMix64(seed: seed)
        return (0..<tokens).map { _ in (0..<width).map { _ in rng.normal() } }
    }

    public func affinity(_ x: [Double]) -> [Double] {
        let scale = 1 / Double(width).squareRoot()
        return zip(routerWeights, routerBias).map { w, b in 1 / (1 + exp(-(dot(w, x) * scale + b))) }
    }

    /// One token's routing under `config`: the experts it uses and their gate weights.
    public func gates(_ x: [Double], available: [Bool]?, config: PruningConfig) -> [(expert: Int, weight: Double)] {
        let s = affinity(x)
        var r = router
        if let k = config.expertsPerToken { r.topK = k }
        let chosen = r.route(s, available: available)
        let total = chosen.reduce(0) { $0 + s[$1] }
        var gates = chosen.map { (expert: $0, weight: routedScaling * s[$0] / total) }
        if let beta = config.skipBelowFractionOfTop, let top = gates.map(\.weight).max() {
            gates = gates.filter { $0.weight >= beta * top }
        }
        return gates
    }

    /// The layer's output for one token.
    public func forward(_ x: [Double], available: [Bool]?, config: PruningConfig) -> [Double] {
        var y = [Double](repeating: 0, count: width)
        for e in shared { add(&y, e(x), 1) }
        for (expert, weight) in gates(x, available: available, config: config) { add(&y, experts[expert](x), weight) }
        return y
    }

    /// Experts that survive `config`'s static pruning, ranked on `batch` (nil: all survive).
    public func survivors(_ config: PruningConfig, batch: [[Double]]) -> [Bool]? {
        guard config.prunedFraction > 0 else { return nil }
        var score = [Double](repeating: 0, count: router.experts)
        var routed = [Double](repeating: 0, count: router.experts)
        for x in batch {
            for (e, w) in gates(x, available: nil, config: .dense) {
                routed[e] += 1
                if config.ranking == .routerWeighted {
                    let out = experts[e](x)
                    score[e] += w * dot(out, out).squareRoot()
                }
            }
        }
        if config.ranking == .frequency { return PruningConfig.survivors(score: routed, fraction: config.prunedFraction) }
        // REAP: the mean over the tokens routed to each expert; never-routed experts score 0.
        return PruningConfig.survivors(score: zip(score, routed).map { $1 > 0 ? $0 / $1 : 0 }, fraction: config.prunedFraction)
    }

    /// How far `config` moves the layer's output from the dense layer's on `batch`, with static
    /// pruning ranked on `rankingBatch` (default: the same batch; a held-out batch keeps experts
    /// the batch never routes to from looking free to remove).
    public func fidelity(of config: PruningConfig, batch: [[Double]], rankingBatch: [[Double]]? = nil) -> Fidelity {
        let available = survivors(config, batch: rankingBatch ?? batch)
        var errorSquared = 0.0, denseSquared = 0.0, cosine = 0.0, removed = 0.0, experts = 0.0
        for x in batch {
            let dense = forward(x, available: nil, config: .dense)
            let pruned = forward(x, available: available, config: config)
            let difference = zip(dense, pruned).map { $0 - $1 }
            errorSquared += dot(difference, difference)
            denseSquared += dot(dense, dense)
            let norms = (dot(dense, dense) * dot(pruned, pruned)).squareRoot()
            cosine += norms > 0 ? dot(dense, pruned) / norms : 1
            // Router mass the dense routing gave to experts the pruned routing does not use.
            let denseGates = gates(x, available: nil, config: .dense)
            let used = Set(gates(x, available: available, config: config).map(\.expert))
            removed += denseGates.filter { !used.contains($0.expert) }.reduce(0) { $0 + $1.weight } / routedScaling
            experts += Double(used.count)
        }
        let n = Double(batch.count)
        return Fidelity(
            relativeError: denseSquared > 0 ? (errorSquared / denseSquared).squareRoot() : 0, cosineSimilarity: cosine / n,
            routerMassRemoved: removed / n, expertsPerToken: experts / n
        )
    }
}

/// The fidelity proxy of one configuration against the dense one.
public struct Fidelity: Hashable, Sendable, Codable {
    /// ‖Y_dense − Y_pruned‖ / ‖Y_dense‖ over the calibration batch (0 when identical).
    public var relativeError: Double
    /// The mean per-token cosine similarity of the outputs (1 when identical).
    public var cosineSimilarity: Double
    /// The mean share of the dense routing's gate weight that went to experts the configuration no longer uses.
    public var routerMassRemoved: Double
    /// Routed experts a token actually uses (after top-k reduction and skipping).
    public var expertsPerToken: Double

    public init(relativeError: Double, cosineSimilarity: Double, routerMassRemoved: Double, expertsPerToken: Double) {
        self.relativeError = relativeError
        self.cosineSimilarity = cosineSimilarity
        self.routerMassRemoved = routerMassRemoved
        self.expertsPerToken = expertsPerToken
    }
}

@inline(__always) func dot(_ a: [Double], _ b: [Double]) -> Double {
    var s = 0.0
    for i in a.indices { s += a[i] * b[i] }
    return s
}

@inline(__always) func add(_ y: inout [Double], _ v: [Double], _ w: Double) {
    for i in y.indices { y[i] += w * v[i] }
}
