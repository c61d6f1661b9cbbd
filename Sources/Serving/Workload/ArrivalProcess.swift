import Accounting
import Units
/// How requests arrive: a renewal process whose mean rate may follow a daily profile.
public enum ArrivalProcess: Hashable, Sendable {
    /// Exponential gaps (memoryless).
    case poisson
    /// Gamma-distributed gaps with coefficient of variation `cv` (> 1 is burstier than Poisson).
    case gamma(cv: Double)

    /// A gap in operational time (mean 1); visible for tests of the distribution.
    public func unitGapForTesting(_ rng: inout SplitMix64) -> Double { unitGap(&rng) }

    /// A gap in operational time (mean 1).
    func unitGap(_ rng: inout SplitMix64) -> Double {
        switch self {
        case .poisson:
            return rng.exponential(mean: 1)
        case .gamma(let cv):
            let shape = 1 / (cv * cv)
            return rng.gamma(shape: shape, scale: 1 / shape)
        }
    }
}

/// A multiplier on the arrival rate by time of day: a step function through (second of day, factor)
/// points in a local time zone, repeating every day.
public struct DailyProfile: Hashable, Sendable {
    /// (second of the local day, rate multiplier from then on), sorted, the first at 0.
    public private(set) var points: [(second: Double, factor: Double)]
    /// The local time zone's offset from UTC, in seconds.
    public var utcOffsetSeconds: Double

    public static func == (a: DailyProfile, b: DailyProfile) -> Bool {
        a.utcOffsetSeconds == b.utcOffsetSeconds && a.points.elementsEqual(b.points) { $0.second == $1.second && $0.factor == $1.factor }
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(utcOffsetSeconds)
        for p in points { hasher.combine(p.second); hasher.combine(p.factor) }
    }

    /// The same rate all day.
    public static let flat = DailyProfile(points: [(0, 1)], utcOffsetSeconds: 0)

    /// Creates a profile; `points` need not start at 0 (the last point's factor wraps round midnight).
    public init(points: [(second: Double, factor: Double)], utcOffsetSeconds: Double) {
        precondition(!points.isEmpty, "a daily profile needs at least one point")
        var sorted = points.sorted { $0.second < $1.second }
        if sorted[0].second > 0 { sorted.insert((0, sorted[sorted.count - 1].factor), at: 0) }
        self.points = sorted
        self.utcOffsetSeconds = utcOffsetSeconds
    }

    /// The time-weighted mean factor over a day.
    public var meanFactor: Double {
        var total = 0.0
        for (i, p) in points.enumerated() {
            let end = i + 1 < points.count ? points[i + 1].second : 86_400
            total += p.factor * (end - p.second)
        }
        return total / 86_400
    }

    /// This profile scaled so that its daily mean is 1.
    public var normalised: DailyProfile {
        let m = meanFactor
        return DailyProfile(points: points.map { ($0.second, $0.factor / m) }, utcOffsetSeconds: utcOffsetSeconds)
    }

    /// The factor in force at `epochSeconds`, and the epoch second at which it next changes.
    func segment(atEpochSeconds t: Double) -> (factor: Double, until: Double) {
        let local = t + utcOffsetSeconds
        let dayStart = (local / 86_400).rounded(.down) * 86_400
        let second = local - dayStart
        var i = points.count - 1
        while i > 0 && points[i].second > second { i -= 1 }
        let nextSecond = i + 1 < points.count ? points[i + 1].second : 86_400
        return (points[i].factor, dayStart + nextSecond - utcOffsetSeconds)
    }

    /// The piecewise-constant stretches of `[start, start + duration)` (epoch seconds), each with its factor.
    public func segments(fromEpochSeconds start: Double, duration: Double) -> [(start: Double, seconds: Double, factor: Double)] {
        var out: [(start: Double, seconds: Double, factor: Double)] = []
        var t = start
        let end = start + duration
        while t < end {
            let (factor, until) = segment(atEpochSeconds: t)
            let next = Swift.min(Swift.max(until, t + 1e-6), end)
            out.append((t, next - t, factor))
            t = next
        }
        return out
    }

    /// Problems, by field.
    public func validate() -> [(field: String, message: String)] {
        var p: [(String, String)] = []
        for (i, point) in points.enumerated() {
            if !(0..<86_400).contains(point.second) { p.append(("[\(i)].at", "expected a time of day from 00:00 to 23:59:59")) }
            if !(point.factor.isFinite && point.factor >= 0) { p.append(("[\(i)].factor", "expected a non-negative number, got \(point.factor)")) }
        }
        if !(meanFactor > 0) { p.append(("", "expected some hours with a positive rate")) }
        return p
    }
}
