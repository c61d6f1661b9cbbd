import Accounting
import Catalog
import Foundation
import MoE
import Serving
import Testing
import Units
@testable import Planning

/// A small synthetic case with a known optimum: Mixtral-8x7B (BF16, 93 GB of weights) on H800s
/// (80 GB), colocated, at 9 requests/s. One GPU cannot hold the weights (memory); one TP2 unit
/// carries less than the load by the step-cost bound (saturated); so the fewest GPUs any plan can
/// have is 4, and the planner must find a 4-GPU plan that holds the targets.
enum Synthetic {
    static let text = """
    name: synthetic-mixtral
    model: mixtral-8x7b
    hardware: h800
    site: default
    start: 2025-06-02T14:00:00Z
    duration: 400
    seed: 3
    deployment:
      kind: colocated
      unit: {units: 1, tp: 8}
    workload:
      generator:
        ratePerSecond: 9
        arrivals: {process: poisson}
        prompt: {distribution: lognormal, mean: 1100, sigma: 0.8, min: 8, max: 8192}
        output: {distribution: lognormal, mean: 200, sigma: 0.8, min: 1, max: 1024}
    carbon: {region: US, grid: US}
    embodied: llmcarbon-h800

    """
    static let slo = PlanSLO(ttftP99: 1, tpotP99: 0.04)

    static func library() -> SpecLibrary {
        do { return try Catalog.load(from: dataDirectory) } catch { fatalError("Data/ must load: \(error)") }
    }

    static func file() -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("synthetic-mixtral-\(ProcessInfo.processInfo.processIdentifier).yaml").path
        try! text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func planner(objective: PlanObjective = .gpus, maxNodes: Int? = 1) -> Planner {
        let library = library()
        do {
            let base = try PlanBase.resolve(
                workload: file(), model: nil, hardware: nil, grid: nil, traceFormat: nil, pruning: false, library: library, dataDirectory: dataDirectory
            )
            return try Planner(
                base: base, options: PlanOptions(slo: slo, objective: objective, maxNodes: maxNodes), data: try PlanningData.load(dataDirectory: dataDirectory),
                library: library, dataDirectory: dataDirectory
            )
        } catch { fatalError("the synthetic case must plan: \(error)") }
    }

    /// One search, shared by the tests that only read it.
    static let shared: (Planner, PlanResult) = {
        let p = planner()
        return (p, p.run())
    }()
}

@Suite struct PlannerTests {
    @Test func findsTheKnownOptimum() throws {
        let (_, r) = Synthetic.shared
        let o = r.dense
        let best = try #require(o.best.map { o.candidates[$0] })
        #expect(best.feasible)
        #expect(best.gpus == 4, "\(best.plan.label)")
        // No feasible candidate has fewer GPUs, and every smaller one lost for memory or saturation.
        #expect(!o.candidates.contains { $0.feasible && $0.gpus < 4 })
        for c in o.candidates where c.gpus < 4 {
            #expect(["memory", "saturated", "SLO missed"].contains(c.rejection?.kind ?? "none"), "#\(c.id) \(c.plan.label)")
        }
        #expect(o.candidates.contains { $0.gpus == 1 && $0.rejection?.kind == "memory" })
        #expect(o.candidates.contains { $0.gpus == 2 && $0.rejection?.kind == "saturated" })
    }

    /// The plan `--out` writes runs through `joule simulate`'s path (file → catalog → simulator)
    /// and holds every target over the whole workload, exactly as the planner's own verification saw.
    @Test func returnedPlanMeetsTheSLOWhenSimulatedAgain() throws {
        let (_, r) = Synthetic.shared
        let text = try #require(r.dense.bestScenario)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("plan-best-\(ProcessInfo.processInfo.processIdentifier).yaml").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let loaded = try Catalog.loadScenario(at: path, library: Synthetic.library(), dataDirectory: dataDirectory)
        let summary = try Catalog.prepare(loaded, overrides: RunOverrides()).run(onRecord: { _ in })
        #expect(try #require(summary.ttftP99) <= Synthetic.slo.ttftP99)
        #expect(try #require(summary.tpotP99) <= Synthetic.slo.tpotP99)
        let verified = try #require(r.dense.verified)
        #expect(summary.requests == verified.requests)
        #expect(summary.energyKWh == verified.energyKWh)
        #expect(summary.ttftP99 == verified.ttftP99)
    }

    /// Pareto law: a front member is dominated by no feasible candidate, and every dominated
    /// candidate names a front member that is at least as good everywhere and better somewhere.
    @Test func noDominatedCandidateBeatsTheFront() {
        let o = Synthetic.shared.1.dense
        checkFront(o.candidates)
    }

    @Test(arguments: 1...40)
    func frontLawOnRandomCandidates(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        func r() -> Double { Double(rng.next() % 1000) / 100 }
        var cs: [CandidateResult] = (0..<Int(5 + rng.next() % 40)).map { i in
            var c = CandidateResult(id: i, plan: CandidatePlan(kind: "colocated", pools: []), stage: "random", gpus: Int(rng.next() % 6) * 2 + 2, nodes: 1)
            // Few distinct values: ties are common.
            let f = WindowFigures(
                requests: 10, outputTokens: 100, ttftP50: 0, ttftP99: (r() / 3).rounded(), tpotP50: 0, tpotP99: (r() / 3).rounded(), unstarted: 0,
                whPerRequest: (r() / 2).rounded(), whPer1kTokens: 0, carbonGramsPerRequest: (r() / 2).rounded(), costPer1kRequests: 0,
                whPerRequestByRole: [:], entryBusyFraction: 0, ttftTrend: [0, 0, 0], tpotTrend: [0, 0, 0]
            )
            c.figures = f
            if rng.next() % 5 == 0 { c.rejection = .sloMissed("random") }
            return c
        }
        Synthetic.shared.0.markFront(&cs)
        checkFront(cs)
    }

    func checkFront(_ cs: [CandidateResult]) {
        let feasible = cs.filter(\.feasible)
        #expect(feasible.isEmpty || feasible.contains(where: \.onFront))
        for f in feasible where f.onFront {
            #expect(!feasible.contains { $0.dominates(f) }, "front member #\(f.id) is dominated")
        }
        for c in feasible where !c.onFront {
            let by = cs.first { $0.id == c.dominatedBy }
            #expect(by?.onFront == true, "#\(c.id) names no front member")
            #expect(by?.dominates(c) == true, "#\(c.id) is not dominated by #\(c.dominatedBy ?? -1)")
        }
        for c in cs where !c.feasible { #expect(!c.onFront && c.dominatedBy == nil) }
    }

    /// Each rejected candidate is checked against its reason by a means other than the one that rejected it.
    @Test func rejectionsHoldForTheReasonGiven() throws {
        let (planner, r) = Synthetic.shared
        let library = Synthetic.library()
        #expect(planner.prewarmSeconds == 0, "the synthetic outputs are short; the window needs no pre-warm")
        var checked: Set<String> = []
        for c in r.dense.candidates {
            guard let why = c.rejection else { continue }
            let text = planner.scenarioText(c.plan)
            switch why {
            case .memory:
                // The catalog refuses the layout, or one rank's KV cache is smaller than the largest request.
                if let loaded = try? Catalog.loadScenario(text: text, file: Synthetic.file(), library: library, dataDirectory: dataDirectory) {
                    let pool = loaded.scenario.topology.pools[0]
                    let kv = StepCostModel(model: loaded.scenario.model, node: loaded.scenario.node, site: loaded.scenario.site, deployment: pool.deployment)
                        .kvTokensPerRank(memoryReserveFraction: pool.memoryReserveFraction)
                    #expect(kv < planner.load.largestRequestTokens, "#\(c.id)")
                }
                checked.insert("memory")
            case .stepBound:
                let loaded = try Catalog.loadScenario(text: text, file: Synthetic.file(), library: library, dataDirectory: dataDirectory)
                let pool = loaded.scenario.topology.pools[0]
                let cost = StepCostModel(model: loaded.scenario.model, node: loaded.scenario.node, site: loaded.scenario.site, deployment: pool.deployment)
                let decode = cost.estimate(.decode(sequences: Double(pool.maxBatchPerRank), context: planner.load.meanDecodeContext)).stepTime.seconds
                let prefill = cost.estimate(.prefill(computedTokens: Double(pool.tokenBudgetPerRank), cachedFraction: 0, context: Double(pool.tokenBudgetPerRank))).stepTime.seconds
                #expect(decode > Synthetic.slo.decodeStepTarget || prefill > Synthetic.slo.ttftP99, "#\(c.id)")
                checked.insert("step")
            case .saturated, .sloMissed:
                // Simulated again through the catalog, over the same window plus as long again: a target is missed.
                let loaded = try Catalog.loadScenario(text: text, file: Synthetic.file(), library: library, dataDirectory: dataDirectory)
                var prepared = try Catalog.prepare(loaded, overrides: RunOverrides(duration: 360))
                prepared.scenario.intervalSeconds = 10
                var ttft: [Double] = [], tpot: [Double] = []
                var waiting = 0
                _ = try prepared.run(onRecord: { rec in
                    guard rec.arrival >= 60, rec.arrival < 300 else { return }
                    if let f = rec.firstToken {
                        ttft.append(f - rec.arrival)
                        if let end = rec.finish, rec.outputTokens > 1 { tpot.append((end - f) / Double(rec.outputTokens - 1)) }
                    } else {
                        waiting += 1
                    }
                })
                func p99(_ xs: [Double]) -> Double { xs.isEmpty ? .infinity : xs.sorted()[Int(Double(xs.count - 1) * 0.99)] }
                let missed = waiting > 0 || p99(ttft) > Synthetic.slo.ttftP99 || p99(tpot) > Synthetic.slo.tpotP99
                #expect(missed, "#\(c.id) \(c.plan.label): \(why.reason); re-simulated TTFT p99 \(p99(ttft)), TPOT p99 \(p99(tpot))")
                checked.insert(why.kind)
            case .invalid:
                Issue.record("#\(c.id) \(c.plan.label) is invalid: \(why.reason)")
            }
        }
        #expect(checked.isSuperset(of: ["memory", "saturated"]), "\(checked)")
    }

    /// The same inputs give the same search, candidate for candidate (only wall-clock times differ).
    @Test func searchIsDeterministic() {
        let a = Synthetic.planner().run(), b = Synthetic.shared.1
        #expect(a.dense.candidates == b.dense.candidates)
        #expect(a.dense.best == b.dense.best)
        #expect(a.dense.bestScenario == b.dense.bestScenario)
    }

    /// Sharing step costs across runs changes no figure: every entry is its bucket's representative.
    @Test func sharedStepCostsChangeNothing() throws {
        let library = Synthetic.library()
        let loaded = try Catalog.loadScenario(text: Synthetic.text, file: Synthetic.file(), library: library, dataDirectory: dataDirectory)
        var prepared = try Catalog.prepare(loaded, overrides: RunOverrides(duration: 120))
        var alone = try prepared.run(onRecord: { _ in })
        let cache = StepCostCache()
        prepared.scenario.stepCosts = cache
        _ = try prepared.run(onRecord: { _ in })
        #expect(cache.counts.shapes > 0)
        var shared = try prepared.run(onRecord: { _ in })
        alone.wallSeconds = 0
        shared.wallSeconds = 0
        shared.stepShapesCosted = alone.stepShapesCosted
        #expect(alone == shared)
    }

    /// Each pruning configuration is re-planned, verified, and set against the dense best by the
    /// stated rule: whole-run deltas, and "pays" only beyond what the search resolves.
    @Test func pruningIsComparedAtEqualSLO() throws {
        let library = Synthetic.library()
        let base = try PlanBase.resolve(workload: Synthetic.file(), model: nil, hardware: nil, grid: nil, traceFormat: nil, pruning: true, library: library, dataDirectory: dataDirectory)
        let choices = [PruningChoice(prunedFraction: 0.25, ranking: .frequency), PruningChoice(expertsPerToken: 1)]
        let planner = try Planner(
            base: base, options: PlanOptions(slo: Synthetic.slo, objective: .energy, pruning: choices, maxNodes: 1),
            data: try PlanningData.load(dataDirectory: dataDirectory), library: library, dataDirectory: dataDirectory
        )
        let r = planner.run()
        #expect(r.pruned.map(\.pruning) == choices)
        let dense = try #require(r.dense.verified)
        let band = abs(r.dense.candidates[try #require(r.dense.best)].figures!.whPerRequest / dense.whPerRequest - 1)
        for (row, o) in zip(PlanRender.pruningRows(r), r.pruned) {
            guard let best = row.best else {
                // No plan held: every verification it ran missed a target, and it does not pay.
                #expect(!row.pays && row.verdict.hasPrefix("does not pay"))
                #expect(!o.verifications.isEmpty && o.verifications.allSatisfy { $0.missed != nil })
                continue
            }
            #expect(best.plan.pruning == o.pruning)
            #expect(best.feasible)
            #expect(o.fidelity.map { $0.relativeError > 0 } == true, "a pruned configuration moves the reference layer")
            let de = try #require(row.energyDelta), dg = try #require(row.gpuDelta)
            #expect(abs(de - (try #require(o.verified).whPerRequest / dense.whPerRequest - 1)) < 1e-12)
            #expect(row.pays == ((de < -band && dg <= 0) || (dg < 0 && de <= band)), "\(row.verdict)")
        }
    }

    @Test func badWorkloadsSayWhy() throws {
        let library = Synthetic.library()
        func error(_ body: () throws -> Void) -> String {
            do { try body() } catch { return "\(error)" }
            return "no error"
        }
        #expect(error { _ = try PlanBase.resolve(workload: "no-such-scenario", model: nil, hardware: nil, grid: nil, traceFormat: nil, pruning: false, library: library, dataDirectory: dataDirectory) }.contains("no-such-scenario"))
        let trace = FileManager.default.temporaryDirectory.appendingPathComponent("plan-trace-\(ProcessInfo.processInfo.processIdentifier).csv").path
        try "arrivalSeconds,promptTokens,outputTokens\n0,100,10\n".write(toFile: trace, atomically: true, encoding: .utf8)
        #expect(error { _ = try PlanBase.resolve(workload: trace, model: nil, hardware: nil, grid: "US", traceFormat: .jouleCSV, pruning: false, library: library, dataDirectory: dataDirectory) }.contains("--model"))
        #expect(error { _ = try PlanBase.resolve(workload: trace, model: "mixtral-8x7b", hardware: nil, grid: nil, traceFormat: .jouleCSV, pruning: false, library: library, dataDirectory: dataDirectory) }.contains("--grid"))
        #expect(error { _ = try PlanBase.resolve(workload: "llama-3.1-70b-dense-hour", model: nil, hardware: nil, grid: nil, traceFormat: nil, pruning: true, library: library, dataDirectory: dataDirectory) }.contains("dense"))
        // A trace is planned like a scenario.
        let base = try PlanBase.resolve(workload: trace, model: "mixtral-8x7b", hardware: nil, grid: "US", traceFormat: .jouleCSV, pruning: false, library: library, dataDirectory: dataDirectory)
        #expect(base.colocated)
        #expect(throws: PlanInputError.self) {
            _ = try Planner(base: base, options: PlanOptions(slo: Synthetic.slo, warmupSeconds: -10), data: try PlanningData.load(dataDirectory: dataDirectory), library: library, dataDirectory: dataDirectory)
        }
    }
}
