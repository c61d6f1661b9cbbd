import Accounting
import Scheduling
import Units
import Testing

@Suite("Interruptible jobs")
struct InterruptibleSearchTests {
    /// Half-hour points, sometimes with a gap before them.
    static func instance(_ seed: UInt64, count: Int, gaps: Bool) -> [TimedValue] {
        var rng = SplitMix64(seed: seed)
        var t = 0.0
        return (0..<count).map { _ in
            if gaps && Int.random(in: 0..<6, using: &rng) == 0 { t += 1800 }
            defer { t += 1800 }
            return TimedValue(start: t, duration: 1800, value: Double(Int.random(in: 50...400, using: &rng)))
        }
    }

    /// Every choice of `m` points whose runs (of adjacent points) are all at least `k` long.
    static func bruteForce(_ points: [TimedValue], m: Int, k: Int) -> Double? {
        var best: Double? = nil
        let n = points.count
        for mask in 0..<(1 << n) where mask.nonzeroBitCount == m {
            var ok = true
            var run = 0
            for i in 0..<n {
                let taken = mask & (1 << i) != 0
                let adjacent = i > 0 && points[i - 1].end == points[i].start && mask & (1 << (i - 1)) != 0
                if taken { run = adjacent ? run + 1 : 1 }
                if !taken || i == n - 1 || !(points[i].end == points[i + 1].start && mask & (1 << (i + 1)) != 0) {
                    if taken && run < k { ok = false }
                    if !taken { run = 0 }
                }
            }
            if ok {
                let sum = (0..<n).filter { mask & (1 << $0) != 0 }.reduce(0.0) { $0 + points[$1].value }
                best = min(best ?? .infinity, sum)
            }
        }
        return best
    }

    @Test("The plan is optimal: it matches an exhaustive search on small instances", arguments: 0..<30)
    func matchesBruteForce(_ seed: UInt64) throws {
        let points = Self.instance(seed, count: 12, gaps: seed % 2 == 0)
        let m = 2 + Int(seed % 5), k = 1 + Int(seed % 3)
        // A job shorter than the minimum slice runs in one piece.
        let expected = Self.bruteForce(points, m: m, k: min(k, m))
        do {
            let plan = try InterruptibleSearch.plan(points, duration: Double(m) * 1800, minimumSlice: Double(k) * 1800)
            let total = plan.meanIntensity * Double(m)
            #expect(abs(total - (expected ?? .nan)) < 1e-6)
        } catch InterruptibleSearch.Failure.noFeasiblePlan {
            #expect(expected == nil)
        }
    }

    @Test("Every slice is at least the minimum, inside the bounds, and the slices add up to the job", arguments: 0..<20)
    func constraints(_ seed: UInt64) throws {
        let points = Self.instance(seed, count: 96, gaps: true)
        let duration = 3600.0 * Double(1 + seed % 5) + (seed % 3 == 0 ? 900 : 0)
        let minimum = 1800.0 * Double(1 + seed % 3)
        let start = points[4].start, end = points[90].end
        let plan = try InterruptibleSearch.plan(points, duration: duration, minimumSlice: minimum, start: start, end: end)
        #expect(abs(plan.duration - duration) < 1e-6)
        for (i, slice) in plan.slices.enumerated() {
            #expect(slice.start >= start && slice.end <= end)
            // The last slice may be cut short to fit the duration.
            if i < plan.slices.count - 1 || duration.truncatingRemainder(dividingBy: 1800) == 0 { #expect(slice.duration >= min(minimum, duration) - 1e-6) }
        }
        #expect(zip(plan.slices, plan.slices.dropFirst()).allSatisfy { $0.end < $1.start })
    }

    @Test("Pausing never costs more than the best uninterrupted window", arguments: 0..<20)
    func neverWorseThanContiguous(_ seed: UInt64) throws {
        let points = Self.instance(seed, count: 96, gaps: false)
        let duration = 1800.0 * Double(2 + seed % 8)
        let plan = try InterruptibleSearch.plan(points, duration: duration, minimumSlice: 1800)
        let contiguous = try WindowSearch.best(points, window: duration)[0]
        #expect(plan.meanIntensity <= contiguous.value + 1e-9)
    }

    @Test("With no minimum slice it takes the cheapest slots, earliest first among equals")
    func cheapestSlots() throws {
        let values: [Double] = [300, 100, 250, 100, 90, 400, 100]
        let points = values.enumerated().map { TimedValue(start: Double($0.offset) * 3600, duration: 3600, value: $0.element) }
        let plan = try InterruptibleSearch.plan(points, duration: 3 * 3600, minimumSlice: 0)
        #expect(plan.slices.map(\.start) == [3600, 3 * 3600])
        #expect(plan.slices.map(\.duration) == [3600, 7200])
        #expect(abs(plan.meanIntensity - 290.0 / 3) < 1e-9)
    }

    @Test("Mixed resolutions that do not nest, too little data, and impossible slices are errors")
    func failures() {
        let odd = [TimedValue(start: 0, duration: 1800, value: 1), TimedValue(start: 1800, duration: 2700, value: 1)]
        #expect(throws: InterruptibleSearch.Failure.self) { try InterruptibleSearch.plan(odd, duration: 1800, minimumSlice: 0) }
        let short = [TimedValue(start: 0, duration: 1800, value: 1)]
        #expect { try InterruptibleSearch.plan(short, duration: 7200, minimumSlice: 0) } throws: { "\($0)".contains("covers only 30") }
        let gappy = [TimedValue(start: 0, duration: 1800, value: 1), TimedValue(start: 7200, duration: 1800, value: 1)]
        #expect { try InterruptibleSearch.plan(gappy, duration: 3600, minimumSlice: 3600) } throws: { "\($0)".contains("no plan") }
    }
}
