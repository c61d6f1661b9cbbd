import Accounting
import Testing
import Units

@Suite struct IntensitySeriesTests {
    static let series = CarbonSeries(region: "T", signal: .average, source: "test", points: [
        .init(epochSeconds: 100, intensity: CarbonIntensity(gramsPerKWh: 300)),
        .init(epochSeconds: 200, intensity: CarbonIntensity(gramsPerKWh: 100)),
        .init(epochSeconds: 400, intensity: CarbonIntensity(gramsPerKWh: 500)),
    ])

    @Test(arguments: [(0.0, 300.0), (100, 300), (199.9, 300), (200, 100), (399, 100), (400, 500), (1e9, 500)])
    func isAStepFunctionThroughItsPoints(at t: Double, expected: Double) {
        #expect(Self.series.intensity(atEpochSeconds: t).gramsPerKWh == expected)
    }

    @Test func lookupAgreesWithALinearScanAtRandomTimes() {
        var points: [CarbonSeries.Step] = []
        var t = 0.0
        var state: UInt64 = 42
        func next() -> Double {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Double(state >> 11) * 0x1.0p-53
        }
        for _ in 0..<200 {
            t += 1 + next() * 1800
            points.append(.init(epochSeconds: t, intensity: CarbonIntensity(gramsPerKWh: next() * 800)))
        }
        let series = CarbonSeries(region: "R", signal: .marginal, source: "random", points: points)
        for _ in 0..<1000 {
            let q = next() * (t + 3600) - 1800
            let expected = points.last { $0.epochSeconds <= q }?.intensity ?? points[0].intensity
            #expect(series.intensity(atEpochSeconds: q) == expected)
        }
    }

    @Test func timeWeightedMeanWeighsEachStepByItsDuration() {
        // [150, 450): 50 s at 300, 200 s at 100, 50 s at 500 → (15,000 + 20,000 + 25,000) / 300 = 200.
        #expect(abs(Self.series.meanIntensity(fromEpochSeconds: 150, to: 450).gramsPerKWh - 200) < 1e-12)
        let flat = CarbonSeries.constant(CarbonIntensity(gramsPerKWh: 582.3), region: "CN", signal: .average, source: "test")
        #expect(flat.meanIntensity(fromEpochSeconds: -5, to: 1e6).gramsPerKWh == 582.3)
    }

    @Test func wattTimePoundsConvertToGrams() {
        // REFERENCE.md §6: g/kWh = lbs/MWh × 453.59237 / 1000.
        #expect(abs(CarbonIntensity.poundsPerMWh(1000).gramsPerKWh - 453.59237) < 1e-9)
    }

    @Test func emissionsAreEnergyTimesIntensity() {
        let e = Energy.kilowattHours(2.5)
        #expect(abs(e.emissions(at: CarbonIntensity(gramsPerKWh: 400)).grams - 1000) < 1e-9)
    }
}

@Suite struct EmbodiedModelTests {
    @Test func llmCarbonH800PackageFromDieAndMemory() {
        let m = EmbodiedModel(id: "x", dieAreaSquareCentimetres: 8.14, kilogramsPerSquareCentimetre: 1.8, memoryGigabytes: 80, kilogramsPerGigabyte: 0.4, lifetimeYears: 5, source: "test")
        #expect(abs(m.perGPU.kilograms - (8.14 * 1.8 + 32)) < 1e-9)
    }

    @Test func reproducesTheSCISpecificationsWorkedExample() {
        // SCI v1.1.0: TE 1,000 kg, 4-year life, 1 hour reserved → 28.54 g.
        let m = EmbodiedModel(id: "sci", dieAreaSquareCentimetres: 1000, kilogramsPerSquareCentimetre: 1, memoryGigabytes: 0, kilogramsPerGigabyte: 0, lifetimeYears: 4, source: "SCI")
        #expect(abs(m.share(gpuSeconds: 3600).grams - 28.54) < 0.005)
    }

    @Test func sharesAddUpOverAnySplitOfTheTime() {
        let m = EmbodiedModel(id: "x", dieAreaSquareCentimetres: 8.14, kilogramsPerSquareCentimetre: 1.8, memoryGigabytes: 80, kilogramsPerGigabyte: 0.4, lifetimeYears: 5, source: "test")
        let parts = [0.5, 17, 3600, 12.25]
        let sum = parts.map { m.share(gpuSeconds: $0).grams }.reduce(0, +)
        #expect(abs(sum - m.share(gpuSeconds: parts.reduce(0, +)).grams) < 1e-12)
        #expect(!m.validate().isEmpty == false)
        let bad = EmbodiedModel(id: "x", dieAreaSquareCentimetres: -1, kilogramsPerSquareCentimetre: 1, memoryGigabytes: 0, kilogramsPerGigabyte: 0, lifetimeYears: 0, source: "")
        #expect(bad.validate().map(\.field) == ["dieAreaCm2", "lifetimeYears"])
    }
}
