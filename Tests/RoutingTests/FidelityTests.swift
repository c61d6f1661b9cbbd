import Routing
import Testing
import Units

@Suite("Fidelity proxy (reference MoE layer)")
struct FidelityTests {
    static func layer(_ seed: UInt64) -> ReferenceMoELayer {
        let popularity = ExpertPopularity.zipf(experts: 64, layers: 1, skew: 0.8, seed: seed).layers[0]
        return ReferenceMoELayer(
            width: 32, expertWidth: 16, router: GroupLimitedRouter(experts: 64, groups: 8, topGroups: 4, topK: 8), popularity: popularity, seed: seed
        )
    }

    @Test("The unpruned configuration has no error, full similarity and removes nothing", arguments: [UInt64(1), 2, 3])
    func denseIsExact(_ seed: UInt64) {
        let layer = Self.layer(seed)
        let batch = layer.calibrationBatch(tokens: 64, seed: seed)
        for config in [PruningConfig.dense, PruningConfig(skipBelowFractionOfTop: 0), PruningConfig(expertsPerToken: 8)] {
            let f = layer.fidelity(of: config, batch: batch)
            #expect(f.relativeError == 0)
            #expect(abs(f.cosineSimilarity - 1) < 1e-12)
            #expect(f.routerMassRemoved == 0)
            #expect(f.expertsPerToken == 8)
        }
    }

    @Test("Pruning more experts by frequency moves the output further", arguments: [UInt64(1), 2, 3])
    func errorGrowsWithPruning(_ seed: UInt64) {
        let layer = Self.layer(seed)
        let batch = layer.calibrationBatch(tokens: 256, seed: seed &+ 10)
        let errors = [0.0, 0.125, 0.25, 0.5, 0.75].map { layer.fidelity(of: PruningConfig(prunedFraction: $0), batch: batch).relativeError }
        #expect(errors[0] == 0)
        #expect(zip(errors, errors.dropFirst()).allSatisfy { $0 < $1 }, "\(errors)")
    }

    @Test("Top-k 8 → 6 uses 6 experts per token and removes router mass; REAP and frequency prune as many experts")
    func topKAndREAP() {
        let layer = Self.layer(4)
        let batch = layer.calibrationBatch(tokens: 128, seed: 5)
        let six = layer.fidelity(of: PruningConfig(expertsPerToken: 6), batch: batch)
        #expect(six.expertsPerToken == 6)
        #expect(six.routerMassRemoved > 0 && six.routerMassRemoved < 0.5)
        #expect(six.relativeError > 0)
        let byFrequency = layer.survivors(PruningConfig(prunedFraction: 0.25), batch: batch)!
        let byREAP = layer.survivors(PruningConfig(prunedFraction: 0.25, ranking: .routerWeighted), batch: batch)!
        #expect(byFrequency.filter { !$0 }.count == 16 && byREAP.filter { !$0 }.count == 16)
    }

    @Test("A higher skip threshold never uses more experts per token")
    func skipping() {
        let layer = Self.layer(6)
        let batch = layer.calibrationBatch(tokens: 128, seed: 7)
        let used = [0.0, 0.3, 0.6, 0.9].map { layer.fidelity(of: PruningConfig(skipBelowFractionOfTop: $0), batch: batch).expertsPerToken }
        #expect(used[0] == 8)
        #expect(zip(used, used.dropFirst()).allSatisfy { $0 >= $1 })
        #expect(used[3] < 8)
    }
}
