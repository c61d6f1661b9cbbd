import Accounting

/// Replays a daily batch job against a recorded intensity series, as the Let's Wait Awhile study
/// does: each day the job may start anywhere within ± `flexibility` of its usual time, and takes
/// the earliest window with the lowest mean. The saving is against running at the usual time.
public enum ShiftingStudy {
    /// One flexibility's result over all days.
    public struct Row: Hashable, Sendable, Codable {
        /// ± seconds around the usual start.
        public var flexibilitySeconds: Double
        /// Days with data for the whole search.
        public var days: Int
        /// 1 − Σ chosen mean ÷ Σ mean at the usual time (energy per run is the same every day).
        public var savingFraction: Double
    }

    /// - Parameters:
    ///   - points: the series (sorted, as `WindowSearch` wants it).
    ///   - days: the first second (UTC midnight) of each day to replay.
    ///   - usualStart: seconds after midnight of the job's usual start.
    ///   - jobSeconds: how long the job runs.
    ///   - flexibilities: ± seconds to try.
    public static func run(
        _ points: [TimedValue], days: [Double], usualStart: Double, jobSeconds: Double, flexibilities: [Double]
    ) throws -> [Row] {
        try WindowSearch.validate(points)
        let dataStart = points[0].start
        let dataEnd = points.map(\.end).max()!
        return try flexibilities.map { flex in
            var chosen = 0.0
            var usual = 0.0
            var counted = 0
            for day in days {
                let start = day + usualStart - flex
                let end = day + usualStart + jobSeconds + flex
                guard start >= dataStart, end <= dataEnd else { continue }
                // Only the points that overlap the day's search, so each day costs what it covers.
                let near = Array(points[overlapping(points, from: start, to: end)])
                let baseline = try WindowSearch.average(near, start: day + usualStart, end: day + usualStart + jobSeconds)
                let best = try WindowSearch.best(near, window: jobSeconds, start: start, end: end)
                chosen += best[0].value
                usual += baseline
                counted += 1
            }
            return Row(flexibilitySeconds: flex, days: counted, savingFraction: usual > 0 ? 1 - chosen / usual : 0)
        }
    }

    /// The indices of the points that overlap [from, to), found by binary search (points sorted,
    /// contiguous or with gaps, none overlapping).
    static func overlapping(_ points: [TimedValue], from: Double, to: Double) -> Range<Int> {
        var lo = 0, hi = points.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if points[mid].end <= from { lo = mid + 1 } else { hi = mid }
        }
        var upper = lo
        while upper < points.count, points[upper].start < to { upper += 1 }
        return lo..<upper
    }
}
