import Accounting
import Serving
import Testing

@Suite struct SimulatorTests {
    static let disaggregated = ServingTopology.disaggregated(prefill: litePool(.prefill, units: 2, ep: 8), decode: litePool(.decode, units: 2, ep: 8))

    @Test func aTraceReplayServesExactlyTheTracesRequestsAndTokens() throws {
        var r = CaseRandom(7)
        let requests = randomRequests(&r, count: 400, rate: 20)
        let (summary, records, _) = try simulate(scenario(Self.disaggregated), requests)
        #expect(summary.requests == requests.count)
        #expect(summary.inFlightRequests == 0)
        #expect(summary.inputTokens == requests.map(\.promptTokens).reduce(0, +))
        #expect(summary.cachedTokens == requests.map(\.cachedTokens).reduce(0, +))
        #expect(summary.outputTokens == requests.map(\.outputTokens).reduce(0, +))
        #expect(summary.unattributedEnergyKWh == 0)
        #expect(Set(records.map(\.id)) == Set(requests.map(\.id)))
        // The run ends when the last request finishes.
        #expect(summary.simulatedSeconds == records.compactMap(\.finish).max())
    }

    @Test func theSameScenarioAndSeedGiveIdenticalRecords() throws {
        var r = CaseRandom(11)
        let requests = randomRequests(&r, count: 300, rate: 15)
        let s = scenario(Self.disaggregated, duration: 25)
        let a = try simulate(s, requests)
        let b = try simulate(s, requests)
        #expect(a.1 == b.1)
        #expect(a.2 == b.2)
        var sa = a.0, sb = b.0
        sa.wallSeconds = 0
        sb.wallSeconds = 0
        #expect(sa == sb)
    }

    @Test func aGeneratedRunIsReproducibleFromItsSeedAndChangesWithIt() throws {
        let spec = GeneratorSpec(ratePerSecond: 10, prompt: .lognormal(mean: 800, sigma: 0.8, min: 1, max: 8000), output: .uniform(min: 1, max: 200), cachedFraction: 0.3)
        func run(_ seed: UInt64) throws -> [RequestRecord] {
            var s = scenario(Self.disaggregated, duration: 20)
            s.seed = seed
            var simulator = try ServingSimulator(scenario: s)
            var stream = GeneratedStream(spec, startEpochSeconds: s.startEpochSeconds, seed: seed)
            var records: [RequestRecord] = []
            _ = try simulator.run(&stream, onRecord: { records.append($0) })
            return records
        }
        #expect(try run(3) == run(3))
        #expect(try run(3) != run(4))
    }

    @Test func aConstantGridGivesEveryRequestThatIntensity() throws {
        var r = CaseRandom(5)
        let (_, records, _) = try simulate(scenario(Self.disaggregated), randomRequests(&r, count: 100, rate: 10))
        for record in records {
            #expect(abs(record.intensityGramsPerKWh - 500) < 1e-9)
            #expect(abs(record.operationalCarbonGrams - record.facilityJoules / 3.6e6 * 500) <= 1e-9 * record.operationalCarbonGrams)
        }
    }

    @Test func carbonFollowsTheIntensityAtEachStepsTime() throws {
        // Clean for the first 30 s, dirty after: identical requests cost more carbon later.
        let start = 1_740_628_800.0
        let carbon = CarbonSeries(region: "R", signal: .average, source: "test", points: [
            .init(epochSeconds: start, intensity: CarbonIntensity(gramsPerKWh: 100)),
            .init(epochSeconds: start + 30, intensity: CarbonIntensity(gramsPerKWh: 800)),
        ])
        let requests = [
            ServingRequest(id: 0, arrival: 1, promptTokens: 500, cachedTokens: 0, outputTokens: 20),
            ServingRequest(id: 1, arrival: 60, promptTokens: 500, cachedTokens: 0, outputTokens: 20),
        ]
        let (_, records, _) = try simulate(scenario(Self.disaggregated, carbon: carbon, start: start), requests)
        let early = try #require(records.first { $0.id == 0 })
        let late = try #require(records.first { $0.id == 1 })
        #expect(abs(early.intensityGramsPerKWh - 100) < 1e-9)
        #expect(abs(late.intensityGramsPerKWh - 800) < 1e-9)
        #expect(late.operationalCarbonGrams > 7 * early.operationalCarbonGrams * late.facilityJoules / early.facilityJoules)
    }

    @Test func idleCapacityDrawsIdlePowerAndItIsSharedOut() throws {
        // Two requests far apart: the cluster idles between them at the GPUs' and hosts' idle draw.
        let requests = [
            ServingRequest(id: 0, arrival: 0, promptTokens: 200, cachedTokens: 0, outputTokens: 5),
            ServingRequest(id: 1, arrival: 600, promptTokens: 200, cachedTokens: 0, outputTokens: 5),
        ]
        let (summary, records, intervals) = try simulate(scenario(Self.disaggregated, interval: 60), requests)
        let node = try library.node("h800")
        let nodes = 4.0 // 2 prefill + 2 decode units of one node each
        let idleWatts = nodes * (8 * node.gpu.power.idle.watts + node.hostIdle.watts)
        let quiet = intervals.filter { $0.start >= 120 && $0.end <= 540 }
        #expect(!quiet.isEmpty)
        for minute in Set(quiet.map(\.start)) {
            let it = quiet.filter { $0.start == minute }.map(\.itJoules).reduce(0, +)
            #expect(abs(it - idleWatts * 60) < 1e-6 * it)
        }
        // Idle minutes with no work are carried to the next minute with work: the second request pays for them.
        let second = try #require(records.first { $0.id == 1 })
        #expect(second.gpuIdleJoules > 8 * 60 * node.gpu.power.idle.watts)
        #expect(summary.conservationResidual < 1e-12)
    }

    @Test func decodeBatchesAreBoundedByTheBatchLimit() throws {
        // One decode rank with room for one sequence: requests decode one after another.
        let pools = ServingTopology.disaggregated(prefill: litePool(.prefill, units: 1, ep: 8), decode: litePool(.decode, units: 1, ep: 8, maxBatchPerRank: 1))
        let requests = (0..<20).map { ServingRequest(id: $0, arrival: 0, promptTokens: 100, cachedTokens: 0, outputTokens: 50) }
        let (_, serial, _) = try simulate(scenario(pools), requests)
        let wide = ServingTopology.disaggregated(prefill: litePool(.prefill, units: 1, ep: 8), decode: litePool(.decode, units: 1, ep: 8, maxBatchPerRank: 64))
        let (_, batched, _) = try simulate(scenario(wide), requests)
        let serialEnd = serial.compactMap(\.finish).max()!
        let batchedEnd = batched.compactMap(\.finish).max()!
        // Eight ranks of one sequence each hold at most 8 at a time: 20 requests need at least 3 rounds.
        #expect(serialEnd > 2.5 * batchedEnd)
    }

    @Test func prefixCacheHitsAreServedButNotComputed() throws {
        let cold = [ServingRequest(id: 0, arrival: 0, promptTokens: 8000, cachedTokens: 0, outputTokens: 2)]
        let warm = [ServingRequest(id: 0, arrival: 0, promptTokens: 8000, cachedTokens: 7000, outputTokens: 2)]
        let (a, ra, _) = try simulate(scenario(Self.disaggregated), cold)
        let (b, rb, _) = try simulate(scenario(Self.disaggregated), warm)
        #expect(a.inputTokens == b.inputTokens)
        #expect(rb[0].ttft! < ra[0].ttft!)
        #expect(rb[0].gpuActiveJoules < ra[0].gpuActiveJoules)
    }

    @Test func theKVTransferDelaysDecodeByItsSize() throws {
        let small = [ServingRequest(id: 0, arrival: 0, promptTokens: 100, cachedTokens: 99, outputTokens: 3)]
        let large = [ServingRequest(id: 0, arrival: 0, promptTokens: 100_000, cachedTokens: 99_999, outputTokens: 3)]
        let (_, rs, _) = try simulate(scenario(Self.disaggregated), small)
        let (_, rl, _) = try simulate(scenario(Self.disaggregated), large)
        let model = try library.model("deepseek-v2-lite")
        let node = try library.node("h800")
        let extra = Double(100_000 - 100) * model.kvCacheBytesPerToken / node.allToAll.infinibandBytesPerSecond
        let gap = (rl[0].finish! - rl[0].firstToken!) - (rs[0].finish! - rs[0].firstToken!)
        #expect(gap > extra)
    }

    @Test func unitsFollowTheNodeSchedule() throws {
        // 4 nodes from 00:00, 1 node from 00:10 (UTC): each pool keeps at least one unit.
        let start = 1_740_614_400.0 // 2025-02-27T00:00:00Z
        let schedule = NodeSchedule(points: [.init(second: 0, nodes: 4), .init(second: 600, nodes: 1)], utcOffsetSeconds: 0)
        let s = scenario(Self.disaggregated, duration: 1200, interval: 60, schedule: schedule, start: start)
        let (summary, _, intervals) = try simulate(s, [])
        let early = Set(intervals.filter { $0.end <= 600 }.map(\.unit))
        let late = Set(intervals.filter { $0.start >= 600 }.map(\.unit))
        #expect(early.count == 4)
        #expect(late.count == 2)
        #expect(abs(summary.meanNodes - 3) < 1e-9)
        #expect(summary.unattributedEnergyKWh > 0, "a run with no requests leaves all its energy unattributed")
        #expect(summary.conservationResidual < 1e-12)
    }

    @Test func colocatedUnitsDoBothPhases() throws {
        var r = CaseRandom(9)
        let requests = randomRequests(&r, count: 200, rate: 10)
        let colocated = ServingTopology.colocated(litePool(.colocated, units: 1, ep: 8, maxBatchPerRank: 16))
        let (summary, records, _) = try simulate(scenario(colocated), requests)
        #expect(summary.requests == 200)
        #expect(records.allSatisfy { $0.prefillUnit == 0 && ($0.outputTokens == 1 || $0.decodeUnit == 0) })
        #expect(summary.prefillTokensPerSecondPerNode > 0 && summary.decodeTokensPerSecondPerNode > 0)
    }

    @Test func aRequestLargerThanADecodeRankIsAClearError() throws {
        let requests = [ServingRequest(id: 42, arrival: 0, promptTokens: 50_000_000, cachedTokens: 0, outputTokens: 10)]
        #expect(throws: SimulationError.self) { try simulate(scenario(Self.disaggregated), requests) }
        do {
            _ = try simulate(scenario(Self.disaggregated), requests)
        } catch let e as SimulationError {
            #expect(e.description.contains("request 42"))
        }
    }

    @Test func anInvalidScenarioListsEveryProblem() {
        let bad = ServingTopology.disaggregated(prefill: litePool(.prefill, units: 0, ep: 0), decode: litePool(.decode, units: 1, ep: 8, maxBatchPerRank: 0))
        do {
            _ = try ServingSimulator(scenario: scenario(bad, interval: 0))
            Issue.record("expected an error")
        } catch let SimulationError.invalidScenario(problems) {
            let text = problems.joined(separator: "\n")
            for fragment in ["deployment.prefill.units", "deployment.prefill.ep", "deployment.decode.maxBatchPerRank", "accounting.intervalSeconds"] {
                #expect(text.contains(fragment), "missing \(fragment) in \(text)")
            }
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
