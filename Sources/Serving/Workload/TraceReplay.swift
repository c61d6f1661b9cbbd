import Accounting
/// How a recorded trace is replayed: which part, how fast, how long its requests are.
public struct ReplayOptions: Hashable, Sendable {
    /// Keep requests whose original arrival (seconds after the trace's first) is at least this.
    public var windowStart: Double = 0
    /// … and before this (nil: to the end).
    public var windowEnd: Double? = nil
    /// Arrivals come this many times as often (gaps divided by it).
    public var rateScale: Double = 1
    /// Gaps multiplied by this (the inverse knob of `rateScale`; both apply).
    public var timeScale: Double = 1
    /// Prompt and output lengths multiplied by this (rounded, at least 1).
    public var tokenScale: Double = 1
    /// For traces that say nothing about caching: share of each prompt served from the prefix cache.
    public var cachedFraction: Double = 0
    /// Prefix-block size of Mooncake hashes, in tokens.
    public var blockTokens: Int = 512

    public init() {}

    /// Problems, by field.
    public func validate() -> [(field: String, message: String)] {
        var p: [(String, String)] = []
        if !(windowStart >= 0) { p.append(("window.from", "expected seconds ≥ 0, got \(windowStart)")) }
        if let end = windowEnd, !(end > windowStart) { p.append(("window.to", "expected more than window.from (\(windowStart)), got \(end)")) }
        if !(rateScale > 0 && rateScale.isFinite) { p.append(("rateScale", "expected a positive factor, got \(rateScale)")) }
        if !(timeScale > 0 && timeScale.isFinite) { p.append(("timeScale", "expected a positive factor, got \(timeScale)")) }
        if !(tokenScale > 0 && tokenScale.isFinite) { p.append(("tokenScale", "expected a positive factor, got \(tokenScale)")) }
        if !(0..<1).contains(cachedFraction) { p.append(("cachedFraction", "expected a share from 0 up to (not including) 1, got \(cachedFraction)")) }
        return p
    }
}

extension ParsedTrace {
    /// The trace's requests in arrival order, with ids 0, 1, 2, …, arrivals relative to the window's
    /// start, and cached tokens from the trace (a count, or Mooncake prefix blocks seen before by an
    /// unbounded prefix cache), else from `options.cachedFraction`.
    public func requests(_ options: ReplayOptions) -> [ServingRequest] {
        guard let first = rows.map(\.arrival).min() else { return [] }
        let order = rows.indices.sorted { (rows[$0].arrival, $0) < (rows[$1].arrival, $1) }
        var seenBlocks = Set<Int>()
        var result: [ServingRequest] = []
        result.reserveCapacity(rows.count)
        let gapScale = options.timeScale / options.rateScale
        for index in order {
            let row = rows[index]
            var cached = row.cachedTokens ?? Int((Double(row.promptTokens) * options.cachedFraction).rounded())
            if let hashes = row.blockHashes {
                var hits = 0
                while hits < hashes.count && seenBlocks.contains(hashes[hits]) { hits += 1 }
                cached = hits * options.blockTokens
                seenBlocks.formUnion(hashes)
            }
            let offset = row.arrival - first
            guard offset >= options.windowStart, options.windowEnd.map({ offset < $0 }) ?? true else { continue }
            let prompt = max(1, Int((Double(row.promptTokens) * options.tokenScale).rounded()))
            let output = max(1, Int((Double(row.outputTokens) * options.tokenScale).rounded()))
            let scaledCached = min(Int((Double(cached) * options.tokenScale).rounded()), prompt - 1)
            result.append(ServingRequest(
                id: result.count, arrival: (offset - options.windowStart) * gapScale,
                promptTokens: prompt, cachedTokens: max(0, scaledCached), outputTokens: output
            ))
        }
        return result
    }
}
