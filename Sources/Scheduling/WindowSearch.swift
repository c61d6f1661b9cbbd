import Accounting

/// Why a window search cannot answer.
public enum WindowSearchError: Error, Hashable, CustomStringConvertible {
    case noData
    /// Point `index` starts before the one before it, or has no positive duration.
    case unsorted(index: Int)
    case nonPositiveDuration(index: Int)
    /// The search bounds are not inside the data (`dataStart ≤ start < end ≤ dataEnd`).
    case boundsOutsideData(start: Double, end: Double, dataStart: Double, dataEnd: Double)
    case startNotBeforeEnd(start: Double, end: Double)
    /// No window of this length fits inside the data between the bounds.
    case windowLongerThanData(window: Double, available: Double)
    case nonPositive(field: String, value: Double)
    /// A parameter outside its range.
    case outOfRange(field: String, value: Double, expected: String)

    public var description: String {
        switch self {
        case .noData: return "the forecast has no points"
        case .unsorted(let i): return "point \(i + 1) starts before point \(i): sort the series by time"
        case .nonPositiveDuration(let i): return "point \(i + 1) has no positive duration"
        case .boundsOutsideData(let s, let e, let ds, let de):
            return "the search window [\(s), \(e)) is not inside the data [\(ds), \(de)) (seconds since 1970)"
        case .startNotBeforeEnd(let s, let e): return "the search start (\(s)) must be before its end (\(e))"
        case .windowLongerThanData(let w, let a):
            return "a \(w / 60) min window does not fit in the \(a / 60) min of data between the bounds"
        case .nonPositive(let field, let v): return "\(field) must be above 0, got \(v)"
        case .outOfRange(let field, let v, let expected): return "\(field): expected \(expected), got \(v) s"
        }
    }
}

/// The Carbon Aware SDK's forecast window search (its `RollingAverage` and best-window
/// semantics), so that Joule answers as the SDK does on the same data.
///
/// Defaults: the search starts at the first point and ends where the last point ends; windows
/// step by `tick`, by default the first point's duration, starting at the later of the search
/// start and the first point. Each window [s, s + W) is the time-weighted mean of the points it
/// overlaps; it is emitted only when the data covers it fully, and the search stops once a
/// window's end passes the search end. A zero window returns the points that overlap the bounds.
public enum WindowSearch {
    /// The shortest job and window step a search takes, in seconds.
    public static let shortestWindow = 1.0
    /// The most windows one search compares (a week of 1-second steps is 604,800).
    public static let mostWindows = 10_000_000

    /// Checks the points: at least one, in time order, positive durations.
    static func validate(_ points: [TimedValue]) throws {
        guard !points.isEmpty else { throw WindowSearchError.noData }
        for (i, p) in points.enumerated() {
            guard p.duration > 0 else { throw WindowSearchError.nonPositiveDuration(index: i) }
            if i > 0, p.start < points[i - 1].start { throw WindowSearchError.unsorted(index: i) }
        }
    }

    /// The bounds, defaulted and checked: `dataStart ≤ start < end ≤ dataEnd`.
    static func bounds(_ points: [TimedValue], start: Double?, end: Double?) throws -> (Double, Double) {
        let dataStart = points[0].start
        let dataEnd = points.map(\.end).max()!
        let s = start ?? dataStart
        let e = end ?? dataEnd
        guard s < e else { throw WindowSearchError.startNotBeforeEnd(start: s, end: e) }
        guard dataStart <= s, e <= dataEnd else {
            throw WindowSearchError.boundsOutsideData(start: s, end: e, dataStart: dataStart, dataEnd: dataEnd)
        }
        return (s, e)
    }

    /// The time-weighted mean of the points over [from, to), and how many seconds of it they cover.
    static func weightedMean(_ points: [TimedValue], from: Double, to: Double, firstCandidate: inout Int) -> (mean: Double, covered: Double) {
        while firstCandidate < points.count, points[firstCandidate].end <= from { firstCandidate += 1 }
        var sum = 0.0
        var covered = 0.0
        var i = firstCandidate
        while i < points.count, points[i].start < to {
            let overlap = min(points[i].end, to) - max(points[i].start, from)
            if overlap > 0 {
                sum += overlap * points[i].value
                covered += overlap
            }
            i += 1
        }
        return (covered > 0 ? sum / covered : .nan, covered)
    }

    /// The mean of every window of length `window` between the bounds, in time order.
    public static func rollingAverages(
        _ points: [TimedValue], window: Double, tick: Double? = nil, start: Double? = nil, end: Double? = nil
    ) throws -> [TimedValue] {
        try validate(points)
        let (s, e) = try bounds(points, start: start, end: end)
        guard window.isFinite, window == 0 || window >= WindowSearch.shortestWindow else {
            throw WindowSearchError.outOfRange(field: "window", value: window, expected: "0, or at least 1 s")
        }
        if window == 0 {
            return points.filter { $0.end > s && $0.start <= e }
        }
        let step = tick ?? points[0].duration
        guard step.isFinite, step >= WindowSearch.shortestWindow else {
            throw WindowSearchError.outOfRange(field: "tick", value: step, expected: "at least 1 s")
        }
        guard (e - s) / step <= Double(WindowSearch.mostWindows) else {
            throw WindowSearchError.outOfRange(
                field: "tick", value: step, expected: "a step that gives at most \(WindowSearch.mostWindows) windows over the search"
            )
        }
        // Tolerance for time arithmetic in seconds (windows are minutes to days long).
        let epsilon = 1e-6
        var windows: [TimedValue] = []
        var candidate = 0
        var t = max(s, points[0].start)
        while t + window <= e + epsilon {
            let (mean, covered) = weightedMean(points, from: t, to: t + window, firstCandidate: &candidate)
            if covered > 0, covered >= window - epsilon { windows.append(TimedValue(start: t, duration: window, value: mean)) }
            t += step
        }
        return windows
    }

    /// Every window with the lowest mean, in time order (the SDK's optimal data points).
    public static func best(
        _ points: [TimedValue], window: Double, tick: Double? = nil, start: Double? = nil, end: Double? = nil
    ) throws -> [TimedValue] {
        let windows = try rollingAverages(points, window: window, tick: tick, start: start, end: end)
        guard let low = windows.map(\.value).min() else {
            let (s, e) = try bounds(points, start: start, end: end)
            throw WindowSearchError.windowLongerThanData(window: window, available: e - max(s, points[0].start))
        }
        return windows.filter { $0.value == low }
    }

    /// The time-weighted mean over [from, to) of the points that cover it, and the seconds they
    /// cover (less than `to − from` where the data has gaps or ends).
    public static func coveredMean(_ points: [TimedValue], from: Double, to: Double) -> (mean: Double, coveredSeconds: Double) {
        var candidate = 0
        let (mean, covered) = weightedMean(points, from: from, to: to, firstCandidate: &candidate)
        return (mean, covered)
    }

    /// The time-weighted mean over [start, end) (the SDK's average over a period).
    public static func average(_ points: [TimedValue], start: Double? = nil, end: Double? = nil) throws -> Double {
        try validate(points)
        let (s, e) = try bounds(points, start: start, end: end)
        var candidate = 0
        return weightedMean(points, from: s, to: e, firstCandidate: &candidate).mean
    }
}

extension WindowSearch {
    /// A contiguous job's plan: every window compared, the lowest ones, and the window at the
    /// start of the search (what starting now would give).
    public struct Plan: Hashable, Sendable {
        public var windows: [TimedValue]
        public var best: [TimedValue]
        public var startingNow: TimedValue
        /// How much lower the best window is than starting now, in percent of starting now.
        public var savingPercent: Double { startingNow.value > 0 ? 100 * (startingNow.value - best[0].value) / startingNow.value : 0 }
    }

    /// Plans a job of length `window` between the bounds (see `rollingAverages` and `best`).
    public static func plan(_ points: [TimedValue], window: Double, start: Double? = nil, end: Double? = nil) throws -> Plan {
        let windows = try rollingAverages(points, window: window, start: start, end: end)
        let best = try WindowSearch.best(points, window: window, start: start, end: end)
        // `best` throws when no window fits, so `windows` is not empty here.
        return Plan(windows: windows, best: best, startingNow: windows[0])
    }
}
