import Units

/// Expert loads measured by routing sampled tokens, and what they cost an expert-parallel
/// deployment: the busiest GPU sets a step's time.
public struct ExpertLoad: Hashable, Sendable {
    /// For each layer, tokens routed to each expert.
    public var layers: [[Double]]

    public init(layers: [[Double]]) {
        self.layers = layers
    }

    /// Routes `tokens` sampled tokens through every layer.
    public static func measure(
        _ popularity: ExpertPopularity, router: GroupLimitedRouter, tokens: Int, available: [[Bool]]? = nil, seed: UInt64
    ) -> ExpertLoad {
        var rng = SplitMix64(seed: seed)
        return ExpertLoad(layers: popularity.layers.enumerated().map { layer, p in
            var counts = [Double](repeating: 0, count: p.count)
            for _ in 0..<tokens {
                for e in router.route(AffinitySampler.sample(p, rng: &rng), available: available?[layer]) { counts[e] += 1 }
            }
            return counts
        })
    }

    /// The mean over layers of the busiest GPU's load over the mean GPU load, with EPLB placing
    /// `replicas` physical experts (pruned experts carry no load and get no replica beyond the
    /// one the algorithm gives every logical expert).
    public func imbalance(replicas: Int, groups: Int, nodes: Int, gpus: Int) throws -> Double {
        var sum = 0.0
        for load in layers {
            let placement = try EPLB.rebalance(load: load, replicas: replicas, groups: groups, nodes: nodes, gpus: gpus)
            sum += placement.imbalance(load)
        }
        return sum / Double(layers.count)
    }
}
