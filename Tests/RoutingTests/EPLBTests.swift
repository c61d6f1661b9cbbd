@testable import Routing
import Units
import Testing

@Suite("EPLB")
struct EPLBTests {
    @Test("The EPLB README example: 12 experts, 16 replicas, 4 groups, 2 nodes, 8 GPUs", arguments: [
        ([90.0, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86], [5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1]),
        ([20.0, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27], [7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1]),
    ])
    func readmeExample(_ load: [Double], _ expected: [Int]) throws {
        let p = try EPLB.rebalance(load: load, replicas: 16, groups: 4, nodes: 2, gpus: 8)
        #expect(p.physicalToLogical == expected)
    }
}

@Suite("EPLB laws")
struct EPLBLawTests {
    static func loads(_ seed: UInt64, experts: Int) -> [Double] {
        var rng = SplitMix64(seed: seed)
        return (0..<experts).map { _ in Double(Int.random(in: 1...1000, using: &rng)) * (rng.unit() < 0.2 ? 5 : 1) }
    }

    @Test("Every expert has a replica, counts add up to the slots, and each GPU holds the same number", arguments: 0..<20)
    func conservation(_ seed: UInt64) throws {
        let load = Self.loads(seed, experts: 64)
        let hierarchical = seed % 2 == 0
        let p = try EPLB.rebalance(load: load, replicas: 96, groups: 8, nodes: hierarchical ? 4 : 3, gpus: 24)
        #expect(p.replicaCount.allSatisfy { $0 >= 1 })
        #expect(p.replicaCount.reduce(0, +) == 96)
        for e in 0..<64 {
            let slots = p.physicalToLogical.indices.filter { p.physicalToLogical[$0] == e }
            #expect(slots.count == p.replicaCount[e])
            #expect(Set(slots.map { p.replicaIndex[$0] }) == Set(0..<p.replicaCount[e]))
        }
        #expect(abs(p.gpuLoads(load).reduce(0, +) - load.reduce(0, +)) < 1e-6)
    }

    @Test("Hierarchical placement keeps every expert group, and every replica of an expert, on one node", arguments: 0..<10)
    func groupsStayOnNodes(_ seed: UInt64) throws {
        let load = Self.loads(seed, experts: 64)
        let p = try EPLB.rebalance(load: load, replicas: 128, groups: 8, nodes: 4, gpus: 32)
        let slotsPerNode = 128 / 4
        var nodeOfGroup: [Int: Set<Int>] = [:]
        for (slot, e) in p.physicalToLogical.enumerated() { nodeOfGroup[e / 8, default: []].insert(slot / slotsPerNode) }
        #expect(nodeOfGroup.values.allSatisfy { $0.count == 1 })
    }

    @Test("More redundant replicas never raise the heaviest load per replica", arguments: 0..<10)
    func redundancyHelps(_ seed: UInt64) {
        let load = Self.loads(seed, experts: 32)
        var previous = Double.infinity
        for physical in stride(from: 32, through: 96, by: 8) {
            let (_, _, count) = EPLB.replicate(load, physical: physical)
            let heaviest = zip(load, count).map { $0 / Double($1) }.max()!
            #expect(heaviest <= previous)
            previous = heaviest
        }
    }

    @Test("EPLB balances skewed loads better than placing experts in order without redundancy", arguments: 0..<10)
    func beatsNaive(_ seed: UInt64) throws {
        let load = Self.loads(seed, experts: 256)
        let eplb = try EPLB.rebalance(load: load, replicas: 288, groups: 8, nodes: 18, gpus: 144).imbalance(load)
        let naive = try EPLB.Placement(physicalToLogical: Array(0..<256), replicaIndex: Array(repeating: 0, count: 256), replicaCount: Array(repeating: 1, count: 256), gpus: 128).imbalance(load)
        #expect(eplb < naive)
        #expect(eplb >= 1)
    }
}

@Suite("Group-limited routing")
struct RouterTests {
    @Test("A token gets its top-k experts from its top groups only, never a pruned one", arguments: 0..<30)
    func routes(_ seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let router = GroupLimitedRouter(experts: 64, groups: 8, topGroups: 4, topK: 6)
        let affinity = (0..<64).map { _ in rng.unit() }
        let available = (0..<64).map { _ in rng.unit() > 0.25 }
        let chosen = router.route(affinity, available: available)
        #expect(chosen.count == 6)
        #expect(chosen.allSatisfy { available[$0] })
        #expect(Set(chosen.map { $0 / 8 }).count <= 4)
        // Best first, and nothing better left out within the kept groups.
        #expect(zip(chosen, chosen.dropFirst()).allSatisfy { affinity[$0] >= affinity[$1] })
        let groups = Set(chosen.map { $0 / 8 })
        let worst = affinity[chosen.last!]
        #expect((0..<64).filter { available[$0] && groups.contains($0 / 8) && !chosen.contains($0) }.allSatisfy { affinity[$0] <= worst })
    }

    @Test("With one group it is plain top-k")
    func plainTopK() {
        let router = GroupLimitedRouter(experts: 8, groups: 1, topGroups: 1, topK: 3)
        #expect(router.route([0.1, 0.9, 0.3, 0.8, 0.2, 0.7, 0.05, 0.6]) == [1, 3, 5])
    }

    @Test("Measured loads: every token reaches k experts, and the most popular expert is the busiest")
    func loads() {
        let popularity = ExpertPopularity.zipf(experts: 32, layers: 2, skew: 1.2, seed: 9)
        let router = GroupLimitedRouter(experts: 32, groups: 1, topGroups: 1, topK: 4)
        let load = ExpertLoad.measure(popularity, router: router, tokens: 4000, seed: 1)
        for (layer, counts) in load.layers.enumerated() {
            #expect(counts.reduce(0, +) == 16_000)
            let top = popularity.layers[layer].indices.max { popularity.layers[layer][$0] < popularity.layers[layer][$1] }!
            #expect(counts[top] == counts.max())
        }
    }

    @Test("More skew, more imbalance after EPLB")
    func skewCosts() throws {
        let router = GroupLimitedRouter(experts: 64, groups: 8, topGroups: 4, topK: 8)
        func imbalance(_ skew: Double) throws -> Double {
            let load = ExpertLoad.measure(ExpertPopularity.zipf(experts: 64, layers: 3, skew: skew, seed: 4), router: router, tokens: 2000, seed: 2)
            return try load.imbalance(replicas: 64, groups: 8, nodes: 2, gpus: 16)
        }
        let flat = try imbalance(0), skewed = try imbalance(1.0)
        #expect(flat < skewed)
        #expect(flat < 1.3)
    }
}
