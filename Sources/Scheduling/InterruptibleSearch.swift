import Accounting

/// Plans an interruptible job: the lowest-intensity slots before the deadline that add up to the
/// job's duration, where every uninterrupted stretch (slice) lasts at least `minimumSlice`.
///
/// The data between the bounds is cut into ticks of its finest resolution; a point whose length
/// is not a whole number of ticks is an error (mixed resolutions that do not nest), and a gap
/// breaks a slice. The job takes `ceil(duration / tick)` ticks; when the duration is not a whole
/// number of ticks, the last slice is cut short to fit. Among plans of the lowest total, the one
/// whose ticks are earliest wins. Exact (dynamic programming over ticks, chosen ticks and the
/// length of the current slice): O(ticks × job ticks × minimum-slice ticks). A job shorter
/// than the minimum slice runs in one piece.
public enum InterruptibleSearch {
    public struct Plan: Hashable, Sendable {
        /// The slices in time order, each with its time-weighted mean intensity.
        public var slices: [TimedValue]
        /// The time-weighted mean over all slices.
        public var meanIntensity: Double
        public var duration: Double { slices.reduce(0) { $0 + $1.duration } }
    }

    public enum Failure: Error, Hashable, CustomStringConvertible {
        case mixedResolution(pointStart: Double, duration: Double, tick: Double)
        case notEnoughData(needed: Double, available: Double)
        case noFeasiblePlan(minimumSlice: Double)

        public var description: String {
            switch self {
            case .mixedResolution(let s, let d, let t):
                return "the point at \(s) lasts \(d / 60) min, not a whole number of \(t / 60)-min ticks: the data mixes resolutions that do not nest"
            case .notEnoughData(let n, let a):
                return "the job needs \(n / 60) min but the data between the bounds covers only \(a / 60) min"
            case .noFeasiblePlan(let m):
                return "no plan has every slice at least \(m / 60) min long inside the covered data (gaps break slices)"
            }
        }
    }

    struct Tick {
        var start: Double
        var value: Double
        /// Whether it follows the previous tick without a gap.
        var contiguous: Bool
    }

    public static func plan(_ points: [TimedValue], duration: Double, minimumSlice: Double, start: Double? = nil, end: Double? = nil) throws -> Plan {
        try WindowSearch.validate(points)
        let (s, e) = try WindowSearch.bounds(points, start: start, end: end)
        guard duration > 0 else { throw WindowSearchError.nonPositive(field: "duration", value: duration) }
        let inRange = points.compactMap { p -> TimedValue? in
            let a = max(p.start, s), b = min(p.end, e)
            return b > a ? TimedValue(start: a, duration: b - a, value: p.value) : nil
        }
        let epsilon = 1e-6
        guard let tick = inRange.map(\.duration).min() else { throw Failure.notEnoughData(needed: duration, available: 0) }
        var ticks: [Tick] = []
        for p in inRange {
            let count = (p.duration / tick).rounded()
            guard abs(count * tick - p.duration) < epsilon else { throw Failure.mixedResolution(pointStart: p.start, duration: p.duration, tick: tick) }
            for i in 0..<Int(count) {
                let t = p.start + Double(i) * tick
                let contiguous = ticks.last.map { abs($0.start + tick - t) < epsilon } ?? false
                ticks.append(Tick(start: t, value: p.value, contiguous: contiguous))
            }
        }
        let m = Int((duration / tick - epsilon).rounded(.up))
        guard m <= ticks.count else { throw Failure.notEnoughData(needed: duration, available: Double(ticks.count) * tick) }
        let k = max(1, Int(min(Double(m), max(0, (minimumSlice / tick - epsilon).rounded(.up)))))
        let chosen = try solve(ticks, m: m, k: k, minimumSlice: minimumSlice)

        // Merge chosen ticks into slices; trim the last slice to the exact duration.
        var slices: [TimedValue] = []
        var excess = Double(m) * tick - duration
        for i in chosen {
            let t = ticks[i]
            if let last = slices.last, abs(last.end - t.start) < epsilon {
                let total = last.duration + tick
                slices[slices.count - 1] = TimedValue(start: last.start, duration: total, value: (last.value * last.duration + t.value * tick) / total)
            } else {
                slices.append(TimedValue(start: t.start, duration: tick, value: t.value))
            }
        }
        if excess > epsilon, !slices.isEmpty {
            // Cut from the end of the last slice: the mean of its remaining ticks.
            let lastIndex = slices.count - 1
            let last = slices[lastIndex]
            let lastTicks = chosen.filter { ticks[$0].start >= last.start - epsilon }
            var keep = last.duration - excess
            var sum = 0.0
            for i in lastTicks where keep > epsilon {
                let part = min(tick, keep)
                sum += ticks[i].value * part
                keep -= part
            }
            slices[lastIndex] = TimedValue(start: last.start, duration: last.duration - excess, value: sum / (last.duration - excess))
            excess = 0
        }
        let total = slices.reduce(0) { $0 + $1.duration }
        let mean = slices.reduce(0) { $0 + $1.value * $1.duration } / total
        return Plan(slices: slices, meanIntensity: mean)
    }

    /// The indices of the chosen ticks.
    static func solve(_ ticks: [Tick], m: Int, k: Int, minimumSlice: Double) throws -> [Int] {
        struct Cost: Comparable {
            var sum: Double
            var indices: Int
            static func < (a: Cost, b: Cost) -> Bool { a.sum != b.sum ? a.sum < b.sum : a.indices < b.indices }
            static let infinite = Cost(sum: .infinity, indices: .max)
        }
        let n = ticks.count
        let width = (m + 1) * (k + 1)
        func slot(_ j: Int, _ r: Int) -> Int { j * (k + 1) + r }
        var current = [Cost](repeating: .infinite, count: width)
        current[slot(0, 0)] = Cost(sum: 0, indices: 0)
        // choice[i][state]: 0 unreachable, 1 skipped tick i from state (j, r'), 2 took it; plus the previous r.
        var previousR = [[Int8]](repeating: [Int8](repeating: -1, count: width), count: n)
        var took = [[Bool]](repeating: [Bool](repeating: false, count: width), count: n)
        for i in 0..<n {
            var next = [Cost](repeating: .infinite, count: width)
            for j in 0...m {
                for r in 0...k {
                    let c = current[slot(j, r)]
                    if c.sum == .infinity { continue }
                    // Skip tick i: only outside a slice or after a complete one.
                    if r == 0 || r == k {
                        let target = slot(j, 0)
                        if c < next[target] { next[target] = c; previousR[i][target] = Int8(r); took[i][target] = false }
                    }
                    // Take tick i.
                    if j < m {
                        let r2: Int
                        if r == 0 { r2 = min(1, k) }
                        else if ticks[i].contiguous { r2 = min(r + 1, k) }
                        else if r == k { r2 = min(1, k) }
                        else { continue }
                        let target = slot(j + 1, r2)
                        let cost = Cost(sum: c.sum + ticks[i].value, indices: c.indices + i)
                        if cost < next[target] { next[target] = cost; previousR[i][target] = Int8(r); took[i][target] = true }
                    }
                }
            }
            current = next
        }
        let finals = [slot(m, 0), slot(m, k)]
        guard let best = finals.min(by: { current[$0] < current[$1] }), current[best].sum.isFinite else {
            throw Failure.noFeasiblePlan(minimumSlice: minimumSlice)
        }
        var chosen: [Int] = []
        var j = m
        var r = best % (k + 1)
        for i in stride(from: n - 1, through: 0, by: -1) {
            let state = slot(j, r)
            let pr = Int(previousR[i][state])
            if took[i][state] { chosen.append(i); j -= 1 }
            r = pr
        }
        return chosen.reversed()
    }
}
