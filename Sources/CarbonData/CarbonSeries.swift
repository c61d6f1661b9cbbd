import Accounting

/// Something a reader repaired, or noticed, on the way in: never silent.
public struct CarbonDataWarning: Hashable, Sendable, CustomStringConvertible {
    /// Whether the reader changed the data (sorted it, dropped duplicates) or only noticed
    /// something about it (a gap, which it keeps).
    public enum Kind: Hashable, Sendable {
        case repaired
        case notice
    }

    public var file: String
    public var message: String
    public var kind: Kind
    public init(file: String, message: String, kind: Kind = .notice) {
        self.file = file
        self.message = message
        self.kind = kind
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
/// - Values, durations and times must be finite and inside `Limits`.
public enum PointChecker {
    /// The ranges a point must lie in. No grid emits more than about 1,200 gCO2/kWh (lignite); the
    /// bound leaves room for marginal signals and stops unit mistakes (lb/MWh read as g/kWh × 10).
    public enum Limits {
        public static let intensity: ClosedRange<Double> = 0...10_000
        public static let duration: ClosedRange<Double> = 1...(366 * 86_400)
        /// 1970-01-01 to 2200-01-01.
        public static let start: ClosedRange<Double> = 0...7_258_118_400
    }

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
            guard r.point.value.isFinite, Limits.intensity.contains(r.point.value) else {
                throw CarbonDataError.invalidPoint(
                    file: file, index: r.place, field: "value",
                    message: "expected gCO2/kWh from 0 to \(Int(Limits.intensity.upperBound)), got \(r.point.value)"
                )
            }
            guard r.point.duration.isFinite, Limits.duration.contains(r.point.duration) else {
                throw CarbonDataError.invalidPoint(
                    file: file, index: r.place, field: "duration",
                    message: "expected a duration from 1 s to 366 days, got \(r.point.duration) s"
                )
            }
            guard r.point.start.isFinite, Limits.start.contains(r.point.start) else {
                throw CarbonDataError.invalidPoint(
                    file: file, index: r.place, field: "start", message: "expected a time from 1970 to 2199, got \(r.point.start) s since 1970"
                )
            }
        }
        var sorted = raw
        if let firstOut = zip(raw, raw.dropFirst()).first(where: { $1.point.start < $0.point.start }) {
            sorted.sort { ($0.point.start, $0.place) < ($1.point.start, $1.place) }
            warnings.append(CarbonDataWarning(
                file: file,
                message: "points were out of time order (first: \(placeName) \(firstOut.1.place) comes before \(placeName) \(firstOut.0.place)); sorted by time",
                kind: .repaired
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
                message: "dropped \(droppedDuplicates.count) exact duplicate point(s) (first: \(placeName) \(droppedDuplicates[0]))",
                kind: .repaired
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
