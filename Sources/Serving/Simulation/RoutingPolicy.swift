import Accounting
/// How a request picks one of several units that could take it.
public protocol RoutingPolicy: Sendable {
    /// The index (into `loads`) of the unit to use. `loads` are the candidates' current loads in
    /// the pool's own measure (queued prompt tokens for prefill, share of KV reserved for decode),
    /// in unit order; never empty.
    mutating func choose(loads: [Double]) -> Int
}

/// Least-loaded first; ties go to the lowest-numbered unit. Joule's default.
public struct LeastLoaded: RoutingPolicy {
    public init() {}
    public func choose(loads: [Double]) -> Int {
        var best = 0
        for i in loads.indices.dropFirst() where loads[i] < loads[best] { best = i }
        return best
    }
}

/// Each unit in turn, whatever its load.
public struct RoundRobin: RoutingPolicy {
    private var next = 0
    public init() {}
    public mutating func choose(loads: [Double]) -> Int {
        defer { next += 1 }
        return next % loads.count
    }
}

/// The routing policies a scenario can name.
public enum RoutingChoice: String, CaseIterable, Codable, Hashable, Sendable {
    case leastLoaded = "least-loaded"
    case roundRobin = "round-robin"

    /// A fresh policy of this kind.
    public func make() -> any RoutingPolicy {
        switch self {
        case .leastLoaded: return LeastLoaded()
        case .roundRobin: return RoundRobin()
        }
    }
}
