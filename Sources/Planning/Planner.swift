import Accounting
import Calibration
import Catalog
import Foundation
import MoE
import Routing
import Serving
import Synchronization

/// One deployment the planner looked at, and what became of it.
public struct CandidateResult: Hashable, Sendable, Codable {
    public var id: Int
    public var plan: CandidatePlan
    /// Where it came from: analytic screen, prefill sweep, decode sweep, combination or unit sweep.
    public var stage: String
    public var gpus: Int
    public var nodes: Int
    /// Window figures, when it was simulated.
    public var figures: WindowFigures?
    /// Why it lost (nil: it meets every target).
    public var rejection: Rejection?
    /// The pools as deployed where pruning repacked them onto fewer GPUs than the plan's `ep`
    /// (for example "decode EP112+32"), or nil.
    public var deployedAs: String?
    /// The plan's label, with the deployed layout where it differs.
    public var label: String { plan.label + (deployedAs.map { ", deployed as \($0)" } ?? "") }
    /// On the Pareto front of the feasible candidates.
    public var onFront = false
    /// A front member that is at least as good in every objective and better in one.
    public var dominatedBy: Int?

    public var feasible: Bool { rejection == nil && figures != nil }

    /// The front's objectives, all minimised: energy and carbon per request, GPUs, p99 TTFT and TPOT.
    public var objectives: [Double] {
        guard let f = figures else { return [] }
        return [f.whPerRequest, f.carbonGramsPerRequest, Double(gpus), f.ttft99, f.tpot99]
    }

    /// Whether this candidate is at least as good as `other` everywhere and better somewhere.
    public func dominates(_ other: CandidateResult) -> Bool {
        let a = objectives, b = other.objectives
        guard a.count == b.count, !a.isEmpty else { return false }
        return zip(a, b).allSatisfy { $0 <= $1 } && zip(a, b).contains { $0 < $1 }
    }
}

/// The search's best plan under one pruning configuration (nil: dense).
public struct SearchOutcome: Hashable, Sendable, Codable {
    public var pruning: PruningChoice?
    public var candidates: [CandidateResult]
    /// The best candidate for the objective that also held its targets over the whole run.
    public var best: Int?
    /// The best plan re-simulated over the workload's whole duration.
    public var verified: RunSummary?
    /// Each whole-workload verification in order: the candidate, and what the run found.
    public var verifications: [Verification] = []
    /// The best plan as a scenario file.
    public var bestScenario: String?
    /// The fidelity proxy of the pruned model (nil when dense).
    public var fidelity: Fidelity?
    public var simulated: Int
    public var wallSeconds: Double
}

/// One verification of a candidate over the whole workload.
public struct Verification: Hashable, Sendable, Codable {
    public var candidate: Int
    public var label: String
    /// nil: it held every target; else the target it missed.
    public var missed: String?
}

/// What `joule plan` found.
public struct PlanResult: Hashable, Sendable, Codable {
    public var workload: String
    public var model: String
    public var hardware: String
    public var slo: PlanSLO
    public var objective: PlanObjective
    /// Pre-warm (long requests only), full-load warm-up and measured window, simulated seconds.
    public var prewarmSeconds: Double
    public var warmupSeconds: Double
    public var windowSeconds: Double
    public var load: OfferedLoad
    public var carbonRegion: String
    public var gpuHourUSD: Double
    /// The dense search, then one per pruning configuration.
    public var dense: SearchOutcome
    public var pruned: [SearchOutcome]
    public var quality: [String: [PlanningData.QualityFigure]]
    public var limits: [String]
    public var stepShapesCached: Int
    public var wallSeconds: Double
}

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

    // MARK: - Search strategies

    struct Part {
        var results: [CandidateResult]
        var fidelity: Fidelity?
    }

    /// Work for the simulator: a candidate and the stage it belongs to.
    struct Job {
        var plan: CandidatePlan
        var stage: String
    }

    /// Sizes of a plan on the node, as deployed: pruning that frees memory for fewer GPUs
    /// repacks a pool on fewer GPUs than the file's `ep` says.
    func size(_ plan: CandidatePlan) -> (gpus: Int, nodes: Int) {
        let node = base.scenario.node
        if case .success(let (s, _)) = scenario(plan) {
            let pools = s.topology.pools
            return (pools.reduce(0) { $0 + $1.units * $1.deployment.gpus }, pools.reduce(0) { $0 + $1.units * $1.deployment.nodes(on: node) })
        }
        let g = node.gpusPerNode
        return (plan.pools.reduce(0) { $0 + $1.units * $1.gpusPerUnit }, plan.pools.reduce(0) { $0 + $1.units * (($1.gpusPerUnit + g - 1) / g) })
    }

    /// How the pools are deployed, where that differs from the plan's file (pruning repacked them), or nil.
    func deployed(_ plan: CandidatePlan) -> String? {
        guard case .success(let (s, _)) = scenario(plan) else { return nil }
        let changed = zip(plan.pools, s.topology.pools).compactMap { choice, pool -> String? in
            let d = pool.deployment
            guard d.expertParallel != choice.ep || d.redundantExperts != choice.redundantExperts else { return nil }
            return "\(choice.role) EP\(d.expertParallel)" + (d.redundantExperts > 0 ? "+\(d.redundantExperts)" : "")
        }
        return changed.isEmpty ? nil : changed.joined(separator: ", ")
    }

    func withinLimit(_ plan: CandidatePlan) -> Bool { options.maxNodes.map { size(plan).nodes <= $0 } ?? true }

    /// Simulates `jobs` on every core; results keep the jobs' order.
    func simulate(_ jobs: [Job], firstID: Int, label: String, progress: (@Sendable (String, Int, Int) -> Void)?) -> [CandidateResult] {
        let out = Mutex<[Int: CandidateResult]>([:])
        let done = Atomic<Int>(0)
        let next = Atomic<Int>(0)
        let workers = min(options.parallelism, max(jobs.count, 1))
        DispatchQueue.concurrentPerform(iterations: workers) { _ in
            while true {
                let i = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard i < jobs.count else { return }
                let job = jobs[i]
                let (gpus, nodes) = size(job.plan)
                var result = CandidateResult(id: firstID + i, plan: job.plan, stage: job.stage, gpus: gpus, nodes: nodes)
                result.deployedAs = deployed(job.plan)
                switch scenario(job.plan) {
                case .failure(let r): result.rejection = r
                case .success(let (s, _)):
                    let (f, r) = evaluate(job.plan, scenario: s)
                    result.figures = f
                    result.rejection = r
                }
                out.withLock { $0[i] = result }
                let n = done.wrappingAdd(1, ordering: .relaxed).newValue
                progress?(label, n, jobs.count)
            }
        }
        let all = out.withLock { $0 }
        return jobs.indices.map { all[$0]! }
    }

    /// Unit counts tried for a layout that needs `u0` units by the step-cost bound.
    func unitCounts(_ u0: Int) -> [Int] {
        Array(Set([1.0, 1.1, 1.2, 1.3, 1.4].map { Int((Double(u0) * $0).rounded(.up)) } + [u0 + 1])).sorted()
    }

    /// A layout's bound, through its loaded scenario (pruning applied).
    func bound(_ plan: CandidatePlan, pool index: Int) -> (Result<PoolBound, Rejection>, Fidelity?) {
        switch scenario(plan) {
        case .failure(let r): return (.failure(r), nil)
        case .success(let (s, f)):
            return (AnalyticScreen(scenario: s, load: load, slo: options.slo).bound(s.topology.pools[index]), f)
        }
    }

    /// Whether a simulated candidate meets the targets its pool is responsible for.
    func poolMeets(_ f: WindowFigures, role: String) -> Bool {
        let slo = options.slo
        let prefill = f.ttft99 <= slo.ttftP99 && f.unstarted <= f.requests / 100
        let decode = f.tpot99 <= slo.tpotP99 && (slo.tokensPerUser.map { f.tpot50 <= 1 / $0 } ?? true)
        switch role {
        case "prefill": return prefill
        case "decode": return decode
        default: return prefill && decode
        }
    }

    /// A pool's own score for ranking layouts: its energy per request (or its GPUs, for the GPU and cost objectives).
    func poolScore(_ c: CandidateResult, index: Int) -> (Double, Double) {
        let role = c.plan.pools[index].role
        let e = role == "unit" ? c.figures!.whPerRequest : c.figures!.whPerRequestByRole[role] ?? .infinity
        let pool = c.plan.pools[index]
        let perUnit = (try? scenario(c.plan).get().0.topology.pools[index].deployment.gpus) ?? pool.gpusPerUnit
        let gpus = Double(pool.units * perUnit)
        switch options.objective {
        case .energy, .carbon: return (e, gpus)
        case .gpus, .cost: return (gpus, e)
        }
    }

    /// Adds, for each layout, the largest batch cap whose full step meets the TPOT target (from the step-cost model).
    func withStepCaps(_ layouts: [PoolChoice], scenarioFor: (PoolChoice) -> CandidatePlan, index: Int) -> [PoolChoice] {
        var out = layouts
        var seen = Set<PoolChoice>()
        for l in layouts {
            var shape = l
            shape.maxBatchPerRank = 1
            shape.tokenBudgetPerRank = 1
            guard seen.insert(shape).inserted else { continue }
            var one = l
            one.units = 1
            guard case .success(let (s, _)) = scenario(scenarioFor(one)),
                  let b = AnalyticScreen(scenario: s, load: load, slo: options.slo).largestBatch(s.topology.pools[index]), b >= 8 else { continue }
            for budget in Set(layouts.filter { $0.ep == l.ep && $0.tp == l.tp && $0.redundantExperts == l.redundantExperts && $0.microBatches == l.microBatches }.map(\.tokenBudgetPerRank)).sorted() {
                var c = l
                c.maxBatchPerRank = b
                c.tokenBudgetPerRank = budget
                if !out.contains(c) { out.append(c) }
            }
        }
        return out
    }

    /// For the best few layouts of one pool, bisects the unit count between the largest that
    /// missed the pool's targets and the smallest that met them, in rounds simulated in parallel.
    func refine(
        _ results: [CandidateResult], index: Int, firstID: Int, label: String, progress: (@Sendable (String, Int, Int) -> Void)?
    ) -> [CandidateResult] {
        let role = results.first?.plan.pools[index].role ?? ""
        var groups: [PoolChoice: [CandidateResult]] = [:]
        for c in results where c.figures != nil { groups[c.plan.pools[index].layout, default: []].append(c) }
        // Each layout's smallest passing unit count, and the largest failing one below it.
        struct Gap { var template: CandidatePlan; var fail: Int; var pass: Int; var score: (Double, Double) }
        var gaps: [Gap] = []
        for (_, cs) in groups {
            let passing = cs.filter { poolMeets($0.figures!, role: role) }.sorted { $0.plan.pools[index].units < $1.plan.pools[index].units }
            guard let first = passing.first else { continue }
            let pass = first.plan.pools[index].units
            let fail = cs.filter { !poolMeets($0.figures!, role: role) }.map { $0.plan.pools[index].units }.filter { $0 < pass }.max() ?? 0
            gaps.append(Gap(template: first.plan, fail: fail, pass: pass, score: poolScore(first, index: index)))
        }
        gaps.sort { a, b in a.score != b.score ? a.score < b.score : a.template.label < b.template.label }
        var active = Array(gaps.prefix(4))
        var out: [CandidateResult] = []
        while true {
            var jobs: [Job] = []
            var owners: [Int] = []
            for (g, gap) in active.enumerated() where gap.pass - gap.fail > 1 {
                var plan = gap.template
                plan.pools[index].units = (gap.pass + gap.fail) / 2
                guard withinLimit(plan) else { continue }
                jobs.append(Job(plan: plan, stage: "\(role) refinement"))
                owners.append(g)
            }
            if jobs.isEmpty { break }
            let round = simulate(jobs, firstID: firstID + out.count, label: label, progress: progress)
            for (g, c) in zip(owners, round) {
                let u = c.plan.pools[index].units
                if c.figures.map({ poolMeets($0, role: role) }) == true { active[g].pass = u } else { active[g].fail = u }
            }
            out += round
        }
        return out
    }

    func searchDisaggregated(pruning: PruningChoice?, freed: String?, firstID: Int, label: String, progress: (@Sendable (String, Int, Int) -> Void)?) -> Part {
        let model = base.scenario.model, node = base.scenario.node
        // A placeholder partner while one pool's layouts are screened: the base scenario's own pool.
        let basePools = base.poolChoices
        func plan(_ p: PoolChoice, _ d: PoolChoice) -> CandidatePlan {
            CandidatePlan(kind: "disaggregated", pools: [p, d], pruning: pruning, freedMemory: freed)
        }
        let prefills = space.layouts(role: "prefill", model: model, node: node)
        let decodes = withStepCaps(space.layouts(role: "decode", model: model, node: node), scenarioFor: { plan(withUnits(basePools[0], 1), $0) }, index: 1)
        var fidelity: Fidelity?
        var screenedP: [(PoolChoice, Result<PoolBound, Rejection>)] = []
        for p in prefills {
            let (b, f) = bound(plan(withUnits(p, 1), withUnits(basePools[1], 1)), pool: 0)
            fidelity = fidelity ?? f
            screenedP.append((p, b))
        }
        var screenedD: [(PoolChoice, Result<PoolBound, Rejection>)] = []
        for d in decodes {
            let (b, f) = bound(plan(withUnits(basePools[0], 1), withUnits(d, 1)), pool: 1)
            fidelity = fidelity ?? f
            screenedD.append((d, b))
        }
        // Partners for each sweep: the layout with the most requests per GPU, with room to spare.
        func reference(_ screened: [(PoolChoice, Result<PoolBound, Rejection>)]) -> PoolChoice? {
            let ok = screened.compactMap { c, r -> (PoolChoice, PoolBound)? in (try? r.get()).map { (c, $0) } }
            guard let best = ok.min(by: { a, b in
                Double(a.0.gpusPerUnit) / a.1.requestsPerSecondPerUnit < Double(b.0.gpusPerUnit) / b.1.requestsPerSecondPerUnit
            }) else { return nil }
            return withUnits(best.0, Int((Double(best.1.unitsNeeded) * 1.4).rounded(.up)) + 1)
        }
        var results: [CandidateResult] = []
        guard let refP = reference(screenedP), let refD = reference(screenedD) else {
            // Nothing passes one pool's screen: every layout is reported with its reason.
            for (p, r) in screenedP {
                if case .failure(let why) = r { results.append(rejected(plan(withUnits(p, 1), withUnits(basePools[1], 1)), why, id: firstID + results.count)) }
            }
            for (d, r) in screenedD {
                if case .failure(let why) = r { results.append(rejected(plan(withUnits(basePools[0], 1), withUnits(d, 1)), why, id: firstID + results.count)) }
            }
            return Part(results: results, fidelity: fidelity)
        }
        var jobs: [Job] = []
        func sweep(_ screened: [(PoolChoice, Result<PoolBound, Rejection>)], role: Int) {
            for (layout, r) in screened {
                sweepUnits(layout, r, make: { role == 0 ? plan($0, refD) : plan(refP, $0) }, stage: role == 0 ? "prefill sweep" : "decode sweep",
                           firstID: firstID, results: &results, jobs: &jobs)
            }
        }
        sweep(screenedP, role: 0)
        sweep(screenedD, role: 1)
        var simulated = simulate(jobs, firstID: firstID + results.count, label: "\(label): pool sweeps", progress: progress)
        let sweptP = simulated.filter { $0.stage == "prefill sweep" }, sweptD = simulated.filter { $0.stage == "decode sweep" }
        simulated += refine(sweptP, index: 0, firstID: firstID + results.count + simulated.count, label: "\(label): prefill units", progress: progress)
        simulated += refine(sweptD, index: 1, firstID: firstID + results.count + simulated.count, label: "\(label): decode units", progress: progress)
        // Combine the best prefill and decode pools (each judged on its own pool's targets and energy).
        func poolBest(_ index: Int) -> [PoolChoice] {
            let role = index == 0 ? "prefill" : "decode"
            let fine = simulated.filter { c in
                c.plan.pools[1 - index] == (index == 0 ? refD : refP) && c.figures.map { poolMeets($0, role: role) } == true
            }
            let sorted = fine.sorted { a, b in
                let sa = poolScore(a, index: index), sb = poolScore(b, index: index)
                return sa != sb ? sa < sb : a.id < b.id
            }
            var seen: [PoolChoice] = []
            for c in sorted where !seen.contains(c.plan.pools[index]) {
                seen.append(c.plan.pools[index])
                if seen.count == 3 { break }
            }
            return seen
        }
        let known = Set(simulated.map(\.plan))
        var combos: [Job] = []
        for p in poolBest(0) {
            for d in poolBest(1) {
                let c = plan(p, d)
                if !known.contains(c) && withinLimit(c) { combos.append(Job(plan: c, stage: "combination")) }
            }
        }
        simulated += simulate(combos, firstID: firstID + results.count + simulated.count, label: "\(label): combinations", progress: progress)
        return Part(results: results + simulated, fidelity: fidelity)
    }

    func searchColocated(pruning: PruningChoice?, freed: String?, firstID: Int, label: String, progress: (@Sendable (String, Int, Int) -> Void)?) -> Part {
        let layouts = withStepCaps(
            space.layouts(role: "unit", model: base.scenario.model, node: base.scenario.node),
            scenarioFor: { CandidatePlan(kind: "colocated", pools: [$0], pruning: pruning, freedMemory: freed) }, index: 0
        )
        var results: [CandidateResult] = []
        var jobs: [Job] = []
        var fidelity: Fidelity?
        for layout in layouts {
            let make = { (p: PoolChoice) in CandidatePlan(kind: "colocated", pools: [p], pruning: pruning, freedMemory: freed) }
            let (r, f) = bound(make(withUnits(layout, 1)), pool: 0)
            fidelity = fidelity ?? f
            sweepUnits(layout, r, make: make, stage: "unit sweep", firstID: firstID, results: &results, jobs: &jobs)
        }
        var simulated = simulate(jobs, firstID: firstID + results.count, label: "\(label): units", progress: progress)
        simulated += refine(simulated, index: 0, firstID: firstID + results.count + simulated.count, label: "\(label): unit counts", progress: progress)
        return Part(results: results + simulated, fidelity: fidelity)
    }

    /// One screened layout of a sweep: its rejection, or the unit counts to simulate around its
    /// bound (and the count just below the bound, recorded as saturated without simulating).
    func sweepUnits(
        _ layout: PoolChoice, _ screened: Result<PoolBound, Rejection>, make: (PoolChoice) -> CandidatePlan, stage: String, firstID: Int,
        results: inout [CandidateResult], jobs: inout [Job]
    ) {
        switch screened {
        case .failure(let why):
            let one = make(withUnits(layout, 1))
            if withinLimit(one) { results.append(rejected(one, why, id: firstID + results.count)) }
        case .success(let b):
            let short = b.unitsNeeded - 1
            if short >= 1, withinLimit(make(withUnits(layout, short))) {
                func rate(_ v: Double) -> String { v.formatted(.number.precision(.significantDigits(4))) }
                let carry = "\(short) unit\(short == 1 ? " carries" : "s carry") \(rate(Double(short) * b.requestsPerSecondPerUnit)) requests/s at the step-cost bound"
                results.append(rejected(make(withUnits(layout, short)), .saturated("\(carry); the load is \(rate(load.requestsPerSecond))"), id: firstID + results.count))
            }
            for u in unitCounts(b.unitsNeeded) {
                let p = make(withUnits(layout, u))
                if withinLimit(p) { jobs.append(Job(plan: p, stage: stage)) }
            }
        }
    }

    func rejected(_ plan: CandidatePlan, _ why: Rejection, id: Int) -> CandidateResult {
        let (gpus, nodes) = size(plan)
        var c = CandidateResult(id: id, plan: plan, stage: "analytic screen", gpus: gpus, nodes: nodes, rejection: why)
        c.deployedAs = deployed(plan)
        return c
    }

    func withUnits(_ p: PoolChoice, _ units: Int) -> PoolChoice {
        var p = p
        p.units = units
        return p
    }

    /// The published serving figures of the planned model's family against Joule's, computed now
    /// from the calibration targets (DeepSeek's day-6 figures for DeepSeek-V3 and R1), or nil.
    func calibrationLine() -> String? {
        let id = base.scenario.model.id
        guard id.hasPrefix("deepseek-v3") || id.hasPrefix("deepseek-r1") else { return nil }
        let library = library, directory = dataDirectory
        guard let targets = try? Catalog.loadCalibrationTargets(from: directory).filter({ $0.id.hasPrefix("deepseek.serving.") }), !targets.isEmpty,
              let rows = try? CalibrationRunner(
                library: library, fleetNodeHours: { try Catalog.fleetNodeHours($0, library: library, dataDirectory: directory) }
              ).run(targets)
        else { return nil }
        let parts = rows.map { r in
            "\(r.target.description.split(separator: ";").first ?? "") \(CalibrationReport.format(r.computed)) against \(CalibrationReport.format(r.target.published)) \(r.target.unit) (\(r.relativeError >= 0 ? "+" : "")\(CalibrationReport.format(100 * r.relativeError)) %)"
        }
        return "Against DeepSeek's published serving figures, computed now: " + parts.joined(separator: "; ") + "."
    }

    /// What the search leaves out and what bounds its answer.
    func limits() -> [String] {
        var out = [
            base.colocated
                ? "Searched: colocated units (TP within a node, experts sharded or expert-parallel over the unit's GPUs), batch caps (with the largest whose step meets the TPOT target), token budgets and unit counts."
                : "Searched: prefill and decode pools, each expert-parallel over whole nodes with the fewest or one more redundant expert per GPU and \(options.microBatches.map(String.init).joined(separator: " or ")) micro-batches; prefill token budgets; decode batch caps (with the largest whose step meets the TPOT target); unit counts around the step-cost bound, bisected to the fewest that meet the targets; so the prefill:decode split.",
            "Not searched: memory reserve (the scenario's), routing policies, node schedules over the day, mixed layouts within a pool, quantisation, speculative decoding, other hardware\(options.pruning.isEmpty ? "" : "; pruned models are repacked on fewer GPUs (freedMemory: fewer-gpus), never given the freed memory as KV cache instead")\(base.colocated ? "" : "; tensor parallelism for expert-parallel pools").",
            "Each candidate is judged on \(fmt(options.windowSeconds)) s of arrivals after \(fmt(options.warmupSeconds)) s of full-load warm-up, preceded by \(fmt(prewarmSeconds)) s in which only the requests still decoding at the window's start arrive (99 % of the steady decode population, from the output lengths at the TPOT target); the best is re-simulated over the whole workload before it is returned. A load that changes over the day needs a plan per stretch (or `joule simulate --size-fleet`).",
            "Routing skew: expert loads follow a Zipf popularity (skew \(fmt(base.routing?.skew ?? library.serving.expertPopularity.skew)), an assumption, Data/SOURCES.md); a more skewed real router slows every expert-parallel candidate.",
            "The step and power model's fit against measurements bounds every figure here: see docs/calibration.md (fit and check errors per target)."
                + (calibrationLine().map { " " + $0 } ?? ""),
        ]
        if !base.colocated {
            out.insert("Prefill and decode pools are swept against a fixed partner and the three best of each are combined: the pools interact only through the KV transfer, which the combinations simulate.", at: 3)
        }
        if base.scenario.schedule != nil { out.append("The base scenario's node schedule is dropped: a plan serves its window at a fixed size.") }
        return out
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
