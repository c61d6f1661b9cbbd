import Hardware
import MoE
import Routing
import Accounting
import Serving
import Testing

@Suite("Pruned MoE configurations")
struct PruningTests {
    static let model = try! library.model("deepseek-v3")
    static let node = try! library.node("h800")

    static func topology(ep: Int = 144, redundant: Int = 32) -> ServingTopology {
        .colocated(PoolSpec(role: .decode, units: 1, deployment: Deployment(expertParallel: ep, redundantExperts: redundant)))
    }

    static func resolve(_ config: PruningConfig?, freed: PruningSpec.FreedMemory = .moreKVCache, topology: ServingTopology = topology()) throws
        -> (model: ModelArchitecture, topology: ServingTopology, report: MoERoutingReport) {
        try MoERouting.resolve(
            model: model, topology: topology, node: node, routing: ExpertRoutingSpec(skew: 0.6, sampledLayers: 1, tokens: 1024, calibrationTokens: 192),
            pruning: config.map { PruningSpec(config: $0, freedMemory: freed) }
        )
    }

    /// Routed FLOPs and all-to-all bytes of one MoE layer for `tokens` tokens, at a fixed imbalance.
    static func moeLayer(_ m: ModelArchitecture, tokens: Double = 4096) -> (routedFLOPs: Double, flops: Double, dispatch: Double, combine: Double) {
        let planner = LayerPlanner(model: m, deployment: Deployment(expertParallel: 144, redundantExperts: 288 - m.moe!.routedExperts, imbalanceOverride: 1))
        let layer = planner.layer(index: m.denseLayers, phase: .decode, planner.microBatch(StepWorkload.decode(sequences: tokens, context: 4989)))
        let routed = layer.ffn.filter { $0.name.hasPrefix("moe.routed") }.reduce(0) { $0 + $1.flops }
        return (routed, layer.kernels.reduce(0) { $0 + $1.flops }, layer.dispatchBytes, layer.combineBytes)
    }

    @Test("No pruning strategy increases FLOPs per token", arguments: [
        PruningConfig(prunedFraction: 0.25), PruningConfig(prunedFraction: 0.5, ranking: .routerWeighted), PruningConfig(expertsPerToken: 6),
        PruningConfig(skipBelowFractionOfTop: 0.5), PruningConfig(prunedFraction: 0.25, expertsPerToken: 4),
    ])
    func flopsNeverGrow(_ config: PruningConfig) throws {
        let dense = Self.moeLayer(try Self.resolve(nil).model)
        let pruned = Self.moeLayer(try Self.resolve(config).model)
        #expect(pruned.flops <= dense.flops * (1 + 1e-12))
        #expect(pruned.routedFLOPs <= dense.routedFLOPs * (1 + 1e-12))
    }

    @Test("Top-k 8 → 6 cuts routed-expert FLOPs and dispatch/combine bytes by 25 %")
    func topKCut() throws {
        let dense = Self.moeLayer(try Self.resolve(nil).model)
        let six = Self.moeLayer(try Self.resolve(PruningConfig(expertsPerToken: 6)).model)
        #expect(abs(six.routedFLOPs / dense.routedFLOPs - 0.75) < 1e-9)
        #expect(abs(six.dispatch / dense.dispatch - 0.75) < 1e-9)
        #expect(abs(six.combine / dense.combine - 0.75) < 1e-9)
    }

    @Test("Static pruning removes weight memory but keeps per-token FLOPs; skipping does the opposite")
    func whatEachChanges() throws {
        let dense = try Self.resolve(nil).model
        let pruned = try Self.resolve(PruningConfig(prunedFraction: 0.25)).model
        let skipping = try Self.resolve(PruningConfig(skipBelowFractionOfTop: 0.8)).model
        #expect(pruned.moe!.routedExperts == 192)
        #expect(pruned.parameters.total < dense.parameters.total)
        #expect(abs(Self.moeLayer(pruned).routedFLOPs - Self.moeLayer(dense).routedFLOPs) < 1e-6 * Self.moeLayer(dense).routedFLOPs)
        #expect(skipping.parameters.total == dense.parameters.total)
        #expect(skipping.moe!.effectiveExpertsPerToken < 8)
        #expect(Self.moeLayer(skipping).dispatch < Self.moeLayer(dense).dispatch)
    }

    @Test("Freed memory: fewer GPUs repacks DeepSeek's decode unit onto 14 nodes; more KV cache keeps 18 and frees HBM")
    func freedMemory() throws {
        let fewer = try Self.resolve(PruningConfig(prunedFraction: 0.25), freed: .fewerGPUs)
        let d = fewer.topology.pools[0].deployment
        #expect(d.expertParallel == 112 && d.redundantExperts == 32)
        #expect(fewer.report.pools[0].gpusPerUnit == 112)
        let more = try Self.resolve(PruningConfig(prunedFraction: 0.25), freed: .moreKVCache)
        let m = more.topology.pools[0].deployment
        #expect(m.expertParallel == 144 && m.unevenExperts)
        // The fullest GPU still holds two experts at EP144 (224 slots over 144 GPUs); prefill-style
        // layouts with many experts per GPU free whole slots.
        let prefill = try Self.resolve(PruningConfig(prunedFraction: 0.25), topology: Self.topology(ep: 32, redundant: 32))
        let before = StepCostModel(model: Self.model, node: Self.node, site: try library.site("default"), deployment: Deployment(expertParallel: 32, redundantExperts: 32))
        let after = StepCostModel(model: prefill.model, node: Self.node, site: try library.site("default"), deployment: prefill.topology.pools[0].deployment)
        #expect(after.weightBytesPerGPU < before.weightBytesPerGPU)
    }

    @Test("The unpruned configuration has zero fidelity error; more pruning, more error")
    func fidelity() throws {
        #expect(try Self.resolve(nil).report.fidelity.relativeError == 0)
        let errors = try [0.125, 0.25, 0.5].map { try Self.resolve(PruningConfig(prunedFraction: $0)).report.fidelity.relativeError }
        #expect(errors[0] > 0 && errors[0] < errors[1] && errors[1] < errors[2])
    }

    @Test("Computed imbalance is at least 1 and grows with popularity skew")
    func imbalance() throws {
        func decode(_ skew: Double) throws -> Double {
            try MoERouting.resolve(model: Self.model, topology: Self.topology(), node: Self.node,
                                   routing: ExpertRoutingSpec(skew: skew, sampledLayers: 1, tokens: 2048, calibrationTokens: 16), pruning: nil)
                .report.pools[0].expertLoadImbalance
        }
        let flat = try decode(0), skewed = try decode(1.2)
        #expect(flat >= 1 && flat < skewed)
    }
}
