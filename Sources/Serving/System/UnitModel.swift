import Accounting
import Foundation
import Hardware
import MoE
import Units

/// The cost side of one pool's deployment unit: its size, its KV capacity, what idling draws,
/// and what a batch step costs (memoised by batch shape).
struct UnitModel {
    let pool: PoolSpec
    let costModel: StepCostModel
    let gpus: Int
    let nodes: Int
    /// Attention data-parallel ranks (GPUs ÷ tensor-parallel degree).
    let ranks: Int
    /// KV-cache capacity of one rank, in tokens.
    let kvTokensPerRank: Int
    /// KV-cache capacity of the unit, in tokens.
    let kvTokens: Int
    let maxBatch: Int
    let tokenBudget: Int
    /// Draw of the unit with nothing to do: GPUs at idle, host at idle.
    let idleGPUWatts: Double
    let idleHostWatts: Double
    /// KV-cache bytes per token of one sequence (whole model, all layers).
    let kvBytesPerToken: Double

    private var memo = Memo()

    /// The step costs computed so far, by shape.
    struct Memo: Sendable {
        fileprivate var decode: [DecodeKey: StepCost] = [:]
        fileprivate var prefill: [PrefillKey: StepCost] = [:]
        var count: Int { decode.count + prefill.count }

        /// Adds `other`'s entries (the same shape always has the same cost).
        mutating func absorb(_ other: Memo) {
            decode.merge(other.decode) { a, _ in a }
            prefill.merge(other.prefill) { a, _ in a }
        }
    }

    /// What one step costs the unit.
    struct StepCost: Sendable {
        /// Step duration, in seconds.
        var seconds: Double
        /// Draw of all the unit's GPUs together, in watts.
        var gpuWatts: Double
        /// Draw of all the unit's hosts together, in watts.
        var hostWatts: Double
    }

    fileprivate struct DecodeKey: Hashable, Sendable {
        var batch: Int
        var contextBucket: Int
    }

    fileprivate struct PrefillKey: Hashable, Sendable {
        var sequences: Int
        var computedBucket: Int
        var prefixBucket: Int
    }

    /// Buckets a positive quantity on a 1 % geometric grid.
    static func bucket(_ x: Double) -> Int { x < 1 ? -1 : Int((log(x) / log(1.01)).rounded()) }
    static func representative(_ bucket: Int) -> Double { bucket < 0 ? 0 : pow(1.01, Double(bucket)) }

    init(pool: PoolSpec, model: ModelArchitecture, node: NodeSpec, site: SiteSpec) {
        self.pool = pool
        costModel = StepCostModel(model: model, node: node, site: site, deployment: pool.deployment)
        gpus = pool.deployment.gpus
        nodes = pool.deployment.nodes(on: node)
        ranks = max(1, gpus / pool.deployment.tensorParallel)
        kvBytesPerToken = model.kvCacheBytesPerToken
        kvTokensPerRank = costModel.kvTokensPerRank(memoryReserveFraction: pool.memoryReserveFraction)
        kvTokens = kvTokensPerRank * ranks
        maxBatch = pool.maxBatchPerRank * ranks
        tokenBudget = pool.tokenBudgetPerRank * ranks
        idleGPUWatts = node.gpu.power.idle.watts * Double(gpus)
        idleHostWatts = node.hostIdle.watts * Double(nodes)
    }

    /// A decode step of `batch` sequences whose mean context is `meanContext` tokens.
    mutating func decodeStep(batch: Int, meanContext: Double) -> StepCost {
        let key = DecodeKey(batch: batch, contextBucket: Self.bucket(meanContext))
        if let hit = memo.decode[key] { return hit }
        // The busiest rank holds the batch's share rounded up (one sequence alone loads one rank).
        let workload = StepWorkload.decode(sequences: Double(batch) / Double(ranks), context: max(1, Self.representative(key.contextBucket)))
        let cost = stepCost(costModel.estimate(workload))
        memo.decode[key] = cost
        return cost
    }

    /// A prefill step of `sequences` chunks computing `computed` tokens after `prefix` tokens already in
    /// the KV cache (cached or computed by earlier chunks), all summed over the unit.
    mutating func prefillStep(sequences: Int, computed: Int, prefix: Int) -> StepCost {
        let key = PrefillKey(sequences: sequences, computedBucket: Self.bucket(Double(computed)), prefixBucket: Self.bucket(Double(prefix)))
        if let hit = memo.prefill[key] { return hit }
        let r = Double(ranks)
        let c = max(1, Self.representative(key.computedBucket))
        let p = Self.representative(key.prefixBucket)
        // Whole chunks sit on ranks: with fewer chunks than ranks the busiest rank computes a whole chunk.
        let perRank = Double(sequences) / r
        let busiest = Double(sequences).rounded(.up) > 0 ? (perRank.rounded(.up)) / perRank : 1
        let workload = StepWorkload(
            phase: .prefill, sequences: perRank, computedTokens: c / r, cachedTokens: p / r,
            meanContext: (c + p) / Double(sequences), busiestRankFactor: busiest
        )
        let cost = stepCost(costModel.estimate(workload))
        memo.prefill[key] = cost
        return cost
    }

    private func stepCost(_ e: StepEstimate) -> StepCost {
        StepCost(
            seconds: e.stepTime.seconds, gpuWatts: e.gpuPower.watts * Double(gpus),
            hostWatts: costModel.node.hostPower(gpuPower: e.gpuPower).watts * Double(nodes)
        )
    }

    /// Time to move `tokens` tokens of KV cache from a prefill rank to a decode rank over one GPU's NIC.
    func kvTransferSeconds(tokens: Int) -> Double {
        let a2a = costModel.node.allToAll
        return a2a.baseLatency.seconds + Double(tokens) * kvBytesPerToken / a2a.infinibandBytesPerSecond
    }

    /// Distinct step shapes costed so far.
    var memoisedShapes: Int { memo.count }

    /// The key of this unit's layout in a shared cache.
    var cacheKey: StepCostCache.Key {
        StepCostCache.Key(model: costModel.model, node: costModel.node, site: costModel.site, deployment: pool.deployment)
    }

    /// Starts from the shapes another run of the same layout costed.
    mutating func adopt(_ shared: StepCostCache) {
        if let known = shared.memo(for: cacheKey) { memo.absorb(known) }
    }

    /// Hands this run's shapes to the shared cache.
    func publish(to shared: StepCostCache) { shared.merge(memo, for: cacheKey) }
}
