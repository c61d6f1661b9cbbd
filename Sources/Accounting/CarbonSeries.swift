/// Whether a series records what the grid did or what a forecaster expected it to do.
public enum SeriesKind: String, CaseIterable, Codable, Hashable, Sendable {
    case actual
    case forecast
}

/// What a carbon-intensity series is: where and what it measures, and where it came from.
public struct SeriesMetadata: Hashable, Sendable, Codable {
    /// Grid region or zone (`GB`, `DE`, `US-CAL-CISO`, `CAISO_NORTH`, `CN-BJ`, …).
    public var region: String
    public var signal: CarbonSignal
    public var factor: EmissionFactorType
    public var kind: SeriesKind
    /// Who publishes the figures (`electricitymaps`, `watttime`, `ukci`, `lets-wait-awhile`, `joule-csv`, …).
    public var source: String
    /// For forecasts: when the forecast was issued (seconds since 1970, UTC).
    public var issuedAt: Double?
    /// The usual length of one point, in seconds (the most common duration in the series).
    public var resolutionSeconds: Double
    /// The file or URL the points were read from.
    public var origin: String

    public init(
        region: String, signal: CarbonSignal, factor: EmissionFactorType, kind: SeriesKind, source: String,
        issuedAt: Double? = nil, resolutionSeconds: Double = 0, origin: String
    ) {
        self.region = region
        self.signal = signal
        self.factor = factor
        self.kind = kind
        self.source = source
        self.issuedAt = issuedAt
        self.resolutionSeconds = resolutionSeconds
        self.origin = origin
    }
}

/// Joule's one carbon-intensity series: points in gCO₂e/kWh, in time order, each with a positive
/// duration, none overlapping the next (gaps are allowed and reported by `gaps`), with what the
/// series is and where it came from. Readers (CarbonData), the ledger, the scheduler and the
/// simulator's accounting all use this one type.
public struct CarbonSeries: Hashable, Sendable {
    public var metadata: SeriesMetadata
    public private(set) var points: [TimedValue]

    /// A series from points that `PointChecker` has already put in order.
    public init(metadata: SeriesMetadata, checkedPoints points: [TimedValue]) {
        precondition(!points.isEmpty, "a carbon series needs at least one point")
        self.metadata = metadata
        self.points = points
        if self.metadata.resolutionSeconds <= 0 { self.metadata.resolutionSeconds = Self.typicalDuration(points) }
    }

    public var start: Double { points[0].start }
    public var end: Double { points[points.count - 1].end }

    /// Spans between consecutive points that no point covers.
    public var gaps: [(start: Double, end: Double)] {
        zip(points, points.dropFirst()).compactMap { a, b in b.start > a.end ? (a.end, b.start) : nil }
    }

    /// The points that overlap [from, to).
    public func clipped(from: Double?, to: Double?) -> [TimedValue] {
        points.filter { p in (from.map { p.end > $0 } ?? true) && (to.map { p.start < $0 } ?? true) }
    }

}

extension SeriesMetadata {
    /// `source[/factor][/forecast]`, the label stored with each request's carbon.
    public var sourceLabel: String {
        var label = source
        if factor != .unspecified { label += "/\(factor.rawValue)" }
        if kind == .forecast { label += "/forecast" }
        return label
    }
}

extension CarbonSeries {
    /// One step of a step function: from `epochSeconds` on, the grid ran at `intensity`.
    public struct Step: Hashable, Sendable {
        public var epochSeconds: Double
        public var intensity: CarbonIntensity
        public init(epochSeconds: Double, intensity: CarbonIntensity) {
            self.epochSeconds = epochSeconds
            self.intensity = intensity
        }
    }

    /// A series of actual intensities from steps in strictly increasing time (a scenario's series):
    /// each lasts until the next; the last as long as the one before (an hour when alone).
    public init(region: String, signal: CarbonSignal, source: String, points steps: [Step], origin: String = "scenario") {
        precondition(!steps.isEmpty, "an intensity series needs at least one point (region \(region))")
        var points: [TimedValue] = []
        for (i, p) in steps.enumerated() {
            precondition(i == 0 || p.epochSeconds > steps[i - 1].epochSeconds, "intensity points must be strictly increasing in time")
            let duration = i + 1 < steps.count ? steps[i + 1].epochSeconds - p.epochSeconds : (i > 0 ? p.epochSeconds - steps[i - 1].epochSeconds : 3600)
            points.append(TimedValue(start: p.epochSeconds, duration: duration, value: p.intensity.gramsPerKWh))
        }
        self.init(
            metadata: SeriesMetadata(region: region, signal: signal, factor: .unspecified, kind: .actual, source: source, origin: origin),
            checkedPoints: points
        )
    }

    /// A series that is `intensity` at every time.
    public static func constant(
        _ intensity: CarbonIntensity, region: String, signal: CarbonSignal, source: String, factor: EmissionFactorType = .unspecified
    ) -> CarbonSeries {
        var series = CarbonSeries(region: region, signal: signal, source: source, points: [Step(epochSeconds: 0, intensity: intensity)])
        series.metadata.factor = factor
        return series
    }

    /// Whether the series has a single value.
    public var isConstant: Bool { points.count == 1 }
    public var region: String { metadata.region }
    public var signal: CarbonSignal { metadata.signal }

    /// The usual length of one point: the most common duration (the shortest among equals).
    public static func typicalDuration(_ points: [TimedValue]) -> Double {
        var counts: [Double: Int] = [:]
        for p in points { counts[p.duration, default: 0] += 1 }
        return counts.max { ($0.value, -$0.key) < ($1.value, -$1.key) }?.key ?? 0
    }

    /// The accounting's step function: the intensity at `epochSeconds` is that of the last point
    /// starting at or before it (the first point's before the series; a gap holds the value of the
    /// point before it, since the accounting needs a value at every instant). O(log n).
    @inlinable
    public func intensity(atEpochSeconds t: Double) -> CarbonIntensity {
        var low = 0
        var high = points.count - 1
        if t <= points[0].start { return CarbonIntensity(gramsPerKWh: points[0].value) }
        if t >= points[high].start { return CarbonIntensity(gramsPerKWh: points[high].value) }
        while high - low > 1 {
            let mid = (low + high) / 2
            if points[mid].start <= t { low = mid } else { high = mid }
        }
        return CarbonIntensity(gramsPerKWh: points[low].value)
    }

    /// The time-weighted mean of the step function over [`from`, `to`).
    public func meanIntensity(fromEpochSeconds from: Double, to: Double) -> CarbonIntensity {
        precondition(to > from, "meanIntensity needs to > from, got \(from) … \(to)")
        var total = 0.0
        for (i, point) in points.enumerated() {
            // Point i holds from its start (from −∞ for the first) to the next point's (to +∞ for the last).
            let start = i == 0 ? -Double.infinity : point.start
            let end = i + 1 < points.count ? points[i + 1].start : .infinity
            let overlap = min(end, to) - max(start, from)
            if overlap > 0 { total += point.value * overlap }
        }
        return CarbonIntensity(gramsPerKWh: total / (to - from))
    }
}
