import Accounting
/// One request as a workload gives it: when it arrives and how many tokens it has.
public struct ServingRequest: Hashable, Sendable {
    /// Identifier, unique within a run, assigned by the workload in arrival order.
    public var id: Int
    /// Arrival, in seconds after the run's start.
    public var arrival: Double
    /// Prompt tokens (input), including those found in the prefix cache.
    public var promptTokens: Int
    /// Prompt tokens whose KV is already cached: served, but not computed. At most `promptTokens − 1`.
    public var cachedTokens: Int
    /// Output tokens to generate (at least 1).
    public var outputTokens: Int

    /// Creates a request.
    public init(id: Int, arrival: Double, promptTokens: Int, cachedTokens: Int, outputTokens: Int) {
        self.id = id
        self.arrival = arrival
        self.promptTokens = promptTokens
        self.cachedTokens = cachedTokens
        self.outputTokens = outputTokens
    }

    /// Prompt tokens that must be computed.
    public var computedTokens: Int { promptTokens - cachedTokens }
}

/// Anything that yields requests in arrival order. Streams are consumed once.
public protocol RequestStream {
    /// The next request, or `nil` when the workload is exhausted. Arrivals never decrease.
    mutating func next() -> ServingRequest?
    /// Whether the stream ends by itself (a trace) rather than going on until the run's duration.
    var isFinite: Bool { get }
}

/// A recorded workload replayed as it is.
public struct TraceStream: RequestStream {
    private let requests: [ServingRequest]
    private var index = 0

    /// Replays `requests` (already sorted by arrival).
    public init(_ requests: [ServingRequest]) { self.requests = requests }

    public mutating func next() -> ServingRequest? {
        guard index < requests.count else { return nil }
        defer { index += 1 }
        return requests[index]
    }

    public var isFinite: Bool { true }
}
