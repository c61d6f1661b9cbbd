import Accounting
import MoE

/// A pool of identical deployment units (DeepSeek's "prefill instance" or "decode instance").
public struct PoolSpec: Hashable, Sendable {
    /// What its units do.
    public var role: UnitRole
    /// Units in service at peak (the schedule scales this down).
    public var units: Int
    /// How the model is laid out over one unit's GPUs.
    public var deployment: Deployment
    /// Decode: the most sequences one attention rank batches.
    public var maxBatchPerRank: Int
    /// Prefill: the most prompt tokens one attention rank computes in a step (longer prompts are chunked).
    public var tokenBudgetPerRank: Int
    /// Share of HBM kept free for activations and buffers; the rest after weights holds KV cache.
    public var memoryReserveFraction: Double

    /// Creates a pool.
    public init(role: UnitRole, units: Int, deployment: Deployment, maxBatchPerRank: Int = 256, tokenBudgetPerRank: Int = 16_384, memoryReserveFraction: Double = 0.1) {
        self.role = role
        self.units = units
        self.deployment = deployment
        self.maxBatchPerRank = maxBatchPerRank
        self.tokenBudgetPerRank = tokenBudgetPerRank
        self.memoryReserveFraction = memoryReserveFraction
    }
}

/// How serving is split over pools.
public enum ServingTopology: Hashable, Sendable {
    /// Separate prefill and decode pools; the KV cache moves between them over InfiniBand.
    case disaggregated(prefill: PoolSpec, decode: PoolSpec)
    /// One pool whose units do both.
    case colocated(PoolSpec)

    /// The pools, in a fixed order (prefill then decode, or the one colocated pool).
    public var pools: [PoolSpec] {
        switch self {
        case .disaggregated(let p, let d): return [p, d]
        case .colocated(let c): return [c]
        }
    }
}

/// How many nodes are in service by time of day, as a step function in a local time zone.
/// Each pool keeps the same share of its peak units (at least one) as the schedule keeps of its peak.
public struct NodeSchedule: Hashable, Sendable {
    /// (second of the local day, nodes in service from then on), sorted, the first at 0.
    public private(set) var points: [Point]
    /// The local zone's offset from UTC, in seconds.
    public var utcOffsetSeconds: Double

    /// One step of the schedule.
    public struct Point: Hashable, Sendable {
        public var second: Double
        public var nodes: Int
        public init(second: Double, nodes: Int) {
            self.second = second
            self.nodes = nodes
        }
    }

    /// Creates a schedule; a first point after midnight wraps the last point's count round midnight.
    public init(points: [Point], utcOffsetSeconds: Double) {
        precondition(!points.isEmpty, "a node schedule needs at least one point")
        var sorted = points.sorted { $0.second < $1.second }
        if sorted[0].second > 0 { sorted.insert(Point(second: 0, nodes: sorted[sorted.count - 1].nodes), at: 0) }
        self.points = sorted
        self.utcOffsetSeconds = utcOffsetSeconds
    }

    /// The largest node count.
    public var peakNodes: Int { points.map(\.nodes).max() ?? 0 }

    /// The time-weighted mean node count over a day.
    public var meanNodes: Double {
        var total = 0.0
        for (i, p) in points.enumerated() {
            let end = i + 1 < points.count ? points[i + 1].second : 86_400
            total += Double(p.nodes) * (end - p.second)
        }
        return total / 86_400
    }

    /// Nodes in service at `epochSeconds`, and the epoch second of the next change.
    public func nodes(atEpochSeconds t: Double) -> (nodes: Int, until: Double) {
        let local = t + utcOffsetSeconds
        let dayStart = (local / 86_400).rounded(.down) * 86_400
        let second = local - dayStart
        var i = points.count - 1
        while i > 0 && points[i].second > second { i -= 1 }
        let next = i + 1 < points.count ? points[i + 1].second : 86_400
        return (points[i].nodes, dayStart + next - utcOffsetSeconds)
    }

    /// Units of a pool with `peakUnits` at peak that are in service when `nodes` nodes are.
    public func units(peakUnits: Int, nodes: Int) -> Int {
        let peak = peakNodes
        guard peak > 0 else { return peakUnits }
        return max(1, min(peakUnits, Int((Double(peakUnits) * Double(nodes) / Double(peak)).rounded())))
    }

    /// The schedule as a daily rate profile: demand assumed proportional to the nodes provisioned.
    public var asDailyProfile: DailyProfile {
        DailyProfile(points: points.map { ($0.second, Double($0.nodes)) }, utcOffsetSeconds: utcOffsetSeconds)
    }
}
