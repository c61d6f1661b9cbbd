import Accounting
import Calibration
import Catalog
import Foundation
import MoE
import Routing
import Serving
import Synchronization

/// The search strategies: sweeps of each pool's layouts and unit counts, their refinement, and the
/// combination of the best pools; candidates simulated on every core.
extension Planner {
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
}
