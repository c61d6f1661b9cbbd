import Accounting

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

/// A checked carbon-intensity series: points in gCO₂e/kWh, in time order, each with a positive
/// duration, none overlapping the next (gaps are allowed and reported by `gaps`).
public struct CarbonSeries: Hashable, Sendable {
    public var metadata: SeriesMetadata
    public private(set) var points: [TimedValue]

    /// A series from points that `PointChecker` has already put in order.
    public init(metadata: SeriesMetadata, checkedPoints points: [TimedValue]) {
        precondition(!points.isEmpty, "a carbon series needs at least one point")
        self.metadata = metadata
        self.points = points
        if self.metadata.resolutionSeconds <= 0 { self.metadata.resolutionSeconds = PointChecker.typicalDuration(points) }
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

    /// The series as the accounting step function. A gap holds the value of the point before it
    /// (the accounting needs a value at every instant; `gaps` lists where that happened).
    public var intensitySeries: IntensitySeries {
        IntensitySeries(
            region: metadata.region, signal: metadata.signal, source: metadata.sourceLabel,
            points: points.map { IntensitySeries.Point(epochSeconds: $0.start, intensity: CarbonIntensity(gramsPerKWh: $0.value)) }
        )
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

/// Something a reader repaired, or noticed, on the way in: never silent.
public struct CarbonDataWarning: Hashable, Sendable, CustomStringConvertible {
    public var file: String
    public var message: String
    public init(file: String, message: String) {
        self.file = file
        self.message = message
    }
    public var description: String { "\(file): \(message)" }
}

/// Puts raw points in order and decides what is wrong with them, the same way for every format.
///
/// - Points out of time order are sorted, with a warning naming the first one out of place.
/// - Two points at the same start with the same value and duration: the copy is dropped, with a
///   warning. With different values or durations: an error naming both.
/// - A point that starts before the previous one ends: an error.
/// - A gap between points: kept (window searches skip windows that do not have full data;
///   accounting holds the previous value), with one warning giving the count and the largest.
/// - Values must be finite and ≥ 0, durations > 0.
public enum PointChecker {
    /// One point as read, with its place in the file (line or index from 1) for messages.
    public struct RawPoint: Hashable, Sendable {
        public var place: Int
        public var point: TimedValue
        public init(place: Int, point: TimedValue) {
            self.place = place
            self.point = point
        }
    }

    public static func check(_ raw: [RawPoint], file: String, placeName: String = "point") throws -> (points: [TimedValue], warnings: [CarbonDataWarning]) {
        guard !raw.isEmpty else { throw CarbonDataError.empty(file: file) }
        var warnings: [CarbonDataWarning] = []
        for r in raw {
            guard r.point.value.isFinite, r.point.value >= 0 else {
                throw CarbonDataError.invalidPoint(file: file, index: r.place, field: "value", message: "expected gCO2/kWh ≥ 0, got \(r.point.value)")
            }
            guard r.point.duration > 0, r.point.duration.isFinite else {
                throw CarbonDataError.invalidPoint(file: file, index: r.place, field: "duration", message: "expected a positive duration, got \(r.point.duration) s")
            }
        }
        var sorted = raw
        if let firstOut = zip(raw, raw.dropFirst()).first(where: { $1.point.start < $0.point.start }) {
            sorted.sort { ($0.point.start, $0.place) < ($1.point.start, $1.place) }
            warnings.append(CarbonDataWarning(
                file: file,
                message: "points were out of time order (first: \(placeName) \(firstOut.1.place) comes before \(placeName) \(firstOut.0.place)); sorted by time"
            ))
        }
        var out: [RawPoint] = []
        var droppedDuplicates: [Int] = []
        for r in sorted {
            if let last = out.last {
                if r.point.start == last.point.start {
                    if r.point == last.point {
                        droppedDuplicates.append(r.place)
                        continue
                    }
                    throw CarbonDataError.unordered(
                        file: file, index: r.place,
                        message: "starts at the same time as \(placeName) \(last.place) with a different value (\(r.point.value) vs \(last.point.value)) or duration; remove one"
                    )
                }
                if r.point.start < last.point.end - 1e-6 {
                    throw CarbonDataError.unordered(
                        file: file, index: r.place,
                        message: "starts \(Int((last.point.end - r.point.start).rounded())) s before \(placeName) \(last.place) ends; points must not overlap"
                    )
                }
            }
            out.append(r)
        }
        if !droppedDuplicates.isEmpty {
            warnings.append(CarbonDataWarning(
                file: file,
                message: "dropped \(droppedDuplicates.count) exact duplicate point(s) (first: \(placeName) \(droppedDuplicates[0]))"
            ))
        }
        let points = out.map(\.point)
        let gaps = zip(points, points.dropFirst()).map { $1.start - $0.end }.filter { $0 > 1e-6 }
        if let largest = gaps.max() {
            warnings.append(CarbonDataWarning(
                file: file,
                message: "\(gaps.count) gap(s) in the data, the largest \(formatDuration(largest)); windows over a gap are skipped when scheduling"
            ))
        }
        return (points, warnings)
    }

    /// The most common point duration (the smallest among equally common ones).
    public static func typicalDuration(_ points: [TimedValue]) -> Double {
        var counts: [Double: Int] = [:]
        for p in points { counts[p.duration, default: 0] += 1 }
        return counts.max { ($0.value, -$0.key) < ($1.value, -$1.key) }?.key ?? 0
    }

    /// Points that each last until the next distinct start, but never longer than the typical
    /// step (a longer step is a gap), the last as long as the typical step (for formats that
    /// give only start times). Points keep their order and places.
    public static func durationsFromStarts(_ starts: [(place: Int, start: Double, value: Double)], fallback: Double) -> [RawPoint] {
        let times = Array(Set(starts.map(\.start))).sorted()
        var steps: [Double: Int] = [:]
        for (a, b) in zip(times, times.dropFirst()) { steps[b - a, default: 0] += 1 }
        let typical = steps.max { ($0.value, -$0.key) < ($1.value, -$1.key) }?.key ?? fallback
        var next: [Double: Double] = [:]  // start → the next distinct start
        for (a, b) in zip(times, times.dropFirst()) { next[a] = b }
        return starts.map { s in
            RawPoint(place: s.place, point: TimedValue(start: s.start, duration: next[s.start].map { min($0 - s.start, typical) } ?? typical, value: s.value))
        }
    }

    static func formatDuration(_ seconds: Double) -> String {
        if seconds >= 3600 { return "\((seconds / 3600).formatted()) h" }
        return "\((seconds / 60).formatted()) min"
    }
}

extension CarbonSeries {
    /// An accounting step function as an actual series of unspecified factor type: each point
    /// lasts until the next, the last as long as the one before it (an hour for a constant).
    public init(intensitySeries s: IntensitySeries, origin: String) {
        let starts = s.points.enumerated().map { (place: $0.offset + 1, start: $0.element.epochSeconds, value: $0.element.intensity.gramsPerKWh) }
        var points: [TimedValue] = []
        for (i, p) in starts.enumerated() {
            let duration = i + 1 < starts.count ? starts[i + 1].start - p.start : (i > 0 ? p.start - starts[i - 1].start : 3600)
            points.append(TimedValue(start: p.start, duration: duration, value: p.value))
        }
        self.init(
            metadata: SeriesMetadata(region: s.region, signal: s.signal, factor: .unspecified, kind: .actual, source: s.source, origin: origin),
            checkedPoints: points
        )
    }
}
