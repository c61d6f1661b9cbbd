/// Grid carbon intensity over time for one region: a step function through its points.
///
/// The intensity at time `t` is that of the latest point at or before `t`; before the first point,
/// the first point's value; after the last, the last's. Times are seconds since the Unix epoch (UTC).
public struct IntensitySeries: Hashable, Sendable {
    /// One observation: from `epochSeconds` on, the grid ran at `intensity`.
    public struct Point: Hashable, Sendable {
        /// Start of the point, in seconds since 1970-01-01T00:00:00Z.
        public var epochSeconds: Double
        /// The intensity from then on.
        public var intensity: CarbonIntensity

        /// Creates a point.
        public init(epochSeconds: Double, intensity: CarbonIntensity) {
            self.epochSeconds = epochSeconds
            self.intensity = intensity
        }
    }

    /// Grid region or zone (`CN`, `US-CAL-CISO`, …).
    public var region: String
    /// Average or marginal.
    public var signal: CarbonSignal
    /// Where the figures come from.
    public var source: String
    /// The points, in strictly increasing time.
    public private(set) var points: [Point]

    /// Creates a series; `points` must be non-empty and strictly increasing in time.
    public init(region: String, signal: CarbonSignal, source: String, points: [Point]) {
        precondition(!points.isEmpty, "an intensity series needs at least one point (region \(region))")
        for i in points.indices.dropFirst() {
            precondition(
                points[i].epochSeconds > points[i - 1].epochSeconds,
                "intensity points must be strictly increasing in time: \(points[i - 1].epochSeconds) then \(points[i].epochSeconds)"
            )
        }
        self.region = region
        self.signal = signal
        self.source = source
        self.points = points
    }

    /// A series that is `intensity` at every time.
    public static func constant(_ intensity: CarbonIntensity, region: String, signal: CarbonSignal, source: String) -> IntensitySeries {
        IntensitySeries(region: region, signal: signal, source: source, points: [Point(epochSeconds: 0, intensity: intensity)])
    }

    /// Whether the series has a single value.
    public var isConstant: Bool { points.count == 1 }

    /// The intensity at `epochSeconds` (binary search; O(log n)).
    public func intensity(atEpochSeconds t: Double) -> CarbonIntensity {
        var low = 0
        var high = points.count - 1
        if t <= points[0].epochSeconds { return points[0].intensity }
        if t >= points[high].epochSeconds { return points[high].intensity }
        while high - low > 1 {
            let mid = (low + high) / 2
            if points[mid].epochSeconds <= t { low = mid } else { high = mid }
        }
        return points[low].intensity
    }

    /// The time-weighted mean intensity over [`from`, `to`), from the step function.
    public func meanIntensity(fromEpochSeconds from: Double, to: Double) -> CarbonIntensity {
        precondition(to > from, "meanIntensity needs to > from, got \(from) … \(to)")
        var total = 0.0
        for (i, point) in points.enumerated() {
            // Point i holds from its time (from −∞ for the first) to the next point's (to +∞ for the last).
            let start = i == 0 ? -Double.infinity : point.epochSeconds
            let end = i + 1 < points.count ? points[i + 1].epochSeconds : .infinity
            let overlap = min(end, to) - max(start, from)
            if overlap > 0 { total += point.intensity.gramsPerKWh * overlap }
        }
        return CarbonIntensity(gramsPerKWh: total / (to - from))
    }
}
