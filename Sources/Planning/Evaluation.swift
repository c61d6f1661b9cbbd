import Accounting
import Catalog
import Foundation
import MoE
import Serving

/// The offered load the planner sizes against, measured from the workload's own first
/// warm-up-plus-window seconds (so a trace and a generator are read the same way).
public struct OfferedLoad: Hashable, Sendable, Codable {
    public var seconds: Double
    public var requests: Int
    public var requestsPerSecond: Double
    public var meanPromptTokens: Double
    /// Prompt tokens computed (not cache hits), per request.
    public var meanComputedTokens: Double
    public var meanOutputTokens: Double
    /// Mean KV length of a sequence in decode, weighted by the steps it spends there.
    public var meanDecodeContext: Double
    /// The largest prompt + output of any request (what one decode rank's KV cache must hold).
    public var largestRequestTokens: Int

    /// Measures `requests` (arrival-ordered) over `[0, seconds)`.
    public static func measure(_ requests: [ServingRequest], seconds: Double) -> OfferedLoad {
        var n = 0, prompt = 0.0, computed = 0.0, output = 0.0, contextSteps = 0.0, largest = 0
        for r in requests where r.arrival < seconds {
            n += 1
            prompt += Double(r.promptTokens)
            computed += Double(r.computedTokens)
            output += Double(r.outputTokens)
            // Σ over its decode steps of (prompt + tokens so far).
            let o = Double(r.outputTokens)
            contextSteps += o * Double(r.promptTokens) + o * (o + 1) / 2
            largest = max(largest, r.promptTokens + r.outputTokens)
        }
        let d = Double(max(n, 1))
        return OfferedLoad(
            seconds: seconds, requests: n, requestsPerSecond: Double(n) / seconds, meanPromptTokens: prompt / d,
            meanComputedTokens: computed / d, meanOutputTokens: output / d, meanDecodeContext: output > 0 ? contextSteps / output : prompt / d,
            largestRequestTokens: largest
        )
    }
}

/// Why a candidate lost before or during simulation.
public enum Rejection: Error, Hashable, Sendable, Codable {
    /// The weights or the KV cache a request needs do not fit.
    case memory(String)
    /// A step the SLO needs is already too slow at the smallest or the configured size.
    case stepBound(String)
    /// The pool cannot carry the offered load (analytically, or its queue grew in simulation).
    case saturated(String)
    /// Simulated, and a latency target was missed.
    case sloMissed(String)
    /// The scenario does not hold together (a layout the model cannot take).
    case invalid(String)

    public var kind: String {
        switch self {
        case .memory: return "memory"
        case .stepBound: return "step-cost bound"
        case .saturated: return "saturated"
        case .sloMissed: return "SLO missed"
        case .invalid: return "invalid"
        }
    }

    public var reason: String {
        switch self {
        case .memory(let m), .stepBound(let m), .saturated(let m), .sloMissed(let m), .invalid(let m): return m
        }
    }
}

/// What one pool's unit can do at its caps, from the step-cost model (no simulation).
struct PoolBound {
    /// Requests per second one unit carries at its operating point.
    var requestsPerSecondPerUnit: Double
    /// Units needed for the offered load at that rate.
    var unitsNeeded: Int
}

/// The analytic screen: memory, the step-cost bound at the pool's caps, and capacity.
struct AnalyticScreen {
    var scenario: ServingScenario
    var load: OfferedLoad
    var slo: PlanSLO

    func cost(_ pool: PoolSpec) -> StepCostModel {
        StepCostModel(model: scenario.model, node: scenario.node, site: scenario.site, deployment: pool.deployment)
    }

    /// The largest batch per rank (up to 1024) whose decode step meets the TPOT target at the
    /// workload's mean context, or nil when one sequence already misses it.
    func largestBatch(_ pool: PoolSpec) -> Int? {
        let c = cost(pool)
        let context = max(1, load.meanDecodeContext)
        func fits(_ b: Int) -> Bool { c.estimate(.decode(sequences: Double(b), context: context)).stepTime.seconds <= slo.decodeStepTarget }
        guard fits(1) else { return nil }
        var lo = 1, hi = 1024
        if fits(hi) { return hi }
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if fits(mid) { lo = mid } else { hi = mid }
        }
        return lo
    }

    /// The bound of one pool, or why it cannot work at any unit count.
    func bound(_ pool: PoolSpec) -> Result<PoolBound, Rejection> {
        let c = cost(pool)
        let ranks = Double(pool.deployment.attentionRanks)
        let kv = c.kvTokensPerRank(memoryReserveFraction: pool.memoryReserveFraction)
        let gb = c.weightBytesPerGPU / 1e9
        let memory = Double(scenario.node.gpu.memoryBytes) / 1e9
        if kv < 1 {
            return .failure(.memory("the weights (\(Int(gb.rounded())) GB per GPU) leave no KV cache in \(Int(memory.rounded())) GB"))
        }
        var prefillRate = Double.infinity
        if pool.role != .decode {
            let budget = Double(pool.tokenBudgetPerRank)
            let step = c.estimate(.prefill(computedTokens: budget, cachedFraction: 0, context: max(budget, load.meanPromptTokens))).stepTime.seconds
            if step > slo.ttftP99 {
                return .failure(.stepBound("a full prefill step of \(pool.tokenBudgetPerRank) tokens per rank takes \(fmt(step)) s, over the \(fmt(slo.ttftP99)) s TTFT target"))
            }
            prefillRate = budget * ranks / step
        }
        var decodeRate = Double.infinity
        if pool.role != .prefill {
            if kv < load.largestRequestTokens {
                return .failure(.memory("the largest request (\(load.largestRequestTokens) tokens of KV) does not fit one rank's KV cache (\(kv) tokens)"))
            }
            let context = max(1, load.meanDecodeContext)
            func step(_ b: Double) -> Double { c.estimate(.decode(sequences: b, context: context)).stepTime.seconds }
            let target = slo.decodeStepTarget
            let one = step(1)
            if one > target {
                return .failure(.stepBound("one sequence per rank takes \(fmt(one * 1e3)) ms per token, over the \(fmt(target * 1e3)) ms target"))
            }
            let cap = Double(pool.maxBatchPerRank)
            let full = step(cap)
            if full > target {
                return .failure(.stepBound("a full batch of \(pool.maxBatchPerRank) per rank takes \(fmt(full * 1e3)) ms per token, over the \(fmt(target * 1e3)) ms target (smaller caps are searched)"))
            }
            let batch = min(cap, (Double(kv) / context).rounded(.down))
            guard batch >= 1 else {
                return .failure(.memory("not one sequence of the mean decode context (\(Int(context)) tokens) fits one rank's KV cache (\(kv) tokens)"))
            }
            decodeRate = batch * ranks / step(batch)
        }
        // Seconds of a unit's time one request takes: its prompt at the prefill rate and its output at the decode rate.
        let perRequest = (pool.role != .decode ? load.meanComputedTokens / prefillRate : 0) + (pool.role != .prefill ? load.meanOutputTokens / decodeRate : 0)
        let rate = 1 / perRequest
        let needed = max(1, Int((load.requestsPerSecond / rate).rounded(.up)))
        return .success(PoolBound(requestsPerSecondPerUnit: rate, unitsNeeded: needed))
    }
}

func fmt(_ v: Double) -> String {
    if v == v.rounded(), abs(v) < 1e6 { return String(Int(v)) }
    let digits = abs(v) >= 100 ? 0 : abs(v) >= 10 ? 1 : abs(v) >= 1 ? 2 : 3
    return v.formatted(.number.precision(.fractionLength(digits)).grouping(.never))
}

/// Figures measured over the steady window of one candidate's simulation.
public struct WindowFigures: Hashable, Sendable, Codable {
    /// Requests that arrived in the window.
    public var requests: Int
    public var outputTokens: Int
    /// Latency quantiles, seconds (nil: no request got that far).
    public var ttftP50: Double?
    public var ttftP99: Double?
    public var tpotP50: Double?
    public var tpotP99: Double?
    /// The quantiles with a missing one as infinitely slow, for judging and ranking.
    var ttft50: Double { ttftP50 ?? .infinity }
    var ttft99: Double { ttftP99 ?? .infinity }
    var tpot50: Double { tpotP50 ?? .infinity }
    var tpot99: Double { tpotP99 ?? .infinity }
    /// Window arrivals still without a first token when the run ended (the tail after the window included).
    public var unstarted: Int
    /// Facility energy of the window, over the window's arrivals (steady state: what each costs), in Wh.
    public var whPerRequest: Double
    /// The same per 1,000 output tokens, in Wh.
    public var whPer1kTokens: Double
    /// Operational plus embodied carbon per request, g.
    public var carbonGramsPerRequest: Double
    /// GPU rental per 1,000 requests, USD.
    public var costPer1kRequests: Double
    /// Facility energy per request by pool role.
    public var whPerRequestByRole: [String: Double]
    /// Share of the window the entry (prefill or colocated) pool spent in steps.
    public var entryBusyFraction: Double
    /// Mean TTFT and TPOT of the window's first and last thirds (a growing queue shows here).
    public var ttftTrend: [Double]
    public var tpotTrend: [Double]
}

/// Runs one candidate over warm-up + window and measures the window.
struct WindowRun {
    var warmup: Double
    var window: Double
    var gpuHourUSD: Double

    /// Simulated seconds after the window in which the window's last arrivals finish their prefill
    /// (the load keeps arriving), so that their TTFT is measured rather than cut off.
    var tail: Double

    func run(_ scenario: ServingScenario, requests: [ServingRequest]) throws -> WindowFigures {
        var s = scenario
        let end = warmup + window
        let stop = end + tail
        s.duration = stop
        s.intervalSeconds = 10
        var simulator = try ServingSimulator(scenario: s)
        var stream = TraceStream(requests.prefix { $0.arrival < stop }.map { $0 })
        var ttft: [Double] = [], tpot: [Double] = []
        var arrivals = 0, output = 0, unstarted = 0
        var thirds = [(0.0, 0), (0.0, 0), (0.0, 0)], tpotThirds = [(0.0, 0), (0.0, 0), (0.0, 0)]
        var energy: [String: Double] = [:]
        var carbon = 0.0, gpuSeconds = 0.0, entryBusy = 0.0, entrySeconds = 0.0
        let entryRole = s.topology.pools[0].role
        _ = try simulator.run(&stream, onRecord: { r in
            guard r.arrival >= warmup, r.arrival < end else { return }
            arrivals += 1
            output += r.outputTokens
            let third = min(2, Int((r.arrival - warmup) / window * 3))
            if let f = r.firstToken {
                let t = f - r.arrival
                ttft.append(t)
                thirds[third].0 += t
                thirds[third].1 += 1
                if let finish = r.finish, r.outputTokens > 1 {
                    let p = (finish - f) / Double(r.outputTokens - 1)
                    tpot.append(p)
                    tpotThirds[third].0 += p
                    tpotThirds[third].1 += 1
                }
            } else {
                // Still queued at the end: its TTFT is at least this long.
                unstarted += 1
                ttft.append(stop - r.arrival)
                thirds[third].0 += stop - r.arrival
                thirds[third].1 += 1
            }
        }, onInterval: { i in
            guard i.start >= warmup - 1e-9, i.end <= end + 1e-9 else { return }
            energy[i.role.rawValue, default: 0] += i.facilityJoules
            carbon += i.operationalCarbonGrams
            gpuSeconds += i.gpuSeconds
            if i.role == entryRole {
                entryBusy += i.busyFraction * i.inServiceSeconds
                entrySeconds += i.inServiceSeconds
            }
        })
        ttft.sort()
        tpot.sort()
        func q(_ xs: [Double], _ p: Double) -> Double? { xs.isEmpty ? nil : xs[min(xs.count - 1, max(0, Int((Double(xs.count) * p).rounded(.up)) - 1))] }
        let n = Double(max(arrivals, 1))
        let total = energy.values.reduce(0, +)
        let embodied = s.embodied.share(gpuSeconds: gpuSeconds).grams
        let gpus = Double(s.topology.pools.reduce(0) { $0 + $1.units * $1.deployment.gpus })
        return WindowFigures(
            requests: arrivals, outputTokens: output, ttftP50: q(ttft, 0.5), ttftP99: q(ttft, 0.99), tpotP50: q(tpot, 0.5), tpotP99: q(tpot, 0.99),
            unstarted: unstarted, whPerRequest: total / 3600 / n, whPer1kTokens: total / 3600 / Double(max(output, 1)) * 1000,
            carbonGramsPerRequest: (carbon + embodied) / n, costPer1kRequests: gpus * window / 3600 * gpuHourUSD / n * 1000,
            whPerRequestByRole: energy.mapValues { $0 / 3600 / n },
            entryBusyFraction: entrySeconds > 0 ? entryBusy / entrySeconds : 0,
            ttftTrend: thirds.map { $0.1 > 0 ? $0.0 / Double($0.1) : 0 }, tpotTrend: tpotThirds.map { $0.1 > 0 ? $0.0 / Double($0.1) : 0 }
        )
    }
}
