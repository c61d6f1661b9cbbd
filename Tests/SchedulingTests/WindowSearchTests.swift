import Foundation
import Accounting
import Scheduling
import Testing

/// The Carbon Aware SDK's unit-test data: 5-minute points 10, 20, 30, 40 from 00:00 (REFERENCE.md §6).
let sdkPoints = [10.0, 20, 30, 40].enumerated().map { TimedValue(start: Double($0.offset) * 300, duration: 300, value: $0.element) }

func minutes(_ m: Double) -> Double { m * 60 }

@Suite("Carbon Aware SDK window search")
struct WindowSearchTests {
    @Test("The SDK's vectors", arguments: [
        (10.0, nil, nil, [15.0, 25, 35], 0.0),
        (5.0, 4.0, nil, [10.0, 18, 26, 34], 0.0),
        (2.0, 4.0, nil, [10.0, 15, 20, 30, 40], 0.0),
        (5.0, nil, 2.0, [14.0, 24, 34], 2.0),
    ] as [(Double, Double?, Double?, [Double], Double)])
    func sdkVectors(window: Double, tick: Double?, start: Double?, expected: [Double], firstStart: Double) throws {
        let windows = try WindowSearch.rollingAverages(
            sdkPoints, window: minutes(window), tick: tick.map(minutes), start: start.map(minutes), end: start.map { _ in minutes(20) }
        )
        #expect(windows.map(\.value) == expected)
        #expect(windows.first?.start == minutes(firstStart))
        #expect(windows.allSatisfy { $0.duration == minutes(window) })
    }

    @Test("The SDK's average over [00:04, 00:20] is 28.75")
    func average() throws {
        #expect(try WindowSearch.average(sdkPoints, start: minutes(4), end: minutes(20)) == 28.75)
    }

    @Test("A zero window returns the points that overlap the bounds")
    func zeroWindow() throws {
        #expect(try WindowSearch.rollingAverages(sdkPoints, window: 0, start: minutes(6), end: minutes(14)) == Array(sdkPoints[1...2]))
    }

    @Test("Every window with the minimum is returned, in time order")
    func allMinima() throws {
        let points = [30.0, 10, 10, 50, 10, 10].enumerated().map { TimedValue(start: Double($0.offset) * 1800, duration: 1800, value: $0.element) }
        let best = try WindowSearch.best(points, window: 3600)
        #expect(best.map(\.start) == [1800, 7200])
        #expect(best.allSatisfy { $0.value == 10 })
    }

    @Test("A window only counts where data covers it fully")
    func gaps() throws {
        let points = [TimedValue(start: 0, duration: 300, value: 1), TimedValue(start: 600, duration: 300, value: 2)]
        let windows = try WindowSearch.rollingAverages(points, window: 300)
        #expect(windows.map(\.start) == [0, 600])
    }

    @Test("Bad input is an error that says what", arguments: [
        ([TimedValue](), 300.0, nil, nil, WindowSearchError.noData),
        ([sdkPoints[1], sdkPoints[0]], 300.0, nil, nil, .unsorted(index: 1)),
        (sdkPoints, 300.0, minutes(10), minutes(5), .startNotBeforeEnd(start: 600, end: 300)),
        (sdkPoints, 300.0, -60.0, nil, .boundsOutsideData(start: -60, end: 1200, dataStart: 0, dataEnd: 1200)),
        (sdkPoints, minutes(30), nil, nil, .windowLongerThanData(window: 1800, available: 1200)),
        // A window shorter than a second (1e-9 minutes once trapped: every mean was 0/0), or not finite.
        (sdkPoints, 6e-8, nil, nil, .outOfRange(field: "window", value: 6e-8, expected: "0, or at least 1 s")),
        (sdkPoints, .infinity, nil, nil, .outOfRange(field: "window", value: .infinity, expected: "0, or at least 1 s")),
        // Points a millisecond long would step a search through millions of windows.
        ([TimedValue(start: 0, duration: 0.001, value: 1), TimedValue(start: 0.001, duration: 1e6, value: 2)], 300.0, nil, nil,
         .outOfRange(field: "tick", value: 0.001, expected: "at least 1 s")),
    ] as [([TimedValue], Double, Double?, Double?, WindowSearchError)])
    func errors(points: [TimedValue], window: Double, start: Double?, end: Double?, expected: WindowSearchError) {
        #expect(throws: expected) { try WindowSearch.best(points, window: window, start: start, end: end) }
    }

    @Test("Laws: every window lies in the bounds, its mean lies within its points' values, and the best is the minimum")
    func laws() throws {
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> Double {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Double(seed >> 11) / Double(1 << 53)
        }
        for _ in 0..<50 {
            let n = 4 + Int(next() * 60)
            let points = (0..<n).map { TimedValue(start: Double($0) * 1800, duration: 1800, value: 50 + next() * 500) }
            let window = Double(1 + Int(next() * 8)) * 1800
            let start = Double(Int(next() * 3)) * 900
            if start + window > points.last!.end {
                #expect(throws: WindowSearchError.self) { try WindowSearch.best(points, window: window, start: start) }
                continue
            }
            let windows = try WindowSearch.rollingAverages(points, window: window, start: start)
            let low = points.map(\.value).min()!, high = points.map(\.value).max()!
            for w in windows {
                #expect(w.start >= start && w.end <= points.last!.end + 1e-6)
                #expect(w.value >= low - 1e-9 && w.value <= high + 1e-9)
            }
            let best = try WindowSearch.best(points, window: window, start: start)
            #expect(best.allSatisfy { $0.value == windows.map(\.value).min() })
            #expect(best.map(\.start) == best.map(\.start).sorted())
        }
    }
}

@Suite("Shifting study")
struct ShiftingStudyTests {
    /// A week of half-hours with a daily dip and noise.
    static let week: [TimedValue] = (0..<(7 * 48)).map { i in
        let hour = Double(i % 48) / 2
        let noise = Double((i * 7919) % 13)
        return TimedValue(start: Double(i) * 1800, duration: 1800, value: 300 + 100 * cos(hour / 24 * 2 * .pi) + noise)
    }

    @Test("No flexibility saves nothing; more flexibility never saves less")
    func monotone() throws {
        let days = (1..<6).map { Double($0) * 86_400 }
        let flex = stride(from: 0.0, through: 8 * 3600, by: 1800).map { $0 }
        let rows = try ShiftingStudy.run(Self.week, days: days, usualStart: 3600, jobSeconds: 1800, flexibilities: flex)
        #expect(rows[0].savingFraction == 0)
        #expect(rows.allSatisfy { $0.days == days.count })
        for (a, b) in zip(rows, rows.dropFirst()) { #expect(b.savingFraction >= a.savingFraction - 1e-12) }
        #expect(rows.last!.savingFraction > 0)
    }

    @Test("Days whose search leaves the data are skipped, not guessed")
    func skipsDaysOutsideData() throws {
        let rows = try ShiftingStudy.run(Self.week, days: [0, 86_400], usualStart: 3600, jobSeconds: 1800, flexibilities: [0, 7200])
        #expect(rows.map(\.days) == [2, 1])
    }
}

@Suite("Window search plan")
struct WindowPlanTests {
    @Test("A plan is the windows, their minima and the first window; a window longer than the data throws instead of crashing")
    func plan() throws {
        let p = try WindowSearch.plan(sdkPoints, window: minutes(10))
        #expect(p.windows.map(\.value) == [15, 25, 35] && p.best.map(\.value) == [15] && p.startingNow.value == 15 && p.savingPercent == 0)
        let later = try WindowSearch.plan(Array(sdkPoints.reversed().enumerated().map { TimedValue(start: Double($0.offset) * 300, duration: 300, value: $0.element.value) }), window: minutes(10))
        #expect(later.best[0].value == 15 && later.startingNow.value == 35 && abs(later.savingPercent - 100 * 20 / 35) < 1e-12)
        #expect(throws: WindowSearchError.self) { try WindowSearch.plan(sdkPoints, window: minutes(30)) }
    }
}
