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

    func plan(gpus: Int = 2048, tokens: Double = 14.8e12) -> TrainingPlan {
        TrainingPlan(gpus: gpus, pipelineParallel: 16, expertParallel: 64, tokens: tokens, sequenceLength: 4096, globalBatch: 15360)
    }

    @Test func moreGPUsFinishSooner() {
        let small = model.estimate(plan(gpus: 1024))
        let large = model.estimate(plan(gpus: 2048))
        #expect(large.wallTime < small.wallTime)
        #expect(large.gpuHours > 0 && large.mfu > 0 && large.mfu < 1)
    }

    @Test func costScalesWithTokens() {
        let a = model.estimate(plan(tokens: 1e12))
        let b = model.estimate(plan(tokens: 2e12))
        #expect(abs(b.gpuHours / a.gpuHours - 2) < 1e-9)
        #expect(b.facilityEnergy > b.gpuEnergy * 1.27)
    }

    @Test func invalidPlansNameTheFlag() {
        let bad = TrainingPlan(gpus: 2048, pipelineParallel: 15, expertParallel: 64, tokens: 1e12, sequenceLength: 4096, globalBatch: 15360)
        #expect(bad.validate(for: Fixture.deepseekV3).contains { $0.hasPrefix("--pp") })
        #expect(plan().validate(for: Fixture.deepseekV3).isEmpty)
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
