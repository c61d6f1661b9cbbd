import Accounting
import Calibration
import Catalog
import Foundation
import MoE
import Routing
import Serving
import Synchronization

/// Searches deployments of a workload for the one that meets its SLO at the least energy, carbon,
/// GPUs or cost, simulating each surviving candidate over a warm-up and a steady window.
public final class Planner: Sendable {
    public let base: PlanBase
    public let options: PlanOptions
    public let space: SearchSpace
    let data: PlanningData
    let library: SpecLibrary
    let dataDirectory: String
    let cache = StepCostCache()
    /// Requests simulated for every candidate: the pre-warm's long ones, then all of them.
    let requests: [ServingRequest]
    let load: OfferedLoad
    /// Simulated seconds before the full-load warm-up in which only long requests arrive, so that
    /// the decode population is near its steady size when the window opens.
    public let prewarmSeconds: Double
    private let layoutScenarios = Mutex<[CandidatePlan: Result<(ServingScenario, Fidelity?), Rejection>]>([:])

    public init(base: PlanBase, options: PlanOptions, space: SearchSpace = SearchSpace(), data: PlanningData, library: SpecLibrary, dataDirectory: String) throws {
        if let p = options.validate().first { throw p }
        self.base = base
        self.options = options
        var space = space
        space.microBatches = options.microBatches
        self.space = space
        self.data = data
        self.library = library
        self.dataDirectory = dataDirectory
        let full = options.warmupSeconds + options.windowSeconds
        // The decode population takes as long as its longest requests to fill: size the pre-warm from a sample.
        let step = options.slo.decodeStepTarget
        let prewarm = max(0, Self.fillTime(try base.requests(until: min(60, full)), stepSeconds: step) - options.warmupSeconds)
        prewarmSeconds = prewarm
        let windowStart = prewarm + options.warmupSeconds
        let all = try base.requests(until: windowStart + options.windowSeconds + 10 * ((2 * options.slo.ttftP99 / 10).rounded(.up) + 1))
        // Before the full-load warm-up only the requests still in decode when the window opens are kept.
        requests = all.filter { $0.arrival >= prewarm || $0.arrival + Double($0.outputTokens) * step >= windowStart }
        load = OfferedLoad.measure(all.filter { $0.arrival >= prewarm }.map { r in
            var r = r
            r.arrival -= prewarm
            return r
        }, seconds: full)
        guard load.requests > 0 else {
            throw PlanInputError("--workload", "no request arrives in the \(fmt(full)) s planned of \(base.name); lengthen --warmup/--window or pick a busier workload")
        }
    }

    /// Simulated seconds (a multiple of 10, at most a day) after which requests arriving at a steady
    /// rate fill 99 % of their steady decode population, each staying its output tokens × `stepSeconds`.
    static func fillTime(_ sample: [ServingRequest], stepSeconds: Double) -> Double {
        let stays = sample.map { Double($0.outputTokens) * stepSeconds }.sorted()
        let total = stays.reduce(0, +)
        guard total > 0 else { return 0 }
        // Σ min(stay, w) grows with w: the smallest multiple of 10 s reaching 99 % of Σ stay.
        func filled(_ w: Double) -> Double { stays.reduce(0) { $0 + min($1, w) } }
        var w = 10.0
        while w < 86_400 && filled(w) < 0.99 * total { w += 10 }
        return w
    }

    // MARK: - Candidates as scenarios

    /// The scenario file of `plan`.
    public func scenarioText(_ plan: CandidatePlan, header: [String] = []) -> String {
        var replacements: [String: String?] = [
            "name": "name: \(base.name)-plan",
            "description": "description: \(ScenarioText.quoted("Planned by joule plan: " + plan.label))",
            "deployment": plan.deploymentYAML,
            "schedule": nil,
        ]
        if let routing = base.routing {
            replacements["experts"] = routing.block(pruning: plan.pruning, freedMemory: plan.freedMemory)
        }
        return ScenarioText.replacing(replacements, in: base.text, header: header, order: ["description", "deployment", "experts"])
    }

    /// The loaded scenario of `plan` (its layout loaded once, the unit counts set on it).
    func scenario(_ plan: CandidatePlan) -> Result<(ServingScenario, Fidelity?), Rejection> {
        var key = plan
        for i in key.pools.indices { key.pools[i].units = 1 }
        let layout: Result<(ServingScenario, Fidelity?), Rejection>
        if let hit = layoutScenarios.withLock({ $0[key] }) {
            layout = hit
        } else {
            do {
                let loaded = try Catalog.loadScenario(text: scenarioText(key), file: base.file, library: library, dataDirectory: dataDirectory)
                var s = loaded.scenario
                s.stepCosts = cache
                let pruned = plan.pruning != nil
                layout = .success((s, pruned ? s.experts?.fidelity : nil))
            } catch {
                layout = .failure(Self.rejection(loading: "\(error)"))
            }
            layoutScenarios.withLock { $0[key] = layout }
        }
        return layout.map { (s, f) in
            var s = s
            let pools = s.topology.pools.enumerated().map { i, p -> PoolSpec in
                var p = p
                p.units = plan.pools[i].units
                return p
            }
            s.topology = pools.count == 2 ? .disaggregated(prefill: pools[0], decode: pools[1]) : .colocated(pools[0])
            return (s, f)
        }
    }

    /// Why a candidate's scenario does not load, without the file name (every candidate shares it).
    static func rejection(loading message: String) -> Rejection {
        var text = message.split(separator: "\n").last.map(String.init)?.trimmingCharacters(in: .whitespaces) ?? message
        var field = ""
        if let r = text.range(of: "field '"), let close = text[r.upperBound...].range(of: "': ") {
            field = String(text[r.upperBound..<close.lowerBound])
            text = String(text[close.upperBound...])
        }
        if text.contains("KV cache") { return .memory(text) }
        if field.hasSuffix("expert-load-imbalance"), let got = text.range(of: "got ") {
            let value = Double(text[got.upperBound...]) ?? .nan
            return .stepBound("EPLB leaves the busiest GPU \(fmt(value))× the mean expert load (too few slots for the hot experts), beyond the step-cost model's range of 1 to 10")
        }
        return .invalid(field.isEmpty ? text : "\(field): \(text)")
    }

    // MARK: - Evaluation

    /// Simulates `plan` over warm-up + window and judges it against the SLO.
    func evaluate(_ plan: CandidatePlan, scenario: ServingScenario) -> (WindowFigures?, Rejection?) {
        let runner = WindowRun(warmup: prewarmSeconds + options.warmupSeconds, window: options.windowSeconds, gpuHourUSD: data.price.gpuHourUSD, tail: tailSeconds)
        let f: WindowFigures
        do {
            f = try runner.run(scenario, requests: requests)
        } catch let SimulationError.requestTooLarge(_, need, capacity) {
            return (nil, .memory("a request needs \(need) tokens of KV cache; one decode rank holds \(capacity)"))
        } catch {
            return (nil, .invalid("\(error)"))
        }
        return (f, judge(f, colocated: plan.kind == "colocated"))
    }

    /// Simulated seconds run past the window: twice the TTFT target, in whole accounting intervals.
    var tailSeconds: Double { max(10, (2 * options.slo.ttftP99 / 10).rounded(.up) * 10) }

    /// The first target `f` misses, as a rejection (nil: all met).
    func judge(_ f: WindowFigures, colocated: Bool) -> Rejection? {
        let slo = options.slo
        if f.ttft99 > slo.ttftP99 {
            // A queue that grows over the window: the pool takes less than arrives.
            if f.ttftTrend[2] > 1.5 * max(f.ttftTrend[0], 1e-6) || f.unstarted > f.requests / 100 {
                let what = colocated ? "units" : "prefill"
                return .saturated("\(what) queue growing: mean TTFT \(fmt(f.ttftTrend[0])) s → \(fmt(f.ttftTrend[2])) s over the window; p99 \(fmt(f.ttft99)) s > \(fmt(slo.ttftP99)) s")
            }
            return .sloMissed("TTFT p99 \(fmt(f.ttft99)) s > \(fmt(slo.ttftP99)) s")
        }
        if f.tpot99 > slo.tpotP99 {
            if f.tpotTrend[2] > 1.25 * max(f.tpotTrend[0], 1e-9) {
                return .saturated("decode queue growing: mean TPOT \(fmt(f.tpotTrend[0] * 1e3)) ms → \(fmt(f.tpotTrend[2] * 1e3)) ms; p99 \(fmt(f.tpot99 * 1e3)) ms > \(fmt(slo.tpotP99 * 1e3)) ms")
            }
            return .sloMissed("TPOT p99 \(fmt(f.tpot99 * 1e3)) ms > \(fmt(slo.tpotP99 * 1e3)) ms")
        }
        if let perUser = slo.tokensPerUser, f.tpot50 > 1 / perUser {
            return .sloMissed("median user gets \(fmt(1 / f.tpot50)) tokens/s < \(fmt(perUser))")
        }
        return nil
    }

    /// The objective's value for a simulated candidate (lower is better).
    func score(_ c: CandidateResult) -> Double {
        guard let f = c.figures else { return .infinity }
        switch options.objective {
        case .energy: return f.whPerRequest
        case .carbon: return f.carbonGramsPerRequest
        case .gpus: return Double(c.gpus)
        case .cost: return f.costPer1kRequests
        }
    }

    /// Orders feasible candidates: objective, then energy, then GPUs, then id (deterministic).
    func better(_ a: CandidateResult, _ b: CandidateResult) -> Bool {
        let sa = score(a), sb = score(b)
        if sa != sb { return sa < sb }
        let ea = a.figures?.whPerRequest ?? .infinity, eb = b.figures?.whPerRequest ?? .infinity
        if ea != eb { return ea < eb }
        if a.gpus != b.gpus { return a.gpus < b.gpus }
        return a.id < b.id
    }

    // MARK: - The search

    /// Runs the dense search and one per pruning configuration.
    public func run(progress: (@Sendable (String, Int, Int) -> Void)? = nil) -> PlanResult {
        let clock = ContinuousClock()
        let started = clock.now
        let dense = search(pruning: nil, progress: progress)
        var pruned: [SearchOutcome] = []
        var quality: [String: [PlanningData.QualityFigure]] = [:]
        for choice in options.pruning {
            pruned.append(search(pruning: choice, progress: progress))
            quality[choice.description] = data.quality(for: choice)
        }
        return PlanResult(
            workload: base.name, model: base.scenario.model.id, hardware: base.scenario.node.id, slo: options.slo, objective: options.objective,
            prewarmSeconds: prewarmSeconds, warmupSeconds: options.warmupSeconds, windowSeconds: options.windowSeconds, load: load, carbonRegion: base.scenario.carbon.metadata.region,
            gpuHourUSD: data.price.gpuHourUSD, dense: dense, pruned: pruned, quality: quality, limits: limits(),
            stepShapesCached: cache.counts.shapes, wallSeconds: (clock.now - started).inSeconds
        )
    }

    /// One search under one pruning configuration.
    func search(pruning: PruningChoice?, progress: (@Sendable (String, Int, Int) -> Void)?) -> SearchOutcome {
        let clock = ContinuousClock()
        let started = clock.now
        let label = pruning.map { "pruned \($0)" } ?? "dense"
        // Pruned models repack their surviving experts at the dense layout's experts per GPU; the
        // alternative (the same GPUs, the freed memory as KV cache) is not searched.
        let freed: String? = pruning == nil ? nil : "fewer-gpus"
        let part = base.colocated
            ? searchColocated(pruning: pruning, freed: freed, firstID: 0, label: label, progress: progress)
            : searchDisaggregated(pruning: pruning, freed: freed, firstID: 0, label: label, progress: progress)
        var results = part.results
        let fidelity = part.fidelity
        var best: Int?, verified: RunSummary?
        // The best candidate must hold its targets over the whole workload too. Where it misses one,
        // every candidate with the same pool (that pool answers for the target) is out, the pool
        // with a unit more is simulated, and the best of what remains is verified in turn.
        var attempts = 0
        var verifications: [Verification] = []
        while let top = results.filter(\.feasible).sorted(by: better).first {
            guard options.verify else {
                best = top.id
                break
            }
            guard attempts < 6 else { break }
            attempts += 1
            progress?("\(label): verifying the best plan over the whole workload", 0, 1)
            let outcome = verify(top.plan)
            verifications.append(Verification(candidate: top.id, label: top.label, missed: outcome.failure?.rejection.reason))
            switch outcome {
            case .success(let summary):
                best = top.id
                verified = summary
            case .failure(let miss):
                let pool = top.plan.pools[miss.pool]
                for i in results.indices where results[i].feasible && results[i].plan.pools[miss.pool] == pool && results[i].plan.pruning == top.plan.pruning {
                    results[i].rejection = i == top.id ? miss.rejection
                        : .sloMissed("its \(pool.role) pool, \(pool.label), missed the targets over the whole run (verified with #\(top.id): \(miss.rejection.reason))")
                }
                var plan = top.plan
                plan.pools[miss.pool].units += 1
                if withinLimit(plan), !results.contains(where: { $0.plan == plan }) {
                    results += simulate([Job(plan: plan, stage: "verification repair")], firstID: results.count, label: label, progress: nil)
                }
                continue
            }
            break
        }
        markFront(&results)
        let simulated = results.filter { $0.figures != nil }.count
        return SearchOutcome(
            pruning: pruning, candidates: results, best: best, verified: verified, verifications: verifications,
            bestScenario: best.map { scenarioText(results[$0].plan, header: header(for: results[$0], verified: verified)) },
            fidelity: fidelity, simulated: simulated, wallSeconds: (clock.now - started).inSeconds
        )
    }

    /// The comment block on top of a written plan.
    func header(for c: CandidateResult, verified: RunSummary?) -> [String] {
        var lines = [
            "# Planned by `joule plan` for \(base.name) at \(options.slo.text), objective \(options.objective.rawValue).",
            "# \(c.label): \(c.gpus) GPU\(c.gpus == 1 ? "" : "s") on \(c.nodes) node\(c.nodes == 1 ? "" : "s").",
        ]
        if let f = c.figures {
            lines.append("# Steady window (\(fmt(options.windowSeconds)) s measured after \(fmt(prewarmSeconds + options.warmupSeconds)) s of warm-up): \(fmt(f.whPerRequest)) Wh and \(fmt(f.carbonGramsPerRequest)) gCO2e per request, TTFT p99 \(fmt(f.ttft99)) s, TPOT p99 \(fmt(f.tpot99 * 1e3)) ms.")
        }
        if let v = verified {
            lines.append("# Whole run (\(fmt(v.simulatedSeconds)) s): \(fmt(v.whPerRequest)) Wh per request, TTFT p99 \(fmt(v.ttftP99 ?? 0)) s, TPOT p99 \(fmt((v.tpotP99 ?? 0) * 1e3)) ms.")
        }
        return lines
    }

    /// A target the whole-workload run missed, and the pool that answers for it.
    struct Miss: Error, Sendable {
        var rejection: Rejection
        var pool: Int
    }

    /// Re-simulates `plan` over the workload's whole duration and checks the SLO on the summary.
    func verify(_ plan: CandidatePlan) -> Result<RunSummary, Miss> {
        let decode = plan.pools.count - 1
        do {
            let loaded = try Catalog.loadScenario(text: scenarioText(plan), file: base.file, library: library, dataDirectory: dataDirectory)
            var prepared = try Catalog.prepare(loaded, overrides: RunOverrides())
            prepared.scenario.stepCosts = cache
            let summary = try prepared.run(onRecord: { _ in })
            let slo = options.slo
            let run = "over the whole \(fmt(summary.simulatedSeconds)) s run"
            if let t = summary.ttftP99, t > slo.ttftP99 {
                return .failure(Miss(rejection: .sloMissed("\(run), TTFT p99 \(fmt(t)) s > \(fmt(slo.ttftP99)) s"), pool: 0))
            }
            if let t = summary.tpotP99, t > slo.tpotP99 {
                return .failure(Miss(rejection: .sloMissed("\(run), TPOT p99 \(fmt(t * 1e3)) ms > \(fmt(slo.tpotP99 * 1e3)) ms"), pool: decode))
            }
            if let perUser = slo.tokensPerUser, let p50 = summary.tpotP50, p50 > 1 / perUser {
                return .failure(Miss(rejection: .sloMissed("\(run), the median user gets \(fmt(1 / p50)) tokens/s < \(fmt(perUser))"), pool: decode))
            }
            return .success(summary)
        } catch {
            return .failure(Miss(rejection: .invalid("\(error)"), pool: decode))
        }
    }

    /// Marks the Pareto front of the feasible candidates and, for the rest, a front member that dominates them.
    func markFront(_ results: inout [CandidateResult]) {
        let feasible = results.indices.filter { results[$0].feasible }
        for i in results.indices {
            results[i].onFront = false
            results[i].dominatedBy = nil
        }
        var front: [Int] = []
        for i in feasible where !feasible.contains(where: { results[$0].dominates(results[i]) }) {
            results[i].onFront = true
            front.append(i)
        }
        for i in feasible where !results[i].onFront {
            results[i].dominatedBy = front.first { results[$0].dominates(results[i]) }.map { results[$0].id }
        }
    }
}

extension Duration {
    var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

extension Result {
    var failure: Failure? {
        if case .failure(let f) = self { return f }
        return nil
    }
}
