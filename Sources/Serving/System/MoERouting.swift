import Accounting
import Hardware
import MoE
import Routing

/// How a scenario models expert routing: a popularity model routed through the model's
/// group-limited top-k, sampled on a few layers. With it, each EP pool's load imbalance is
/// computed (EPLB placement of the measured loads) instead of taken from the serving defaults.
public struct ExpertRoutingSpec: Hashable, Sendable {
    /// Zipf exponent of expert popularity (0: uniform). The shipped value is an assumption.
    public var skew: Double
    /// MoE layers sampled (each with its own popularity order).
    public var sampledLayers: Int
    /// Tokens routed per sampled layer to measure loads.
    public var tokens: Int
    /// Tokens in the fidelity proxy's calibration batch.
    public var calibrationTokens: Int
    public var seed: UInt64

    public init(skew: Double, sampledLayers: Int = 2, tokens: Int = 4096, calibrationTokens: Int = 256, seed: UInt64 = 1) {
        self.skew = skew
        self.sampledLayers = sampledLayers
        self.tokens = tokens
        self.calibrationTokens = calibrationTokens
        self.seed = seed
    }
}

/// A scenario's pruning: what is removed, and what the freed memory buys.
public struct PruningSpec: Hashable, Sendable {
    public enum FreedMemory: String, Hashable, Sendable, CaseIterable {
        /// Fewer GPUs per unit: the surviving experts repacked at the dense layout's experts per GPU.
        case fewerGPUs = "fewer-gpus"
        /// The same GPUs: fewer experts on some of them, the memory going to KV cache (bigger batches).
        case moreKVCache = "more-kv-cache"
    }

    public var config: PruningConfig
    public var freedMemory: FreedMemory

    public init(config: PruningConfig, freedMemory: FreedMemory) {
        self.config = config
        self.freedMemory = freedMemory
    }
}

/// What routing and pruning did to a scenario, for reports.
public struct MoERoutingReport: Hashable, Sendable, Codable {
    public struct Pool: Hashable, Sendable, Codable {
        public var role: String
        public var expertParallel: Int
        public var redundantExperts: Int
        public var gpusPerUnit: Int
        public var expertLoadImbalance: Double
    }

    public var skew: Double
    public var sampledLayers: Int
    public var routedExperts: Int
    public var denseRoutedExperts: Int
    public var expertsPerToken: Int
    public var activeExpertsPerToken: Double
    public var pruning: PruningConfig
    public var freedMemory: String?
    public var pools: [Pool]
    /// The fidelity proxy, averaged over the sampled layers (zero error for the dense configuration).
    public var fidelity: Fidelity
}

public enum MoERoutingError: Error, Hashable, CustomStringConvertible {
    case notMoE(model: String)
    case invalid(field: String, message: String)

    public var description: String {
        switch self {
        case .notMoE(let m): return "routing and pruning need an MoE model; \(m) is dense"
        case .invalid(let field, let message): return "\(field): \(message)"
        }
    }
}

public enum MoERouting {
    /// Applies `routing` (and `pruning`, when given) to a model and its pools: the pruned model
    /// shape, each EP pool's deployment and computed load imbalance, and the fidelity proxy.
    public static func resolve(
        model: ModelArchitecture, topology: ServingTopology, node: NodeSpec, routing: ExpertRoutingSpec, pruning: PruningSpec?
    ) throws -> (model: ModelArchitecture, topology: ServingTopology, report: MoERoutingReport) {
        guard var moe = model.moe else { throw MoERoutingError.notMoE(model: model.id) }
        let config = pruning?.config ?? .dense
        guard (0..<1).contains(config.prunedFraction) else {
            throw MoERoutingError.invalid(field: "pruning.prunedFraction", message: "expected 0 ≤ fraction < 1, got \(config.prunedFraction)")
        }
        if let k = config.expertsPerToken, !(1...moe.expertsPerToken).contains(k) {
            throw MoERoutingError.invalid(field: "pruning.expertsPerToken", message: "expected 1 to \(moe.expertsPerToken), got \(k)")
        }
        if let b = config.skipBelowFractionOfTop, !(0..<1).contains(b) {
            throw MoERoutingError.invalid(field: "pruning.skipBelowFractionOfTop", message: "expected 0 ≤ β < 1, got \(b)")
        }
        let experts = moe.routedExperts
        let popularity = ExpertPopularity.zipf(experts: experts, layers: routing.sampledLayers, skew: routing.skew, seed: routing.seed)
        let router = GroupLimitedRouter(experts: experts, groups: moe.groups, topGroups: moe.topKGroups, topK: moe.expertsPerToken)

        // The fidelity proxy and the surviving experts, layer by layer.
        var survivors: [[Bool]] = []
        var fidelities: [Fidelity] = []
        for (l, p) in popularity.layers.enumerated() {
            let layer = ReferenceMoELayer(
                width: 32, expertWidth: 16, router: router, sharedExperts: min(moe.sharedExperts, 1), popularity: p, seed: routing.seed &+ UInt64(l) &* 7919
            )
            // Experts are ranked on a calibration batch and the proxy measured on a held-out one.
            let calibration = layer.calibrationBatch(tokens: routing.calibrationTokens, seed: routing.seed &+ 104_729 &+ UInt64(l))
            let evaluation = layer.calibrationBatch(tokens: routing.calibrationTokens, seed: routing.seed &+ 1_299_709 &+ UInt64(l))
            survivors.append(layer.survivors(config, batch: calibration) ?? Array(repeating: true, count: experts))
            fidelities.append(layer.fidelity(of: config, batch: evaluation, rankingBatch: calibration))
        }
        let kept = survivors[0].filter { $0 }.count
        let fidelity = Fidelity(
            relativeError: fidelities.map(\.relativeError).reduce(0, +) / Double(fidelities.count),
            cosineSimilarity: fidelities.map(\.cosineSimilarity).reduce(0, +) / Double(fidelities.count),
            routerMassRemoved: fidelities.map(\.routerMassRemoved).reduce(0, +) / Double(fidelities.count),
            expertsPerToken: fidelities.map(\.expertsPerToken).reduce(0, +) / Double(fidelities.count)
        )

        // The pruned shape.
        moe.routedExperts = kept
        moe.expertsPerToken = config.expertsPerToken ?? moe.expertsPerToken
        moe.activeExpertsPerToken = config.skipBelowFractionOfTop != nil ? fidelity.expertsPerToken : nil
        if kept % moe.groups != 0 {
            moe.groups = 1
            moe.topKGroups = 1
        }
        var pruned = model
        pruned.moe = moe


        func adjust(_ pool: PoolSpec) throws -> (PoolSpec, MoERoutingReport.Pool) {
            var p = pool
            var d = p.deployment
            if d.expertParallel > 1 {
                if pruning != nil && kept < experts {
                    let slotsPerGPU = (experts + d.redundantExperts) / d.expertParallel
                    switch pruning!.freedMemory {
                    case .fewerGPUs:
                        // The smallest whole number of nodes that holds the survivors and the redundant experts.
                        var ep = node.gpusPerNode
                        while ep * slotsPerGPU < kept + d.redundantExperts { ep += node.gpusPerNode }
                        d.expertParallel = min(ep, d.expertParallel)
                        d.dataParallel = max(1, d.expertParallel / d.tensorParallel)
                        d.redundantExperts = d.expertParallel * slotsPerGPU - kept
                    case .moreKVCache:
                        d.unevenExperts = (kept + d.redundantExperts) % d.expertParallel != 0
                    }
                }
                // EPLB over the survivors' expected loads (popularity, with removed experts' share
                // spread over the survivors in proportion); zero-load placeholders fill slots that do
                // not divide evenly. Each step's own sampling spread is added by the cost model.
                let slots = kept + d.redundantExperts
                let padded = (slots + d.expertParallel - 1) / d.expertParallel * d.expertParallel
                let nodes = max(1, d.expertParallel / node.gpusPerNode)
                var sum = 0.0
                for (p, keep) in zip(popularity.layers, survivors) {
                    let surviving = p.indices.filter { keep[$0] }.map { p[$0] }
                    let loads = surviving + Array(repeating: 0, count: padded - slots)
                    let placement = try EPLB.rebalance(load: loads, replicas: padded, groups: moe.groups, nodes: nodes, gpus: d.expertParallel)
                    sum += placement.imbalance(loads)
                }
                d.placementImbalance = max(1, min(10, sum / Double(survivors.count)))
            }
            p.deployment = d
            return (p, .init(
                role: pool.role.rawValue, expertParallel: d.expertParallel, redundantExperts: d.redundantExperts, gpusPerUnit: d.gpus,
                expertLoadImbalance: d.placementImbalance
            ))
        }
        let topology2: ServingTopology
        var pools: [MoERoutingReport.Pool] = []
        switch topology {
        case .disaggregated(let prefill, let decode):
            let (p, pr) = try adjust(prefill), (dd, dr) = try adjust(decode)
            topology2 = .disaggregated(prefill: p, decode: dd)
            pools = [pr, dr]
        case .colocated(let unit):
            let (u, ur) = try adjust(unit)
            topology2 = .colocated(u)
            pools = [ur]
        }
        return (pruned, topology2, MoERoutingReport(
            skew: routing.skew, sampledLayers: routing.sampledLayers, routedExperts: kept, denseRoutedExperts: experts,
            expertsPerToken: moe.expertsPerToken, activeExpertsPerToken: moe.effectiveExpertsPerToken, pruning: config,
            freedMemory: pruning?.freedMemory.rawValue, pools: pools, fidelity: fidelity
        ))
    }
}
