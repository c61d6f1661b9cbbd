import Hardware
import MoE
import Accounting
import Serving
import Testing
import Units

@Suite struct FleetSizerTests {
    static let model = try! library.model("deepseek-v2-lite")
    static func sizer() -> FleetSizer {
        FleetSizer(
            model: model, node: try! library.node("h800"), site: try! library.site("default"),
            topology: .disaggregated(prefill: litePool(.prefill, units: 1, ep: 8), decode: litePool(.decode, units: 1, ep: 8))
        )
    }
    static func workload(rate: Double) -> GeneratorSpec {
        GeneratorSpec(
            ratePerSecond: rate, profile: DailyProfile(points: [(0, 1), (43_200, 3)], utcOffsetSeconds: 0),
            prompt: .lognormal(mean: 1000, sigma: 0.5, min: 16, max: 8192), output: .fixed(200), cachedFraction: 0.3
        )
    }
    static let slo = FleetSLO(timePerOutputToken: .milliseconds(50), prefillStep: .milliseconds(2000))

    @Test(arguments: [10.0, 100, 1000])
    func everyStretchHasTheCapacityItsLoadNeeds(rate: Double) throws {
        let s = try Self.sizer().size(Self.workload(rate: rate), startEpochSeconds: 0, duration: 86_400, slo: Self.slo)
        #expect(s.segments.count == 2)
        #expect(abs(s.segments.map(\.seconds).reduce(0, +) - 86_400) < 1e-6)
        for seg in s.segments {
            #expect(Double(seg.prefillUnits) * s.prefill.tokensPerSecondPerUnit >= seg.inputTokensPerSecond)
            #expect(Double(seg.decodeUnits) * s.decode.tokensPerSecondPerUnit >= seg.outputTokensPerSecond)
            // And not one unit more than needed.
            #expect(Double(seg.decodeUnits - 1) * s.decode.tokensPerSecondPerUnit < seg.outputTokensPerSecond)
        }
        #expect(s.decode.stepSeconds <= 0.05 && s.prefill.stepSeconds <= 2)
        // The daily mean of the profile is 1: the busy half carries 1.5×, the quiet half 0.5× the mean rate.
        #expect(abs(s.segments[1].outputTokensPerSecond / s.segments[0].outputTokensPerSecond - 3) < 1e-9)
    }

    @Test func moreLoadNeverNeedsFewerNodesAndATighterSLONeverNeedsFewer() throws {
        let a = try Self.sizer().size(Self.workload(rate: 100), startEpochSeconds: 0, duration: 86_400, slo: Self.slo)
        let b = try Self.sizer().size(Self.workload(rate: 200), startEpochSeconds: 0, duration: 86_400, slo: Self.slo)
        let tight = try Self.sizer().size(Self.workload(rate: 100), startEpochSeconds: 0, duration: 86_400,
                                          slo: FleetSLO(timePerOutputToken: .milliseconds(20), prefillStep: .milliseconds(500)))
        #expect(b.nodeHours >= a.nodeHours)
        #expect(tight.nodeHours >= a.nodeHours)
        #expect(tight.decode.operatingPoint <= a.decode.operatingPoint)
    }

    @Test func anImpossibleSLOIsAnErrorNotAFleet() {
        #expect(throws: FleetSizingError.self) {
            try Self.sizer().size(Self.workload(rate: 10), startEpochSeconds: 0, duration: 86_400,
                                  slo: FleetSLO(timePerOutputToken: .microseconds(10), prefillStep: .milliseconds(2000)))
        }
        #expect(throws: FleetSizingError.self) {
            try FleetSizer(model: Self.model, node: try library.node("h800"), site: try library.site("default"),
                           topology: .colocated(litePool(.colocated, units: 1, ep: 8)))
                .size(Self.workload(rate: 10), startEpochSeconds: 0, duration: 86_400, slo: Self.slo)
        }
    }
}
