import Foundation
import Routing
import Serving

/// Why planning cannot start: a flag or file that does not hold together.
public struct PlanInputError: Error, Hashable, CustomStringConvertible {
    public var field: String
    public var message: String
    public init(_ field: String, _ message: String) {
        self.field = field
        self.message = message
    }
    public var description: String { "\(field): \(message)" }
}

/// Latency targets a plan must meet, as `--slo ttft-p99=2s,tpot-p99=50ms,tokens-per-user=20` gives them.
public struct PlanSLO: Hashable, Sendable, Codable {
    /// 99th percentile of time to first token, seconds.
    public var ttftP99: Double
    /// 99th percentile of time per output token, seconds.
    public var tpotP99: Double
    /// The median user's output speed (1 ÷ TPOT p50) must reach this many tokens per second (nil: no target).
    public var tokensPerUser: Double?

    public init(ttftP99: Double, tpotP99: Double, tokensPerUser: Double? = nil) {
        self.ttftP99 = ttftP99
        self.tpotP99 = tpotP99
        self.tokensPerUser = tokensPerUser
    }

    /// The per-step time a decode batch may take: the tighter of the p99 target and the per-user speed.
    public var decodeStepTarget: Double { min(tpotP99, tokensPerUser.map { 1 / $0 } ?? .infinity) }

    /// Parses `ttft-p99=2s,tpot-p99=50ms[,tokens-per-user=20]` (times in s or ms).
    public static func parse(_ text: String) throws -> PlanSLO {
        var ttft: Double?, tpot: Double?, perUser: Double?
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let kv = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard kv.count == 2, !kv[0].isEmpty else {
                throw PlanInputError("--slo", "expected KEY=VALUE items separated by commas (ttft-p99=2s,tpot-p99=50ms,tokens-per-user=20), got '\(part)'")
            }
            switch kv[0] {
            case "ttft-p99": ttft = try seconds(kv[1], key: kv[0], range: 0.001...3600)
            case "tpot-p99": tpot = try seconds(kv[1], key: kv[0], range: 0.0001...60)
            case "tokens-per-user":
                guard let v = Double(kv[1]), v.isFinite, (0.01...10_000).contains(v) else {
                    throw PlanInputError("--slo tokens-per-user", "expected output tokens per second from 0.01 to 10000, got '\(kv[1])'")
                }
                perUser = v
            default:
                throw PlanInputError("--slo", "unknown target '\(kv[0])'; expected ttft-p99, tpot-p99 or tokens-per-user")
            }
        }
        guard let ttft else { throw PlanInputError("--slo", "missing ttft-p99 (for example ttft-p99=2s)") }
        guard let tpot else { throw PlanInputError("--slo", "missing tpot-p99 (for example tpot-p99=50ms)") }
        return PlanSLO(ttftP99: ttft, tpotP99: tpot, tokensPerUser: perUser)
    }

    private static func seconds(_ text: String, key: String, range: ClosedRange<Double>) throws -> Double {
        let (number, scale): (Substring, Double) = text.hasSuffix("ms") ? (text.dropLast(2), 1e-3) : text.hasSuffix("s") ? (text.dropLast(), 1) : (Substring(text), 1)
        guard let v = Double(number.trimmingCharacters(in: .whitespaces)).map({ $0 * scale }), v.isFinite, range.contains(v) else {
            throw PlanInputError("--slo \(key)", "expected a time like 2s or 50ms from \(range.lowerBound) s to \(range.upperBound) s, got '\(text)'")
        }
        return v
    }

    /// The targets as the flag writes them.
    public var text: String {
        func t(_ s: Double) -> String { s < 1 ? "\(trim(s * 1e3))ms" : "\(trim(s))s" }
        return "ttft-p99=\(t(ttftP99)),tpot-p99=\(t(tpotP99))" + (tokensPerUser.map { ",tokens-per-user=\(trim($0))" } ?? "")
    }
}

func trim(_ v: Double) -> String {
    v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v)
}

/// What the planner minimises among the plans that meet the SLO.
public enum PlanObjective: String, CaseIterable, Hashable, Sendable, Codable {
    /// Facility energy per request.
    case energy
    /// Operational plus embodied carbon per request.
    case carbon
    /// GPUs in service.
    case gpus
    /// GPU rental per request (Data/planning/prices.yaml).
    case cost
}

/// One pruning configuration the planner may apply (`--pruning`).
public struct PruningChoice: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Share of routed experts removed per layer (0 for top-k reduction or skipping alone).
    public var prunedFraction: Double
    public var ranking: PruningConfig.Ranking
    public var expertsPerToken: Int?
    public var skipBelowFractionOfTop: Double?

    public init(prunedFraction: Double = 0, ranking: PruningConfig.Ranking = .frequency, expertsPerToken: Int? = nil, skipBelowFractionOfTop: Double? = nil) {
        self.prunedFraction = prunedFraction
        self.ranking = ranking
        self.expertsPerToken = expertsPerToken
        self.skipBelowFractionOfTop = skipBelowFractionOfTop
    }

    /// The flag's spelling: `frequency=0.25`, `router-weighted=0.5`, `top-k=6`, `skip=0.8`.
    public var description: String {
        if let k = expertsPerToken { return "top-k=\(k)" }
        if let b = skipBelowFractionOfTop { return "skip=\(trim(b))" }
        return "\(ranking.rawValue)=\(trim(prunedFraction))"
    }

    /// The configurations `--pruning all` searches.
    public static let standard: [PruningChoice] = [
        .init(prunedFraction: 0.25, ranking: .frequency), .init(prunedFraction: 0.5, ranking: .frequency),
        .init(prunedFraction: 0.25, ranking: .routerWeighted), .init(prunedFraction: 0.5, ranking: .routerWeighted),
        .init(expertsPerToken: 6),
    ]

    /// Parses a comma-separated list of configurations, or `all`.
    public static func parseList(_ text: String) throws -> [PruningChoice] {
        if text == "all" { return standard }
        return try text.split(separator: ",").map { item in
            let kv = item.split(separator: "=", maxSplits: 1).map(String.init)
            let usage = "expected frequency=F, router-weighted=F (F a share of routed experts from 0.01 to 0.9), top-k=K, skip=B (0 < B < 1) or all"
            guard kv.count == 2 else { throw PlanInputError("--pruning", "\(usage); got '\(item)'") }
            switch kv[0] {
            case "frequency", "router-weighted":
                guard let f = Double(kv[1]), (0.01...0.9).contains(f) else { throw PlanInputError("--pruning \(kv[0])", "expected a share from 0.01 to 0.9, got '\(kv[1])'") }
                return PruningChoice(prunedFraction: f, ranking: kv[0] == "frequency" ? .frequency : .routerWeighted)
            case "top-k":
                guard let k = Int(kv[1]), k >= 1 else { throw PlanInputError("--pruning top-k", "expected a whole number of experts per token ≥ 1, got '\(kv[1])'") }
                return PruningChoice(expertsPerToken: k)
            case "skip":
                guard let b = Double(kv[1]), b > 0, b < 1 else { throw PlanInputError("--pruning skip", "expected a fraction of the top gate weight between 0 and 1, got '\(kv[1])'") }
                return PruningChoice(skipBelowFractionOfTop: b)
            default:
                throw PlanInputError("--pruning", "\(usage); got '\(item)'")
            }
        }
    }
}

/// How long each candidate is simulated, and how wide the search goes.
public struct PlanOptions: Hashable, Sendable {
    public var slo: PlanSLO
    public var objective: PlanObjective
    public var pruning: [PruningChoice]
    /// Simulated seconds of full load before measuring (queues and batches fill); long requests
    /// arrive before it for as long as the decode population needs to fill (the planner sizes that).
    public var warmupSeconds: Double
    /// Simulated seconds measured after the warm-up.
    public var windowSeconds: Double
    /// The most nodes a plan may use (nil: no limit).
    public var maxNodes: Int?
    /// Simulations run at once (default: every core).
    public var parallelism: Int
    /// Re-simulate the best plan over the workload's whole duration before returning it.
    public var verify: Bool
    /// Micro-batch counts searched for expert-parallel pools.
    public var microBatches: [Int] = [2]

    public init(
        slo: PlanSLO, objective: PlanObjective = .energy, pruning: [PruningChoice] = [], warmupSeconds: Double = 60, windowSeconds: Double = 60,
        maxNodes: Int? = nil, parallelism: Int = ProcessInfo.processInfo.activeProcessorCount, verify: Bool = true
    ) {
        self.slo = slo
        self.objective = objective
        self.pruning = pruning
        self.warmupSeconds = warmupSeconds
        self.windowSeconds = windowSeconds
        self.maxNodes = maxNodes
        self.parallelism = max(1, parallelism)
        self.verify = verify
    }

    /// Every problem with the options, by flag.
    public func validate() -> [PlanInputError] {
        var problems: [PlanInputError] = []
        if !(warmupSeconds.isFinite && (0...86_400).contains(warmupSeconds)) {
            problems.append(.init("--warmup", "expected 0 to 86400 simulated seconds, got \(warmupSeconds)"))
        }
        if !(windowSeconds.isFinite && (1...86_400).contains(windowSeconds)) {
            problems.append(.init("--window", "expected 1 to 86400 simulated seconds, got \(windowSeconds)"))
        }
        if let m = maxNodes, m < 1 { problems.append(.init("--max-nodes", "expected at least 1 node, got \(m)")) }
        if microBatches.isEmpty || microBatches.contains(where: { !(1...8).contains($0) }) {
            problems.append(.init("--micro-batches", "expected whole numbers from 1 to 8, got \(microBatches.map(String.init).joined(separator: ","))"))
        }
        return problems
    }
}
