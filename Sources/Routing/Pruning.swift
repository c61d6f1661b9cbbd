/// How a pruned MoE configuration differs from the dense (unpruned) one. Each strategy changes
/// what it really changes (REFERENCE.md §5):
///
/// - `frequency`: drop the least-routed fraction of routed experts per layer. Weight memory falls;
///   tokens that would have gone to a dropped expert go to the next-best survivor, so per-token
///   FLOPs stay and load concentrates on the survivors.
/// - `routerWeighted` (REAP-style): the same, ranking experts by mean gate weight × expert output
///   norm over the tokens routed to them, measured on a calibration batch.
/// - `topK`: fewer experts per token; routed FLOPs and dispatch/combine bytes scale with k.
/// - `dynamicSkip`: a chosen expert whose gate weight is below β × the token's top weight is
///   skipped; FLOPs and all-to-all bytes fall by the skipped share, memory does not.
public struct PruningConfig: Hashable, Sendable, Codable {
    public enum Ranking: String, Hashable, Sendable, Codable, CaseIterable {
        case frequency
        case routerWeighted = "router-weighted"
    }

    /// The fraction of routed experts removed per layer (0 keeps all).
    public var prunedFraction: Double
    public var ranking: Ranking
    /// Experts per token, if reduced.
    public var expertsPerToken: Int?
    /// β for dynamic skipping (nil: off).
    public var skipBelowFractionOfTop: Double?

    public init(prunedFraction: Double = 0, ranking: Ranking = .frequency, expertsPerToken: Int? = nil, skipBelowFractionOfTop: Double? = nil) {
        self.prunedFraction = prunedFraction
        self.ranking = ranking
        self.expertsPerToken = expertsPerToken
        self.skipBelowFractionOfTop = skipBelowFractionOfTop
    }

    /// The unpruned configuration.
    public static let dense = PruningConfig()

    public var isDense: Bool { prunedFraction == 0 && expertsPerToken == nil && skipBelowFractionOfTop == nil }

    /// Which experts survive, given a score per expert (higher is kept): the lowest
    /// `round(fraction × experts)` are dropped, the lower index first among equals.
    public static func survivors(score: [Double], fraction: Double) -> [Bool] {
        let drop = Int((fraction * Double(score.count)).rounded())
        let order = score.indices.sorted { score[$0] != score[$1] ? score[$0] < score[$1] : $0 < $1 }
        var keep = [Bool](repeating: true, count: score.count)
        for e in order.prefix(drop) { keep[e] = false }
        return keep
    }
}
