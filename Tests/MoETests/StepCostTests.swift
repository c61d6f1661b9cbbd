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
        balanced.deployment.expertLoadImbalance = 1
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
        let kinds = planner.distinctLayers(phase: .decode, tokens: 44, attended: 4989, contextTokens: 44)
        #expect(kinds.map(\.count).reduce(0, +) == model.layers)
        #expect(kinds.filter(\.isMoE).map(\.count).reduce(0, +) == model.moeLayers)
        #expect(kinds.allSatisfy { $0.isMoE == ($0.layer.dispatchBytes > 0) || model.isMixtureOfExperts == false })
    }
}
