import Accounting
import Testing
import Units

/// The attribution seam: any producer of unit draws gets per-request figures that add up, under
/// every policy.
@Suite struct AttributionTests {
    /// A deterministic random source for the cases.
    struct Random {
        var state: UInt64
        mutating func next() -> Double {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Double(state >> 11) * 0x1.0p-53
        }
        mutating func int(_ range: ClosedRange<Int>) -> Int { range.lowerBound + Int(next() * Double(range.count)) % range.count }
    }

    /// Random intervals of random unit draws: some units idle only, some intervals with no work.
    static func feed(_ book: inout AttributionBook<Int>, seed: UInt64) -> (requests: AttributedDraw, units: AttributedDraw, intervals: Int) {
        var r = Random(state: seed)
        var requestTotal = AttributedDraw(), unitTotal = AttributedDraw()
        let intervals = r.int(3...12)
        for _ in 0..<intervals {
            let working = r.next() < 0.8
            for unit in 0..<r.int(1...5) {
                if working && r.next() < 0.7 {
                    for _ in 0..<r.int(1...6) {
                        let n = r.int(1...8)
                        let parts = (0..<n).map { _ in r.next() + 0.01 }
                        let sum = parts.reduce(0, +)
                        let draw = Draw(gpuJoules: r.next() * 5000, hostJoules: r.next() * 900, carbonGrams: r.next() * 2, gpuSeconds: r.next() * 8)
                        book.step(unit: unit, draw: draw, seconds: r.next() * 0.5 + 0.01,
                                  requests: parts.enumerated().map { (request: r.int(0...40) * 10 + $0.offset, part: $0.element / sum) })
                    }
                }
                book.idle(unit: unit, draw: Draw(gpuJoules: r.next() * 3000, hostJoules: r.next() * 700, carbonGrams: r.next(), gpuSeconds: r.next() * 60))
            }
            let (requests, units) = book.close()
            for d in requests.values { requestTotal.direct += d.direct; requestTotal.idle += d.idle }
            for d in units.values { unitTotal.direct += d.direct; unitTotal.idle += d.idle }
        }
        return (requestTotal, unitTotal, intervals)
    }

    static func close(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-9 * max(abs(b), 1e-300) }

    @Test("Requests plus what is carried equal what the units drew, field by field",
          arguments: 1...40 as ClosedRange<UInt64>, AttributionPolicies.all.map(\.id))
    func conservation(seed: UInt64, policy: String) {
        var book = AttributionBook<Int>(policy: AttributionPolicies.named(policy)!)
        let (requests, units, _) = Self.feed(&book, seed: seed)
        let got = requests.total + book.carried, drawn = units.total
        #expect(Self.close(got.it.joules, drawn.it.joules), "seed \(seed): \(got.it) vs \(drawn.it)")
        #expect(Self.close(got.carbonGrams, drawn.carbonGrams))
        #expect(Self.close(got.gpuSeconds, drawn.gpuSeconds))
        // Direct draws are shared out exactly; only idle draws are attributed.
        #expect(Self.close(requests.direct.gpuJoules, units.direct.gpuJoules))
        #expect(Self.close(requests.idle.it.joules + book.carried.it.joules, units.idle.it.joules))
    }

    @Test("Proportional to active: idle follows active energy; equal per request-second: it follows time")
    func eachPolicyWeighsWhatItSays() {
        for policy in AttributionPolicies.all {
            var book = AttributionBook<String>(policy: policy)
            // One step of 1 s: request a draws 3× the active energy of b.
            book.step(unit: 0, draw: Draw(gpuJoules: 400), seconds: 1, requests: [("a", 0.75), ("b", 0.25)])
            // A second step of 1 s in which only b runs.
            book.step(unit: 0, draw: Draw(gpuJoules: 100), seconds: 1, requests: [("b", 1)])
            book.idle(unit: 0, draw: Draw(gpuJoules: 900))
            let (r, _) = book.close()
            let a = r["a"]!.idle.gpuJoules, b = r["b"]!.idle.gpuJoules
            #expect(Self.close(a + b, 900))
            if policy is ProportionalToActive {
                // Active: a 300 J, b 200 J.
                #expect(Self.close(a, 540) && Self.close(b, 360))
            } else {
                // Request-seconds: a 1, b 2.
                #expect(Self.close(a, 300) && Self.close(b, 600))
            }
        }
    }

    @Test("A unit that did no work hands its idle draw to the cluster's requests; a cluster that did none carries it")
    func idleOfUnitsWithoutWorkIsPooledThenCarried() {
        var book = AttributionBook<Int>(policy: ProportionalToActive())
        book.idle(unit: 0, draw: Draw(gpuJoules: 100))
        _ = book.close()
        #expect(book.carried.gpuJoules == 100)
        book.step(unit: 1, draw: Draw(gpuJoules: 10), seconds: 1, requests: [(7, 1)])
        book.idle(unit: 0, draw: Draw(gpuJoules: 50))
        let (r, _) = book.close()
        #expect(Self.close(r[7]!.idle.gpuJoules, 150))
        #expect(book.carried == .zero)
    }

    @Test("Weights are linear in the work, so running sums can be differenced")
    func weightsAreLinear() {
        var r = Random(state: 9)
        for policy in AttributionPolicies.all {
            for _ in 0..<200 {
                let x = StepWork(activeGPUJoules: r.next() * 1e4, requestSeconds: r.next() * 10)
                let y = StepWork(activeGPUJoules: r.next() * 1e4, requestSeconds: r.next() * 10)
                let sum = StepWork(activeGPUJoules: x.activeGPUJoules + y.activeGPUJoules, requestSeconds: x.requestSeconds + y.requestSeconds)
                #expect(Self.close(policy.weight(sum), policy.weight(x) + policy.weight(y)))
                // The two coefficients a producer may weigh steps with give the same weight.
                #expect(Self.close(LinearWeight(policy)(activeGPUJoules: x.activeGPUJoules, requestSeconds: x.requestSeconds), policy.weight(x)))
            }
        }
    }

    @Test("Policies are found by id, and unknown ids are not")
    func registry() {
        #expect(AttributionPolicies.all.map(\.id) == ["proportional-to-active", "equal-per-request-second"])
        #expect(AttributionPolicies.named("equal-per-request-second") is EqualPerRequestSecond)
        #expect(AttributionPolicies.named("proportional") == nil)
    }
}
