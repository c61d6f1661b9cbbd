import Hardware
import MoE
import Serving

/// The layouts the planner tries for each pool, from the model's shape and the node.
///
/// - Large MoE models (32 routed experts or more) are laid out as DeepSeek lays them out:
///   data-parallel attention, the routed experts expert-parallel over every GPU of the unit, on
///   whole nodes; redundant experts fill the last slot of each GPU, or one more slot per GPU.
/// - Dense models and MoE models with few experts are tensor-parallel within a node (vLLM's
///   layout), the experts sharded with the attention or expert-parallel over the same GPUs.
public struct SearchSpace: Hashable, Sendable {
    /// Nodes per prefill and per decode unit for expert-parallel layouts.
    public var prefillNodes: [Int] = [1, 2, 4, 8]
    public var decodeNodes: [Int] = [4, 8, 9, 12, 16, 18, 24, 32, 36]
    /// Prompt tokens one attention rank computes per prefill step.
    public var prefillBudgets: [Int] = [4096, 8192, 16384]
    /// Sequences one decode rank batches.
    public var decodeCaps: [Int] = [64, 96, 128, 160, 192, 256]
    /// Colocated units: batch caps and token budgets per rank.
    public var colocatedCaps: [Int] = [64, 128, 256]
    public var colocatedBudgets: [Int] = [2048, 8192]
    /// Micro-batches whose computation and all-to-all overlap, for expert-parallel units (DeepSeek uses two).
    public var microBatches: [Int] = [2]

    public init() {}

    /// Whether `model` is laid out expert-parallel over whole nodes.
    static func isLargeMoE(_ model: ModelArchitecture) -> Bool { (model.moe?.routedExperts ?? 0) >= 32 }

    /// Redundant-expert counts that make the expert slots divide evenly over `ep` GPUs: the fewest,
    /// and one more slot per GPU where GPUs hold four or more.
    static func redundancy(experts: Int, ep: Int) -> [Int] {
        let least = (ep - experts % ep) % ep
        return (experts + least) / ep >= 4 ? [least, least + ep] : [least]
    }

    /// Pool layouts (units 0) for `role`.
    func layouts(role: String, model: ModelArchitecture, node: NodeSpec) -> [PoolChoice] {
        let g = node.gpusPerNode
        if Self.isLargeMoE(model), let moe = model.moe {
            let nodes = role == "prefill" ? prefillNodes : role == "decode" ? decodeNodes : prefillNodes
            var out: [PoolChoice] = []
            for n in nodes {
                let ep = n * g
                for r in Self.redundancy(experts: moe.routedExperts, ep: ep) {
                  for microBatches in microBatches {
                    switch role {
                    case "prefill":
                        for b in prefillBudgets {
                            out.append(PoolChoice(role: role, units: 0, ep: ep, tp: 1, redundantExperts: r, microBatches: microBatches, maxBatchPerRank: 256, tokenBudgetPerRank: b))
                        }
                    case "decode":
                        for c in decodeCaps {
                            out.append(PoolChoice(role: role, units: 0, ep: ep, tp: 1, redundantExperts: r, microBatches: microBatches, maxBatchPerRank: c, tokenBudgetPerRank: 16_384))
                        }
                    default:
                        for c in colocatedCaps {
                            for b in colocatedBudgets {
                                out.append(PoolChoice(role: role, units: 0, ep: ep, tp: 1, redundantExperts: r, microBatches: microBatches, maxBatchPerRank: c, tokenBudgetPerRank: b))
                            }
                        }
                    }
                  }
                }
            }
            return out
        }
        // Tensor-parallel within a node.
        var out: [PoolChoice] = []
        var tp = 1
        while tp <= g {
            var eps = [1]
            if let moe = model.moe, tp > 1, moe.routedExperts % tp == 0 { eps.append(tp) }
            for ep in eps {
                switch role {
                case "prefill":
                    for b in prefillBudgets {
                        out.append(PoolChoice(role: role, units: 0, ep: ep, tp: tp, redundantExperts: 0, microBatches: 1, maxBatchPerRank: 256, tokenBudgetPerRank: b))
                    }
                case "decode":
                    for c in decodeCaps {
                        out.append(PoolChoice(role: role, units: 0, ep: ep, tp: tp, redundantExperts: 0, microBatches: 1, maxBatchPerRank: c, tokenBudgetPerRank: 16_384))
                    }
                default:
                    for c in colocatedCaps {
                        for b in colocatedBudgets {
                            out.append(PoolChoice(role: role, units: 0, ep: ep, tp: tp, redundantExperts: 0, microBatches: 1, maxBatchPerRank: c, tokenBudgetPerRank: b))
                        }
                    }
                }
            }
            tp *= 2
        }
        return out
    }
}
