import Accounting
import Serving
import Testing

/// The conservation law: every joule (and gram, and GPU-second) the cluster drew lands on exactly one
/// request, in flight or finished, to 1e-9 relative — on randomized scenarios.
@Suite struct ConservationTests {
    /// A random scenario and workload from `seed`: topology, unit counts, batch limits, accounting
    /// interval, a stepped carbon series, an optional node schedule and an optional cut-off.
    static func randomCase(_ seed: UInt64) -> (ServingScenario, [ServingRequest]) {
        var r = CaseRandom(seed)
        let topology: ServingTopology = r.bool()
            ? .disaggregated(
                prefill: litePool(.prefill, units: r.int(1...3), ep: 8, tokenBudgetPerRank: r.int(256...4096)),
                decode: litePool(.decode, units: r.int(1...3), ep: [8, 16][r.int(0...1)], maxBatchPerRank: r.int(1...32))
            )
            : .colocated(litePool(.colocated, units: r.int(1...3), ep: 8, maxBatchPerRank: r.int(1...32), tokenBudgetPerRank: r.int(256...4096)))
        let start = 1_740_628_800.0 + r.double(0...86_400)
        var points: [CarbonSeries.Step] = []
        var t = start - 600
        for _ in 0..<40 {
            points.append(.init(epochSeconds: t, intensity: CarbonIntensity(gramsPerKWh: r.double(20...900))))
            t += r.double(30...900)
        }
        let carbon = CarbonSeries(region: "R", signal: r.bool() ? .average : .marginal, source: "random", points: points)
        var schedule: NodeSchedule?
        if r.bool() {
            // Changes every few minutes of local time, so that units leave and rejoin during the run.
            let base = ((start.truncatingRemainder(dividingBy: 86_400)) / 60).rounded(.down) * 60
            schedule = NodeSchedule(points: (0..<6).map { i in
                .init(second: (base + Double(i) * 300).truncatingRemainder(dividingBy: 86_400), nodes: r.int(1...8))
            }, utcOffsetSeconds: 0)
        }
        let count = r.int(20...250)
        let requests = randomRequests(&r, count: count, rate: r.double(0.5...30))
        let duration: Double? = r.bool() ? r.double(5...(requests.last!.arrival + 30)) : nil
        let s = scenario(topology, duration: duration, interval: r.double(3...90), carbon: carbon, schedule: schedule,
                         routing: r.bool() ? .leastLoaded : .roundRobin, start: start)
        return (s, requests)
    }

    @Test(arguments: 1...24 as ClosedRange<UInt64>, AttributionPolicies.all.map(\.id))
    func requestsAddUpToWhatTheClusterDrew(seed: UInt64, policy: String) throws {
        var (s, requests) = Self.randomCase(seed)
        s.attribution = AttributionPolicies.named(policy)!
        let (summary, records, intervals) = try simulate(s, requests)
        let pue = s.site.pue

        let clusterIT = intervals.map(\.itJoules).reduce(0, +)
        let clusterFacility = intervals.map(\.facilityJoules).reduce(0, +)
        let recorded = records.map(\.facilityJoules).reduce(0, +)
        let unattributed = summary.unattributedEnergyKWh * 3.6e6
        #expect(clusterFacility > 0)
        #expect(abs(clusterFacility - clusterIT * pue) <= 1e-9 * clusterFacility)
        #expect(abs(recorded + unattributed - clusterFacility) <= 1e-9 * clusterFacility, "seed \(seed): records \(recorded) + unattributed \(unattributed) vs cluster \(clusterFacility)")
        #expect(summary.conservationResidual <= 1e-9)
        #expect(abs(summary.energyKWh * 3.6e6 - clusterFacility) <= 1e-9 * clusterFacility)

        // Each kind of energy is conserved on its own.
        let gpuActive = intervals.map(\.gpuActiveJoules).reduce(0, +)
        #expect(abs(records.map(\.gpuActiveJoules).reduce(0, +) - gpuActive) <= 1e-9 * gpuActive)
        let hostAndIdle = intervals.map { $0.hostActiveJoules + $0.hostIdleJoules + $0.gpuIdleJoules }.reduce(0, +)
        let recordedHostAndIdle = records.map { $0.hostJoules + $0.gpuIdleJoules }.reduce(0, +)
        #expect(abs(recordedHostAndIdle + unattributed / pue - hostAndIdle) <= 1e-9 * clusterIT)

        // Carbon and GPU-time (hence embodied carbon) are shared out the same way, when nothing is left over.
        if unattributed == 0 {
            let carbon = intervals.map(\.operationalCarbonGrams).reduce(0, +)
            #expect(abs(records.map(\.operationalCarbonGrams).reduce(0, +) - carbon) <= 1e-9 * carbon)
            let gpuSeconds = intervals.map(\.gpuSeconds).reduce(0, +)
            #expect(abs(records.map(\.gpuSeconds).reduce(0, +) - gpuSeconds) <= 1e-9 * gpuSeconds)
            #expect(abs(records.map(\.embodiedCarbonGrams).reduce(0, +) - summary.embodiedCarbonKg * 1e3) <= 1e-9 * summary.embodiedCarbonKg * 1e3)
        }

        // Every request appears exactly once, finished or in flight.
        let ids = records.map(\.id)
        #expect(Set(ids).count == ids.count)
        let arrivedBeforeEnd = requests.filter { $0.arrival < (s.duration ?? .infinity) }.count
        #expect(records.count == arrivedBeforeEnd)
        #expect(records.filter { !$0.inFlight }.count == summary.requests)
        #expect(records.filter(\.inFlight).count == summary.inFlightRequests)
    }

    @Test(arguments: 1...12 as ClosedRange<UInt64>)
    func eachRecordsPartsAddUpAndItsTimesAreInOrder(seed: UInt64) throws {
        let (s, requests) = Self.randomCase(seed + 100)
        let (_, records, _) = try simulate(s, requests)
        for r in records {
            #expect(abs(r.itJoules * s.site.pue - r.facilityJoules) <= 1e-9 * max(r.facilityJoules, 1e-300))
            #expect(abs(r.gpuActiveJoules + r.gpuIdleJoules + r.hostJoules + r.facilityOverheadJoules - r.facilityJoules) <= 1e-9 * max(r.facilityJoules, 1e-300))
            #expect(r.gpuActiveJoules >= 0 && r.gpuIdleJoules >= -1e-9 && r.hostJoules >= 0)
            if let p = r.prefillStart { #expect(p >= r.arrival) }
            if let f = r.firstToken { #expect(f > (r.prefillStart ?? .infinity) - 1e-12) }
            if let e = r.finish { #expect(e >= r.firstToken ?? .infinity) }
            if !r.inFlight {
                #expect(r.gpuActiveJoules > 0, "a finished request was in at least one step")
                #expect(r.intensityGramsPerKWh >= 20 && r.intensityGramsPerKWh <= 900)
            }
        }
    }

    @Test("The policy chooses who carries idle energy, never how much there is")
    func policiesMoveIdleEnergyBetweenRequestsOnly() throws {
        var moved = 0
        for seed in 1...8 as ClosedRange<UInt64> {
            var (s, requests) = Self.randomCase(seed)
            s.attribution = ProportionalToActive()
            let (a, recordsA, intervalsA) = try simulate(s, requests)
            s.attribution = EqualPerRequestSecond()
            let (b, recordsB, intervalsB) = try simulate(s, requests)
            // The cluster is the same simulation: intervals, active energy, summary totals.
            #expect(intervalsA == intervalsB)
            #expect(a.energyKWh == b.energyKWh && a.requests == b.requests && b.attributionPolicy == "equal-per-request-second")
            #expect(zip(recordsA, recordsB).allSatisfy { $0.id == $1.id && $0.gpuActiveJoules == $1.gpuActiveJoules })
            // Idle energy lands differently on at least some requests.
            if zip(recordsA, recordsB).contains(where: { abs($0.gpuIdleJoules - $1.gpuIdleJoules) > 1e-9 * max($0.facilityJoules, 1e-300) }) { moved += 1 }
        }
        #expect(moved > 0)
    }
}
