import Foundation
import Routing
import Serving

/// One pool of a candidate deployment, as a scenario file's `deployment.prefill`, `.decode` or `.unit` writes it.
public struct PoolChoice: Hashable, Sendable, Codable {
    /// prefill, decode or unit (colocated).
    public var role: String
    public var units: Int
    public var ep: Int
    public var tp: Int
    public var redundantExperts: Int
    public var microBatches: Int
    public var maxBatchPerRank: Int
    public var tokenBudgetPerRank: Int

    public init(role: String, units: Int, ep: Int, tp: Int, redundantExperts: Int, microBatches: Int, maxBatchPerRank: Int, tokenBudgetPerRank: Int) {
        self.role = role
        self.units = units
        self.ep = ep
        self.tp = tp
        self.redundantExperts = redundantExperts
        self.microBatches = microBatches
        self.maxBatchPerRank = maxBatchPerRank
        self.tokenBudgetPerRank = tokenBudgetPerRank
    }

    /// GPUs in one unit (EP spans the unit; TP and DP multiply).
    public var gpusPerUnit: Int { max(ep, tp) }

    /// The pool's layout without its unit count (what the per-pool search varies around).
    public var layout: PoolChoice {
        var l = self
        l.units = 0
        return l
    }

    /// The flow mapping a scenario file takes.
    var yaml: String {
        "{units: \(units), ep: \(ep), tp: \(tp), redundantExperts: \(redundantExperts), microBatches: \(microBatches), maxBatchPerRank: \(maxBatchPerRank), tokenBudgetPerRank: \(tokenBudgetPerRank)}"
    }

    /// A short label: `4 × EP32 +32, 8K tokens` or `2 × TP4, batch 128`.
    public var label: String {
        let layout = ep > 1 ? "EP\(ep)" + (redundantExperts > 0 ? "+\(redundantExperts)" : "") + (tp > 1 ? " TP\(tp)" : "") : "TP\(tp)"
        let cap = role == "prefill" ? "\(tokenBudgetPerRank / 1024)K tok" : role == "decode" ? "batch \(maxBatchPerRank)" : "batch \(maxBatchPerRank), \(tokenBudgetPerRank / 1024)K tok"
        return "\(units)× \(layout), \(cap)" + (microBatches > 1 && role != "unit" ? "" : microBatches > 1 ? ", \(microBatches) µb" : "")
    }
}

/// A candidate deployment: its pools and, optionally, a pruning configuration.
public struct CandidatePlan: Hashable, Sendable, Codable {
    /// disaggregated or colocated.
    public var kind: String
    public var pools: [PoolChoice]
    public var pruning: PruningChoice?
    /// What pruning's freed memory buys (fewer-gpus or more-kv-cache); nil without pruning.
    public var freedMemory: String?

    public init(kind: String, pools: [PoolChoice], pruning: PruningChoice? = nil, freedMemory: String? = nil) {
        self.kind = kind
        self.pools = pools
        self.pruning = pruning
        self.freedMemory = freedMemory
    }

    /// A one-line label.
    public var label: String {
        pools.map { "\($0.role) \($0.label)" }.joined(separator: " · ") + (pruning.map { " · pruned \($0)" + (freedMemory.map { " (\($0))" } ?? "") } ?? "")
    }

    /// The `deployment:` block of a scenario file.
    var deploymentYAML: String {
        var lines = ["deployment:", "  kind: \(kind)"]
        for p in pools { lines.append("  \(p.role): \(p.yaml)") }
        return lines.joined(separator: "\n")
    }
}

/// The routing model an `experts:` block gives (the popularity behind computed load imbalance).
public struct RoutingModelText: Hashable, Sendable {
    public var skew: Double
    public var sampledLayers: Int
    public var tokens: Int
    public var seed: Int

    /// The `experts:` block, with `pruning` when given.
    func block(pruning: PruningChoice?, freedMemory: String?) -> String {
        var lines = ["experts:", "  skew: \(trim(skew))", "  sampledLayers: \(sampledLayers)", "  tokens: \(tokens)", "  seed: \(seed)"]
        if let p = pruning {
            var items: [String] = []
            if p.prunedFraction > 0 { items += ["prunedFraction: \(trim(p.prunedFraction))", "ranking: \(p.ranking.rawValue)"] }
            if let k = p.expertsPerToken { items.append("expertsPerToken: \(k)") }
            if let b = p.skipBelowFractionOfTop { items.append("skipBelowFractionOfTop: \(trim(b))") }
            items.append("freedMemory: \(freedMemory ?? "more-kv-cache")")
            lines.append("  pruning: {\(items.joined(separator: ", "))}")
        }
        return lines.joined(separator: "\n")
    }
}

/// Edits a scenario file's top-level sections as text, keeping every other section and its comments.
enum ScenarioText {
    /// `text` split into its leading comment lines and its top-level sections, in order.
    static func sections(_ text: String) -> (header: [String], sections: [(key: String, lines: [String])]) {
        var header: [String] = []
        var sections: [(key: String, lines: [String])] = []
        var pending: [String] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            let first = line.first
            let isKey = first.map { !$0.isWhitespace && $0 != "#" && $0 != "-" } ?? false
            if isKey, let colon = line.firstIndex(of: ":") {
                sections.append((String(line[..<colon]), pending + [line]))
                pending = []
            } else if sections.isEmpty {
                header.append(line)
            } else if first == "#" || line.trimmingCharacters(in: .whitespaces).isEmpty {
                // A comment or blank at column 0 belongs to the section that follows it.
                pending.append(line)
            } else {
                sections[sections.count - 1].lines += pending + [line]
                pending = []
            }
        }
        if !pending.isEmpty, !sections.isEmpty { sections[sections.count - 1].lines += pending }
        return (header, sections)
    }

    /// `text` with `replacements` (key → new section, nil to drop it); new keys are appended in `order`.
    static func replacing(_ replacements: [String: String?], in text: String, header: [String], order: [String]) -> String {
        let parsed = sections(text)
        var out = header
        var done: Set<String> = []
        for s in parsed.sections {
            if let replacement = replacements[s.key] {
                done.insert(s.key)
                if let r = replacement { out.append(r) }
            } else {
                out += s.lines
            }
        }
        for key in order where !done.contains(key) {
            if let r = replacements[key] ?? nil { out.append(r) }
        }
        var result = out.joined(separator: "\n")
        while result.hasSuffix("\n\n") { result.removeLast() }
        return result.hasSuffix("\n") ? result : result + "\n"
    }

    /// A YAML double-quoted scalar.
    static func quoted(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: " ") + "\""
    }
}
