import Accounting
import Testing

@testable import Reports

@Suite("Model against meters")
struct ModelVsMetersTests {
    /// A finished request on unit 0 whose GPU energy is `a` J per uncached prompt token plus `b` per output token.
    static func record(_ id: Int, arrival: Double, prompt: Int, cached: Int = 0, output: Int, a: Double, b: Double, decodeSeconds: Double = 5) -> RequestRecord {
        let first = arrival + 0.2
        let gpu = a * Double(prompt - cached) + b * Double(output)
        return RequestRecord(
            id: id, inFlight: false, arrival: arrival, prefillStart: arrival, firstToken: first, finish: first + decodeSeconds, prefillUnit: 0, decodeUnit: 0,
            promptTokens: prompt, cachedTokens: cached, outputTokens: output, gpuActiveJoules: gpu * 0.9, gpuIdleJoules: gpu * 0.1, hostJoules: 0,
            facilityOverheadJoules: 0, facilityJoules: gpu, gpuSeconds: 1, intensityGramsPerKWh: 0, operationalCarbonGrams: 0, embodiedCarbonGrams: 0,
            meanPowerWatts: 0
        )
    }

    static func run(a: Double, b: Double, shift: Double = 0) -> [RequestRecord] {
        (0..<60).map { i in record(i, arrival: shift + Double(i) * 1.5, prompt: 200 + (i * 137) % 1800, cached: (i % 3) * 50, output: 20 + (i * 53) % 400, a: a, b: b) }
    }

    @Test("A run against itself: every request matched, ratio 1, the phase fit exact, no delta")
    func identity() {
        let m = Self.run(a: 0.2, b: 3)
        let x = ModelVsMeters.compare(measured: m, simulated: m, measuredRun: 1, simulatedRun: 2)
        #expect(x.matchedRequests == 60 && x.ratioP5 == 1 && x.ratioP95 == 1)
        #expect(abs(x.phases[0].measured - 0.2) < 1e-9 && abs(x.phases[1].measured - 3) < 1e-9)
        #expect(x.phases.allSatisfy { abs($0.deltaPercent) < 1e-6 } && abs(x.fitR2Measured - 1) < 1e-9)
        #expect(x.batches.allSatisfy { $0.measuredRequests == $0.simulatedRequests })
    }

    @Test("A replay started elsewhere on the clock still matches; a model 20 % high on decode shows +20 %")
    func shiftedAndBiased() {
        let m = Self.run(a: 0.2, b: 3), s = Self.run(a: 0.2, b: 3.6, shift: 1234.5)
        let x = ModelVsMeters.compare(measured: m, simulated: s, measuredRun: 1, simulatedRun: 2)
        #expect(x.matchedRequests == 60)
        #expect(abs(x.phases[1].deltaPercent - 20) < 1e-6 && abs(x.phases[0].deltaPercent) < 1e-6)
        #expect(x.ratioP5! > 1 && x.ratioP95! < 1.2 + 1e-9)
    }

    @Test("Batch bins count requests by how many decoded beside them")
    func batches() {
        // Three requests decoding over the same 5 s, one alone later.
        let rs = [0.0, 0.0, 0.0, 100].enumerated().map { i, t in Self.record(i, arrival: t, prompt: 100, output: 50, a: 0.1, b: 1) }
        let bins = ModelVsMeters.batchBins(rs)
        #expect(bins[2]?.count == 3 && bins[1]?.count == 1)
    }
}
