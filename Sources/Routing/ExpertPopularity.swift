import Foundation
import Units

/// How often each routed expert is chosen, per layer: a skewed (Zipf) distribution over the
/// experts in a seeded random order per layer. Real routers are trained to balance load
/// (DeepSeek-V3's auxiliary-loss-free bias), yet measured expert loads stay uneven; the skew is
/// a parameter, and the shipped default is an assumption (Data/SOURCES.md).
public struct ExpertPopularity: Hashable, Sendable {
    /// For each layer, each expert's probability of being among a token's choices, normalised to sum 1.
    public var layers: [[Double]]

    public var experts: Int { layers.first?.count ?? 0 }

    public init(layers: [[Double]]) {
        self.layers = layers
    }

    /// `p(rank r) ∝ (r + 1)^−skew`, ranks shuffled per layer with `seed`. Skew 0 is uniform.
    public static func zipf(experts: Int, layers: Int, skew: Double, seed: UInt64) -> ExpertPopularity {
        precondition(experts > 0 && layers > 0 && skew >= 0, "zipf popularity needs experts, layers > 0 and skew ≥ 0")
        var rng = SplitMix64(seed: seed)
        let weights = (0..<experts).map { pow(Double($0 + 1), -skew) }
        let total = weights.reduce(0, +)
        return ExpertPopularity(layers: (0..<layers).map { _ in
            let order = Array(0..<experts).shuffled(using: &rng)
            var p = [Double](repeating: 0, count: experts)
            for (rank, e) in order.enumerated() { p[e] = weights[rank] / total }
            return p
        })
    }
}

/// DeepSeek's group-limited top-k routing: experts fall into `groups` equal groups; a token
/// first keeps the `topGroups` groups whose two best affinities sum highest, then its `topK`
/// best experts within them. Experts marked unavailable (pruned) are never chosen, so their
/// tokens go to the next-best surviving expert.
public struct GroupLimitedRouter: Hashable, Sendable {
    public var experts: Int
    public var groups: Int
    public var topGroups: Int
    public var topK: Int

    public init(experts: Int, groups: Int, topGroups: Int, topK: Int) {
        precondition(groups > 0 && experts % groups == 0 && (1...groups).contains(topGroups) && topK > 0, "bad router shape")
        self.experts = experts
        self.groups = groups
        self.topGroups = topGroups
        self.topK = topK
    }

    /// The chosen experts, best first, for one token's affinities (higher is better; unavailable
    /// experts are skipped). Fewer than `topK` only when the kept groups have fewer available experts.
    public func route(_ affinity: [Double], available: [Bool]? = nil) -> [Int] {
        let size = experts / groups
        func usable(_ e: Int) -> Bool { available?[e] ?? true }
        var groupScore: [(score: Double, group: Int)] = []
        for g in 0..<groups {
            var best = -Double.infinity, second = -Double.infinity
            for e in g * size..<(g + 1) * size where usable(e) {
                if affinity[e] > best { second = best; best = affinity[e] } else if affinity[e] > second { second = affinity[e] }
            }
            // A group with one usable expert scores by it alone; with none it is never kept.
            let score = best == -.infinity ? -Double.infinity : best + (second == -.infinity ? 0 : second)
            groupScore.append((score, g))
        }
        let kept = groupScore.sorted { $0.score != $1.score ? $0.score > $1.score : $0.group < $1.group }
            .prefix(topGroups).filter { $0.score > -.infinity }.map(\.group)
        var candidates: [Int] = []
        for g in kept { candidates += (g * size..<(g + 1) * size).filter(usable) }
        return Array(candidates.sorted { affinity[$0] != affinity[$1] ? affinity[$0] > affinity[$1] : $0 < $1 }.prefix(topK))
    }
}

/// Token affinities drawn so that the router's choices follow a layer's popularity: the
/// Gumbel-top-k construction (log p plus Gumbel noise, ranked) samples experts without
/// replacement in proportion to p; a logistic squashes them into sigmoid scores as DeepSeek-V3's
/// router produces, which set the gate weights.
public enum AffinitySampler {
    public static func sample(_ popularity: [Double], rng: inout SplitMix64) -> [Double] {
        popularity.map { p in
            let gumbel = -log(-log(rng.openUnit()))
            return 1 / (1 + exp(-(log(max(p, 1e-300)) + gumbel + log(Double(popularity.count)) - 2)))
        }
    }
}
