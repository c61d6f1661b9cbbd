import Units
import Foundation
import Accounting
import Serving
import Testing

@Suite struct RandomTests {
    @Test func splitMix64MatchesItsReferenceStream() {
        // Reference outputs of SplitMix64 seeded with 0 (Vigna's splitmix64.c).
        var rng = SplitMix64(seed: 0)
        #expect(rng.next() == 0xE220_A839_7B1D_CDAF)
        #expect(rng.next() == 0x6E78_9E6A_A1B9_65F4)
    }

    @Test(arguments: [0.5, 1.0, 2.0, 3.0])
    func gammaGapsHaveMeanOneAndTheAskedVariation(cv: Double) {
        var rng = SplitMix64(seed: 99)
        let n = 200_000
        let gaps = (0..<n).map { _ in ArrivalProcess.gamma(cv: cv).unitGapForTesting(&rng) }
        let mean = gaps.reduce(0, +) / Double(n)
        let sd = (gaps.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)).squareRoot()
        #expect(abs(mean - 1) < 0.02)
        #expect(abs(sd / mean - cv) < 0.05 * cv)
    }

    @Test func lognormalLengthsHaveTheAskedMean() {
        var rng = SplitMix64(seed: 1)
        let d = LengthDistribution.lognormal(mean: 1000, sigma: 1, min: 1, max: 10_000_000)
        let n = 200_000
        let mean = Double((0..<n).map { _ in d.sample(&rng) }.reduce(0, +)) / Double(n)
        #expect(abs(mean / 1000 - 1) < 0.02)
    }
}

@Suite struct GeneratorTests {
    static let start = 1_740_614_400.0 // 2025-02-27T00:00:00Z

    @Test func arrivalsComeAtTheAskedRateWithSequentialIDs() {
        let spec = GeneratorSpec(ratePerSecond: 50, prompt: .fixed(10), output: .uniform(min: 1, max: 9), cachedFraction: 0.563)
        var stream = GeneratedStream(spec, startEpochSeconds: Self.start, seed: 4)
        var last = -1.0
        var n = 0
        while let r = stream.next(), r.arrival < 2000 {
            #expect(r.id == n)
            #expect(r.arrival >= last)
            #expect(r.cachedTokens == 6 && (1...9).contains(r.outputTokens))
            last = r.arrival
            n += 1
        }
        #expect(abs(Double(n) / 2000 / 50 - 1) < 0.02)
    }

    @Test func aDailyProfileShapesTheRateAndKeepsTheDailyMean() {
        // Three times the rate from 12:00 to 24:00 as from 00:00 to 12:00 (UTC): means 0.5 and 1.5.
        let profile = DailyProfile(points: [(0, 1), (43_200, 3)], utcOffsetSeconds: 0)
        let spec = GeneratorSpec(ratePerSecond: 2, profile: profile, prompt: .fixed(1), output: .fixed(1))
        var stream = GeneratedStream(spec, startEpochSeconds: Self.start, seed: 8)
        var morning = 0
        var afternoon = 0
        while let r = stream.next(), r.arrival < 86_400 {
            if r.arrival < 43_200 { morning += 1 } else { afternoon += 1 }
        }
        #expect(abs(Double(morning) / 43_200 - 1.0) < 0.03)
        #expect(abs(Double(afternoon) / 43_200 - 3.0) < 0.03)
    }

    @Test func theScheduleAsAProfileFollowsNodeCountsInLocalTime() {
        let schedule = NodeSchedule(points: [.init(second: 0, nodes: 100), .init(second: 3600, nodes: 300)], utcOffsetSeconds: 8 * 3600)
        let profile = schedule.asDailyProfile.normalised
        #expect(abs(profile.meanFactor - 1) < 1e-12)
        // 2025-02-27T16:30Z is 00:30 in UTC+8: the 100-node hour.
        let (nodesThen, until) = schedule.nodes(atEpochSeconds: Self.start + 16.5 * 3600)
        #expect(nodesThen == 100)
        #expect(until == Self.start + 17 * 3600)
    }
}

@Suite struct TraceTests {
    func text(_ name: String) throws -> String { try String(contentsOfFile: fixtures + "/" + name, encoding: .utf8) }

    @Test func azureRowsAreReadWithTheirWallClockTimes() throws {
        let parsed = try TraceParser.parse(try text("azure-small.csv"), file: "azure-small.csv", format: .azure)
        #expect(parsed.rows.count == 4)
        // 2023-11-16 18:15:46.68059 UTC.
        #expect(abs(parsed.startEpochSeconds! - 1_700_158_546.68059) < 1e-4)
        let requests = parsed.requests(ReplayOptions())
        #expect(requests.map(\.promptTokens) == [374, 396, 1200, 80])
        #expect(requests.map(\.outputTokens) == [44, 109, 7, 1])
        #expect(abs(requests[1].arrival - 4.314579) < 1e-6)
    }

    @Test func aMalformedLineNamesFileLineAndField() throws {
        #expect {
            try TraceParser.parse(try text("azure-bad.csv"), file: "azure-bad.csv", format: .azure)
        } throws: { error in
            guard let e = error as? TraceError else { return false }
            return e.file == "azure-bad.csv" && e.line == 3 && e.field == "GeneratedTokens" && e.description.contains("--skip-bad-lines")
        }
        let skipped = try TraceParser.parse(try text("azure-bad.csv"), file: "azure-bad.csv", format: .azure, skipBadLines: true)
        #expect(skipped.rows.count == 2)
        #expect(skipped.skippedLines == 2)
        #expect(skipped.skippedExamples.map(\.field) == ["GeneratedTokens", "ContextTokens"])
    }

    @Test func mooncakePrefixBlocksSeenBeforeAreCacheHits() throws {
        let parsed = try TraceParser.parse(try text("mooncake-small.jsonl"), file: "m.jsonl", format: .mooncake)
        let requests = parsed.requests(ReplayOptions())
        // Block ids [0,1,2] new; [0,1,3,4] reuses 2 blocks; [5,1] none (the prefix starts with a new block); [0,1] both, capped at length − 1.
        #expect(requests.map(\.cachedTokens) == [0, 1024, 0, 1023])
        #expect(requests.map(\.arrival) == [0, 0.25, 0.5, 1.75])
    }

    @Test func jouleFormatsReadColumnsByNameAndKeysByName() throws {
        let csv = try TraceParser.parse(try text("joule-small.csv"), file: "j.csv", format: .jouleCSV).requests(ReplayOptions())
        #expect(csv.map(\.promptTokens) == [100, 300])
        #expect(csv.map(\.cachedTokens) == [20, 0])
        #expect(throws: TraceError.self) {
            try TraceParser.parse(try text("joule-small.jsonl"), file: "j.jsonl", format: .jouleJSONL)
        }
        let lenient = try TraceParser.parse(try text("joule-small.jsonl"), file: "j.jsonl", format: .jouleJSONL, skipBadLines: true)
        #expect(lenient.rows.count == 2 && lenient.skippedExamples.first?.field == "cachedTokens" && lenient.skippedExamples.first?.line == 3)
    }

    @Test func scaleKnobsWindowSpeedUpAndLengthenAReplay() throws {
        let parsed = try TraceParser.parse(try text("azure-small.csv"), file: "a.csv", format: .azure)
        var options = ReplayOptions()
        options.windowStart = 4
        options.windowEnd = 59
        options.rateScale = 2
        options.tokenScale = 0.5
        options.cachedFraction = 0.5
        let requests = parsed.requests(options)
        #expect(requests.count == 2)
        #expect(requests.map(\.id) == [0, 1])
        #expect(abs(requests[0].arrival - (4.314579 - 4) / 2) < 1e-6)
        #expect(requests.map(\.promptTokens) == [198, 600])
        #expect(requests.map(\.cachedTokens) == [99, 300])
    }

    @Test(arguments: [
        ("2023-11-16 18:15:46.6805900", 1_700_158_546.68059), ("1970-01-01 00:00:00", 0), ("2000-02-29T12:00:00Z", 951_825_600),
    ])
    func wallClockTimesAreReadAsUTC(text: String, epoch: Double) {
        #expect(abs(WallClock.epochSeconds(text)! - epoch) < 1e-5)
    }

    @Test func isoTimesWithZonesAreConvertedToUTC() {
        #expect(WallClock.iso8601("2025-02-27T12:00:00+08:00") == WallClock.iso8601("2025-02-27T04:00:00Z"))
        #expect(WallClock.iso8601("2025-02-27T04:00Z") == 1_740_628_800)
        #expect(WallClock.iso8601("27/02/2025") == nil)
        #expect(WallClock.epochSeconds("2023-13-01 00:00:00") == nil)
    }
}

@Suite struct QuantileSketchTests {
    @Test func quantilesAreWithinHalfAPercentOfTheExactOnes() {
        var rng = SplitMix64(seed: 3)
        var sketch = QuantileSketch()
        var values: [Double] = []
        for _ in 0..<50_000 {
            let v = exp(rng.normal() * 2) * 0.05
            values.append(v)
            sketch.add(v)
        }
        values.sort()
        for q in [0.01, 0.5, 0.9, 0.99, 0.999] {
            let exact = values[Int((q * Double(values.count)).rounded(.up)) - 1]
            #expect(abs(sketch.quantile(q)! / exact - 1) < 0.004, "q \(q)")
        }
        #expect(QuantileSketch().quantile(0.5) == nil)
    }

    /// Merging is adding: the sketch of two streams merged equals the sketch of both, whatever the
    /// split, and its portable form rebuilds it exactly.
    @Test(arguments: [1, 137, 25_000, 49_999])
    func mergingTwoSketchesIsSketchingBothStreams(split: Int) throws {
        var rng = SplitMix64(seed: 11)
        let values = (0..<50_000).map { i in i % 97 == 0 ? 0 : exp(rng.normal() * 3) * 2 }
        var whole = QuantileSketch(), left = QuantileSketch(), right = QuantileSketch()
        for (i, v) in values.enumerated() {
            whole.add(v)
            if i < split { left.add(v) } else { right.add(v) }
        }
        left.merge(right)
        let rebuilt = try #require(QuantileSketch(buckets: whole.buckets, zeros: whole.zeroCount, minimum: whole.minimum, maximum: whole.maximum))
        for q in [0.0, 0.001, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0] {
            #expect(left.quantile(q) == whole.quantile(q), "q \(q)")
            #expect(rebuilt.quantile(q) == whole.quantile(q), "q \(q)")
        }
        #expect(left.count == whole.count && left.zeroCount == whole.zeroCount)
        #expect(left.buckets.map(\.key) == whole.buckets.map(\.key))
    }

    @Test func aPortableFormThatDoesNotAddUpIsRefused() {
        #expect(QuantileSketch(buckets: [(key: 0, count: 1)], zeros: 0, minimum: 0, maximum: 1) == nil)
        #expect(QuantileSketch(buckets: [(key: 130_000, count: 0)], zeros: 0, minimum: 1, maximum: 1) == nil)
        #expect(QuantileSketch(buckets: [(key: 130_000, count: 2)], zeros: -1, minimum: 1, maximum: 1) == nil)
        #expect(QuantileSketch(buckets: [(key: 130_000, count: 2)], zeros: 0, minimum: 2, maximum: 1) == nil)
    }

    @Test func extremeValuesNeverTrap() {
        var s = QuantileSketch()
        for v in [Double.nan, -1, 0, 1e-300, Double.leastNonzeroMagnitude, 1e300, .greatestFiniteMagnitude, .infinity] { s.add(v) }
        #expect(s.count == 8)
        #expect(s.quantile(1) == .infinity)
        #expect(s.quantile(0.5) != nil)
    }
}
