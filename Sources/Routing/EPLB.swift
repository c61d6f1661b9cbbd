/// DeepSeek's expert-parallel load balancer (EPLB, REFERENCE.md §4): given each logical expert's
/// load in one layer, decide which experts get redundant replicas and which GPU holds each
/// physical expert, so that GPUs carry similar loads.
///
/// Hierarchical policy (used when the nodes divide the expert groups, DeepSeek's prefill
/// layout): pack whole expert groups onto nodes (heaviest first, each into the lightest node
/// with room), replicate within each node (each extra replica goes to the expert with the most
/// load per replica), then pack the node's replicas onto its GPUs the same way. Global policy
/// (otherwise, DeepSeek's decode layout): the same with one group and one node.
public enum EPLB {
    /// Where each physical expert slot's replica comes from, for one layer.
    public struct Placement: Hashable, Sendable {
        /// For each physical slot (GPU-major: slots `g·perGPU ..< (g+1)·perGPU` are on GPU `g`),
        /// the logical expert it holds.
        public var physicalToLogical: [Int]
        /// For each physical slot, which replica of its expert it is (0 for the first).
        public var replicaIndex: [Int]
        /// For each logical expert, how many replicas it has.
        public var replicaCount: [Int]
        public var gpus: Int

        public var slotsPerGPU: Int { physicalToLogical.count / gpus }

        /// Each GPU's load when every expert's load is split evenly over its replicas.
        public func gpuLoads(_ expertLoad: [Double]) -> [Double] {
            (0..<gpus).map { g in
                (g * slotsPerGPU..<(g + 1) * slotsPerGPU).reduce(0) { sum, slot in
                    let e = physicalToLogical[slot]
                    return sum + expertLoad[e] / Double(replicaCount[e])
                }
            }
        }

        /// The busiest GPU's load over the mean GPU load (1 = perfect balance).
        public func imbalance(_ expertLoad: [Double]) -> Double {
            let loads = gpuLoads(expertLoad)
            let mean = loads.reduce(0, +) / Double(loads.count)
            return mean > 0 ? loads.max()! / mean : 1
        }
    }

    public enum Failure: Error, Hashable, CustomStringConvertible {
        case indivisible(String)

        public var description: String {
            switch self {
            case .indivisible(let what): return "EPLB needs \(what)"
            }
        }
    }

    /// The placement for one layer's expert loads.
    ///
    /// - Parameters:
    ///   - load: each logical expert's load (tokens routed to it, or a share).
    ///   - replicas: physical expert slots in all (logical experts + redundant ones); a multiple of `gpus`.
    ///   - groups: expert groups (DeepSeek-V3: 8); `nodes` and `gpus` as deployed.
    public static func rebalance(load: [Double], replicas: Int, groups: Int, nodes: Int, gpus: Int) throws -> Placement {
        let experts = load.count
        guard experts > 0, replicas >= experts else { throw Failure.indivisible("at least as many replicas (\(replicas)) as experts (\(experts))") }
        guard gpus > 0, replicas % gpus == 0 else { throw Failure.indivisible("replicas (\(replicas)) to divide evenly over \(gpus) GPUs") }
        guard nodes > 0, gpus % nodes == 0 else { throw Failure.indivisible("GPUs (\(gpus)) to divide evenly over \(nodes) nodes") }
        if groups > 0, experts % groups == 0, groups % nodes == 0 {
            return try hierarchical(load: load, replicas: replicas, groups: groups, nodes: nodes, gpus: gpus)
        }
        return try hierarchical(load: load, replicas: replicas, groups: 1, nodes: 1, gpus: gpus)
    }

    /// Packs items into `packs` bins of equal count, heaviest first, each into the lightest bin
    /// that has room (the first such bin on ties). Returns each item's bin and its place in it.
    static func balancedPacking(_ weight: [Double], packs: Int) -> (pack: [Int], rank: [Int]) {
        let perPack = weight.count / packs
        if perPack == 1 { return (Array(weight.indices), Array(repeating: 0, count: weight.count)) }
        let order = weight.indices.sorted { weight[$0] != weight[$1] ? weight[$0] > weight[$1] : $0 < $1 }
        var packWeight = [Double](repeating: 0, count: packs)
        var packItems = [Int](repeating: 0, count: packs)
        var pack = [Int](repeating: -1, count: weight.count)
        var rank = [Int](repeating: -1, count: weight.count)
        for item in order {
            var best = -1
            for p in 0..<packs where packItems[p] < perPack && (best < 0 || packWeight[p] < packWeight[best]) { best = p }
            pack[item] = best
            rank[item] = packItems[best]
            packWeight[best] += weight[item]
            packItems[best] += 1
        }
        return (pack, rank)
    }

    /// Adds replicas one at a time, each to the expert with the most load per replica (the
    /// first on ties), until there are `physical` slots.
    static func replicate(_ weight: [Double], physical: Int) -> (slotToExpert: [Int], replicaIndex: [Int], count: [Int]) {
        var slotToExpert = Array(weight.indices)
        var replicaIndex = [Int](repeating: 0, count: weight.count)
        var count = [Int](repeating: 1, count: weight.count)
        for _ in weight.count..<physical {
            var best = 0
            for e in weight.indices where weight[e] / Double(count[e]) > weight[best] / Double(count[best]) { best = e }
            slotToExpert.append(best)
            replicaIndex.append(count[best])
            count[best] += 1
        }
        return (slotToExpert, replicaIndex, count)
    }

    static func inverse(_ permutation: [Int]) -> [Int] {
        var inv = [Int](repeating: 0, count: permutation.count)
        for (i, p) in permutation.enumerated() { inv[p] = i }
        return inv
    }

    static func hierarchical(load: [Double], replicas: Int, groups: Int, nodes: Int, gpus: Int) throws -> Placement {
        let experts = load.count
        let groupSize = experts / groups
        let groupsPerNode = groups / nodes
        let perGPU = replicas / gpus
        let expertsPerNode = experts / nodes
        let replicasPerNode = replicas / nodes
        guard replicasPerNode >= expertsPerNode else { throw Failure.indivisible("at least as many replicas per node as experts per node") }

        // 1. Groups onto nodes; experts renumbered node by node ("middle" numbering).
        let groupLoad = (0..<groups).map { g in load[g * groupSize..<(g + 1) * groupSize].reduce(0, +) }
        let (groupPack, groupRank) = balancedPacking(groupLoad, packs: nodes)
        var toMiddle = [Int](repeating: 0, count: experts)
        for e in 0..<experts {
            let g = e / groupSize
            toMiddle[e] = (groupPack[g] * groupsPerNode + groupRank[g]) * groupSize + e % groupSize
        }
        let fromMiddle = inverse(toMiddle)

        var physicalToMiddle: [Int] = []
        var replicaIndex: [Int] = []
        var middleCount = [Int](repeating: 0, count: experts)
        for node in 0..<nodes {
            // 2. Replicas within the node.
            let nodeLoad = (0..<expertsPerNode).map { load[fromMiddle[node * expertsPerNode + $0]] }
            let (slotToExpert, slotReplica, count) = replicate(nodeLoad, physical: replicasPerNode)
            for (i, c) in count.enumerated() { middleCount[node * expertsPerNode + i] = c }
            // 3. The node's replicas onto its GPUs.
            let slotLoad = slotToExpert.map { nodeLoad[$0] / Double(count[$0]) }
            let (pack, rank) = balancedPacking(slotLoad, packs: gpus / nodes)
            let slotToPlace = zip(pack, rank).map { $0 * perGPU + $1 }
            let placeToSlot = inverse(slotToPlace)
            for place in 0..<replicasPerNode {
                let slot = placeToSlot[place]
                physicalToMiddle.append(slotToExpert[slot] + node * expertsPerNode)
                replicaIndex.append(slotReplica[slot])
            }
        }
        return Placement(
            physicalToLogical: physicalToMiddle.map { fromMiddle[$0] }, replicaIndex: replicaIndex,
            replicaCount: (0..<experts).map { middleCount[toMiddle[$0]] }, gpus: gpus
        )
    }
}
