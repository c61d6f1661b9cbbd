import Hardware
import MoE
import Testing
import Units

@Suite struct StepCostLawTests {
    let decode = Fixture.decodeModel()

    @Test(arguments: [8.0, 32, 64, 88, 128])
    func biggerBatchesTakeLongerButCostLessPerToken(batch: Double) {
        let a = decode.estimate(.decode(sequences: batch, context: 4989))
        let b = decode.estimate(.decode(sequences: batch * 1.5, context: 4989))
        #expect(b.stepTime > a.stepTime)
        #expect(b.tokensPerSecondPerNode > a.tokensPerSecondPerNode)
        #expect(b.joulesPerToken < a.joulesPerToken)
    }

    @Test(arguments: [512.0, 2048, 4989, 16384])
    func longerContextTakesLonger(context: Double) {
        let a = decode.estimate(.decode(sequences: 64, context: context))
        let b = decode.estimate(.decode(sequences: 64, context: context * 2))
        #expect(b.stepTime > a.stepTime)
    }

    @Test func energyIsPowerTimesTime() {
        let e = decode.estimate(.decode(sequences: 88, context: 4989))
        #expect(abs(e.joulesPerToken * e.tokensPerSecondPerNode - e.nodePower.watts) < 1e-6 * e.nodePower.watts)
        #expect(abs(e.facilityPower.watts - e.nodePower.watts * 1.27) < 1e-9 * e.nodePower.watts)
        #expect(abs(e.tokensPerSecondPerUser * e.stepTime.seconds - 1) < 1e-12)
    }

    @Test func memoryBoundDecodeDrawsLessThanComputeBoundPrefill() {
        // A dense model on one node with tensor parallelism: prefill is compute-bound, decode memory-bound.
        let model = StepCostModel(model: Fixture.denseModel, node: Fixture.node, site: Fixture.site,
                                  deployment: Deployment(expertParallel: 1, tensorParallel: 8, microBatches: 1))
        let d = model.estimate(.decode(sequences: 64, context: 2048))
        let p = model.estimate(.prefill(computedTokens: 8192, cachedFraction: 0, context: 2048))
        #expect(d.gpuPower < p.gpuPower)
        #expect(d.gpuPower > Fixture.gpu.power.idle)
        #expect(p.gpuPower <= Fixture.gpu.power.tdp)
    }

    @Test(arguments: [2, 4, 6, 7])
    func topKReductionNeverAddsTime(k: Int) {
        var fewer = Fixture.deepseekV3
        fewer.moe?.expertsPerToken = k
        var more = Fixture.deepseekV3
        more.moe?.expertsPerToken = k + 1
        let a = Fixture.decodeModel(fewer).estimate(.decode(sequences: 88, context: 4989))
        let b = Fixture.decodeModel(more).estimate(.decode(sequences: 88, context: 4989))
        #expect(a.stepTime <= b.stepTime)
        #expect(a.joulesPerToken <= b.joulesPerToken)
    }

    @Test func loadImbalanceOnlySlowsSteps() {
        var balanced = decode
        balanced.deployment.imbalanceOverride = 1
        let w = StepWorkload.decode(sequences: 88, context: 4989)
        #expect(balanced.estimate(w).stepTime < decode.estimate(w).stepTime)
    }

    @Test func cacheHitsRaiseServedThroughputNotWork() {
        var prefill = Fixture.decodeModel(ep: 32)
        prefill.deployment.communicationSMs = 20
        let cold = prefill.estimate(.prefill(computedTokens: 16384, cachedFraction: 0, context: 4096))
        let warm = prefill.estimate(.prefill(computedTokens: 16384, cachedFraction: 0.5, context: 4096))
        #expect(warm.tokensPerSecondPerNode > cold.tokensPerSecondPerNode)
        #expect(warm.tokensPerGPU == 2 * cold.tokensPerGPU)
    }

    @Test func sameInputsSameEstimate() {
        let w = StepWorkload.decode(sequences: 88, context: 4989)
        #expect(decode.estimate(w) == decode.estimate(w))
    }

    @Test func deepseekDecodeUnitFitsInMemory() {
        let e = decode.estimate(.decode(sequences: 88, context: 4989))
        #expect(e.fitsInMemory)
        #expect(e.weightBytesPerGPU > 15e9 && e.weightBytesPerGPU < 30e9)
    }

    @Test func deploymentValidationNamesTheFlag() {
        let bad = Deployment(expertParallel: 100, redundantExperts: 0)
        #expect(bad.validate(for: Fixture.deepseekV3, on: Fixture.node).map(\.field).contains("ep"))
        let dense = Deployment(expertParallel: 8)
        #expect(dense.validate(for: Fixture.denseModel, on: Fixture.node).map(\.field).contains("ep"))
    }
}

@Suite struct TrainingTests {
    let model = TrainingCostModel(model: Fixture.deepseekV3, node: Fixture.node, site: Fixture.site)
    let v3 = TrainingLayout(gpus: 2048, pipelineParallel: 16, expertParallel: 64)

    func step(_ layout: TrainingLayout? = nil, sequence: Double = 4096, batch: Double = 15360) -> TrainingStep {
        model.step(layout: layout ?? v3, sequenceLength: sequence, batch: batch)
    }

    /// The stage cut is the best contiguous cut: no split of a small random list into k groups has
    /// a smaller largest group (checked against every split).
    @Test func partitionIsTheBestContiguousCut() {
        var rng = SplitMix64(seed: 11)
        for _ in 0..<40 {
            let n = Int.random(in: 2...8, using: &rng), k = Int.random(in: 1...n, using: &rng)
            let costs = (0..<n).map { _ in Double.random(in: 0.1...5, using: &rng) }
            let ranges = TrainingCostModel.partition(costs, parts: k)
            #expect(ranges.count == k && ranges.first?.lowerBound == 0 && ranges.last?.upperBound == n)
            #expect(zip(ranges, ranges.dropFirst()).allSatisfy { $0.upperBound == $1.lowerBound && !$0.isEmpty })
            let got = ranges.map { costs[$0].reduce(0, +) }.max()!
            // Every way to place k − 1 cuts among n − 1 gaps.
            func best(_ start: Int, _ parts: Int) -> Double {
                if parts == 1 { return costs[start...].reduce(0, +) }
                guard n - start >= parts else { return .infinity }
                return (start + 1...(n - parts + 1)).map { cut in max(costs[start..<cut].reduce(0, +), best(cut, parts - 1)) }.min()!
            }
            #expect(abs(got - best(0, k)) < 1e-12)
        }
    }

    /// Backward passes of a GEMM do the forward's arithmetic twice (dgrad and wgrad); the attention
    /// core's backward does 2.5× its forward; recomputation adds forward work to B only.
    @Test func backwardPassesFollowTheirForward() {
        let block = TrainingPlanner(model: Fixture.deepseekV3, expertParallel: 64, recompute: .none).layer(index: 5, sequenceLength: 4096)
        let p = block.passes
        let gemm = { (ks: [Kernel]) in ks.filter { if case .gemm = $0.shape { true } else { false } }.reduce(0) { $0 + $1.flops } }
        #expect(abs(gemm(p.inputGradient) / gemm(p.forward) - 1) < 1e-12)
        #expect(abs(gemm(p.weightGradient) / gemm(p.forward) - 1) < 1e-12)
        let core = p.forward.first { $0.name == "attn.prefill_core" }!
        let back = p.inputGradient.first { $0.name == "attn.prefill_core.backward" }!
        #expect(abs(back.flops / core.flops - 2.5) < 1e-12)
        let full = TrainingPlanner(model: Fixture.deepseekV3, expertParallel: 64, recompute: .full).layer(index: 5, sequenceLength: 4096).passes
        let extra = full.inputGradient.reduce(0) { $0 + $1.flops } - p.inputGradient.reduce(0) { $0 + $1.flops }
        #expect(abs(extra / p.forward.reduce(0) { $0 + $1.flops } - 1) < 1e-12)
        #expect(full.weightGradient.count == p.weightGradient.count)
    }

    /// Recomputation costs time and saves memory; model FLOPs and so MFU's numerator do not change.
    @Test func recomputationTradesTimeForMemory() {
        let none = step(TrainingLayout(gpus: 2048, pipelineParallel: 16, expertParallel: 64, recompute: .none))
        let selective = step()
        let full = step(TrainingLayout(gpus: 2048, pipelineParallel: 16, expertParallel: 64, recompute: .full))
        #expect(none.activationBytes > selective.activationBytes && selective.activationBytes > full.activationBytes)
        #expect(none.stepTime <= selective.stepTime && selective.stepTime < full.stepTime)
        #expect(none.modelFLOPs == selective.modelFLOPs && selective.modelFLOPs == full.modelFLOPs)
        #expect(full.mfu < selective.mfu)
    }

    /// DualPipe's bubble is smaller than 1F1B's on the same cut; more micro-batches amortise it.
    @Test func dualPipeBubbleIsSmallerAndAmortised() {
        let dual = step(batch: 4096)
        let oneF = step(TrainingLayout(gpus: 2048, pipelineParallel: 16, expertParallel: 64, schedule: .oneFOneB), batch: 4096)
        #expect(dual.bubbleTime < oneF.bubbleTime)
        let big = step(batch: 15360)
        #expect(big.bubbleTime / big.stepTime < dual.bubbleTime / dual.stepTime)
        #expect(big.microBatches == 120 && dual.microBatches == 32)
    }

    /// Longer sequences need more activation memory, and context parallelism divides it back.
    @Test func memoryFollowsTokensPerGPU() {
        let short = step(sequence: 4096, batch: 1920)
        let long = step(sequence: 32768, batch: 1920)
        #expect(long.activationBytes > 7 * short.activationBytes)
        #expect(!long.fitsInMemory && short.fitsInMemory)
        let split = step(TrainingLayout(gpus: 2048, pipelineParallel: 16, expertParallel: 64, contextParallel: 8), sequence: 32768, batch: 1920)
        #expect(split.activationBytes < long.activationBytes / 4)
        #expect(split.weightBytes == long.weightBytes)
    }

    /// Every stage holds blocks, in order, and each block sits on exactly one stage.
    @Test func stagesCoverEveryBlockOnce() {
        let s = step()
        #expect(s.blocksPerStage.count == 16 && s.blocksPerStage.allSatisfy { !$0.isEmpty })
        let blocks = s.blocksPerStage.flatMap { $0 }
        #expect(blocks.first == "embedding" && blocks.last == "head")
        #expect(blocks.filter { $0 == "moe" }.count == 58 + 1 && blocks.filter { $0 == "dense" }.count == 3)
        #expect(s.mfu > 0 && s.mfu < 1 && s.stepTime > s.steadyTime)
    }

    /// The layout's checks name their flag.
    @Test func invalidLayoutsNameTheFlag() {
        let bad = TrainingLayout(gpus: 2048, pipelineParallel: 15, expertParallel: 64)
        #expect(bad.validate(for: Fixture.deepseekV3, on: Fixture.node).contains { $0.hasPrefix("--pp") })
        let badCP = TrainingLayout(gpus: 2048, pipelineParallel: 16, expertParallel: 64, contextParallel: 3)
        #expect(badCP.validate(for: Fixture.deepseekV3, on: Fixture.node).contains { $0.hasPrefix("--cp") })
        #expect(v3.validate(for: Fixture.deepseekV3, on: Fixture.node).isEmpty)
    }
}

@Suite struct LayerPlanTests {
    @Test(arguments: [Fixture.deepseekV3, Fixture.denseModel])
    func distinctLayersCoverEveryLayerOnce(model: ModelArchitecture) {
        let planner = LayerPlanner(model: model, deployment: Deployment(expertParallel: model.isMixtureOfExperts ? 144 : 1, redundantExperts: model.isMixtureOfExperts ? 32 : 0))
        let kinds = planner.distinctLayers(phase: .decode, planner.microBatch(.decode(sequences: 88, context: 4989)))
        #expect(kinds.map(\.count).reduce(0, +) == model.layers)
        #expect(kinds.filter(\.isMoE).map(\.count).reduce(0, +) == model.moeLayers)
        #expect(kinds.allSatisfy { $0.isMoE == ($0.layer.dispatchBytes > 0) || model.isMixtureOfExperts == false })
    }
}

@Suite struct GroundedModelLaws {
    /// A weight-bound decode step: few sequences, every expert on one GPU.
    static func smallDecode(_ model: ModelArchitecture) -> StepEstimate {
        StepCostModel(model: model, node: Fixture.node, site: Fixture.site, deployment: Deployment(expertParallel: 1, microBatches: 1))
            .estimate(.decode(sequences: 4, context: 1000))
    }

    @Test func topKReductionAndSkippingSpeedUpWeightBoundDecode() {
        let dense = Self.smallDecode(Fixture.deepseekV3)
        var topK = Fixture.deepseekV3
        topK.moe!.expertsPerToken = 6
        var skipping = Fixture.deepseekV3
        skipping.moe!.activeExpertsPerToken = 6.5
        #expect(Self.smallDecode(topK).stepTime < dense.stepTime)
        #expect(Self.smallDecode(skipping).stepTime < dense.stepTime)
        #expect(Self.smallDecode(topK).expertsTouched < dense.expertsTouched)
    }

    @Test func expertPruningAtBatchOneChangesOnlyTheExpertsTouched() {
        var pruned = Fixture.deepseekV3
        pruned.moe!.routedExperts = 192
        let a = StepCostModel(model: Fixture.deepseekV3, node: Fixture.node, site: Fixture.site, deployment: Deployment(expertParallel: 1, microBatches: 1))
            .estimate(.decode(sequences: 1, context: 1000))
        let b = StepCostModel(model: pruned, node: Fixture.node, site: Fixture.site, deployment: Deployment(expertParallel: 1, microBatches: 1))
            .estimate(.decode(sequences: 1, context: 1000))
        // One token touches its 8 experts whichever 192 or 256 exist; only the router's width differs.
        #expect(abs(a.expertsTouched - 8) < 1e-9 && abs(b.expertsTouched - 8) < 1e-9)
        #expect(abs(a.stepTime.seconds - b.stepTime.seconds) / a.stepTime.seconds < 0.005)
    }

    @Test(arguments: [1.0, 8, 64, 1024, 1e6])
    func expertsTouchedIsBoundedAndMonotone(tokens: Double) {
        let t = LayerPlanner.touched(slots: 256, total: 256, expertsPerToken: 8, tokens: tokens)
        #expect(t <= 256 && t >= min(8, 256))
        #expect(LayerPlanner.touched(slots: 256, total: 256, expertsPerToken: 8, tokens: tokens * 2) >= t)
        #expect(LayerPlanner.touched(slots: 256, total: 256, expertsPerToken: 6, tokens: tokens) <= t)
    }

    @Test func computeBoundPrefillDrawsAtLeastMemoryBoundDecode() {
        let model = StepCostModel(model: Fixture.denseModel, node: Fixture.node, site: Fixture.site, deployment: Deployment(expertParallel: 1, tensorParallel: 8, microBatches: 1))
        let prefill = model.estimate(.prefill(computedTokens: 8192, cachedFraction: 0, context: 2048))
        let decode = model.estimate(.decode(sequences: 8, context: 2048))
        #expect(prefill.computeUtilisation > decode.computeUtilisation)
        #expect(prefill.gpuPower >= decode.gpuPower)
    }

    @Test(arguments: [1.0, 16, 64, 256, 1024])
    func powerNeverExceedsTDPAndThrottlingKeepsDynamicEnergy(batch: Double) {
        let model = StepCostModel(model: Fixture.denseModel, node: Fixture.node, site: Fixture.site, deployment: Deployment(expertParallel: 1, tensorParallel: 4, microBatches: 1))
        let e = model.estimate(.decode(sequences: batch, context: 1024))
        #expect(e.gpuPower <= Fixture.gpu.power.tdp)
        #expect(e.throttle >= 1)
        let power = Fixture.gpu.power
        let unthrottled = power.demand(computeUtilisation: e.computeUtilisation * e.throttle, memoryUtilisation: e.memoryUtilisation * e.throttle, linkUtilisation: e.linkUtilisation * e.throttle)
        // Dynamic energy is the same whether or not the step stretched: (demand − busy)·t = (P − busy)·t·s.
        let before = (unthrottled - power.busy).watts * (e.stepTime.seconds / e.throttle)
        let after = (e.gpuPower - power.busy).watts * e.stepTime.seconds
        #expect(abs(before - after) <= 1e-9 * max(before, 1))
    }

    @Test func hostRisesFromIdleToTheRating() {
        let node = Fixture.node
        #expect(node.hostPower(gpuPower: node.gpu.power.idle) == node.hostIdle)
        let full = node.hostPower(gpuPower: node.gpu.power.tdp) + node.gpu.power.tdp * Double(node.gpusPerNode)
        #expect(abs(full.watts - node.rated.watts) < 1e-6)
    }

    @Test func imbalanceShrinksTowardsThePlacementWithMoreTokens() {
        let d = Deployment(expertParallel: 144, redundantExperts: 32, placementImbalance: 1.05)
        let few = d.loadImbalance(copiesPerRank: 100), many = d.loadImbalance(copiesPerRank: 1e6)
        #expect(few > many && many > 1.05 && many < 1.06)
        var o = d
        o.imbalanceOverride = 1.4
        #expect(o.loadImbalance(copiesPerRank: 100) == 1.4)
    }
}
