import Catalog
import Foundation
import MoE
import Accounting
import Serving
import Testing
import Units

/// The shipped training plan and what is wrong with broken ones, read through the Catalog.
@Suite struct TrainingPlanTests {
    static let library = try! Catalog.load(from: repositoryData)

    static func shipped() throws -> TrainingPlan {
        try Catalog.loadTrainingPlan(at: try Catalog.trainingPlanPath("deepseek-v3", dataDirectory: repositoryData))
    }

    /// A copy of the shipped plan with one edit, written to a temporary file.
    static func edited(_ target: String, _ replacement: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("plan-\(UUID().uuidString).yaml").path
        let text = try String(contentsOfFile: repositoryData + "/training/deepseek-v3.yaml", encoding: .utf8)
        #expect(text.contains(target), "fixture edit must change something")
        try text.replacingOccurrences(of: target, with: replacement).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func thePublishedPlanFitsEveryStage() throws {
        let plan = try Self.shipped()
        #expect(plan.stages.map(\.name) == ["pre-training", "context-extension-32k", "context-extension-128k", "sft", "rl"])
        #expect(try Self.library.validate(plan).isEmpty)
        let e = try Self.library.estimate(plan)
        #expect(e.stages.allSatisfy { $0.step.fitsInMemory && $0.gpuHours > 0 && $0.mfu > 0 && $0.mfu < 1 })
        #expect(abs(e.gpuHours - e.stages.reduce(0) { $0 + $1.gpuHours }) < 1e-6)
        // Energy: GPUs within nodes within the facility.
        #expect(e.stages.allSatisfy { $0.gpuEnergy < $0.nodeEnergy && $0.nodeEnergy < $0.facilityEnergy })
        // The RL stage's rollouts are part of its hours, not all of them.
        let rl = e.stages.last!
        #expect(rl.rolloutGPUHours > 0 && rl.rolloutGPUHours < rl.gpuHours)
    }

    /// The ramp's smaller batches cost more per token than the full batch (more bubble per token).
    @Test func theBatchRampCostsMoreThanItsTokensAtFullBatch() throws {
        var plan = try Self.shipped()
        plan.stages = [plan.stages[0]]
        let ramped = try Self.library.estimate(plan).gpuHours
        plan.stages[0].rampFrom = nil
        plan.stages[0].rampTokens = 0
        let flat = try Self.library.estimate(plan).gpuHours
        #expect(ramped > flat)
    }

    @Test func aStageWithPartialMicroBatchesNamesItsBatch() throws {
        let path = try Self.edited("    batch: 480                 # §4.3: batch 480\n    cp: auto\n    recompute: auto", "    batch: 480\n    cp: 1\n    recompute: full")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let problems = try Self.library.validate(try Catalog.loadTrainingPlan(at: path))
        #expect(problems.contains { $0.hasPrefix("stages[2] (context-extension-128k).batch:") && $0.contains("3.75 micro-batches") })
    }

    @Test func aStageThatDoesNotFitNamesItsSequence() throws {
        // 32K-token sequences with no context parallelism and nothing recomputed.
        let path = try Self.edited("    batch: 1920                # §4.3: batch 1,920\n    cp: auto\n    recompute: auto", "    batch: 2048\n    cp: 1\n    recompute: none")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let problems = try Self.library.validate(try Catalog.loadTrainingPlan(at: path))
        #expect(problems.contains { $0.hasPrefix("stages[1] (context-extension-32k).sequenceLength:") && $0.contains("against 80.0 GB") })
        #expect {
            try Self.library.estimate(try Catalog.loadTrainingPlan(at: path))
        } throws: { "\($0)".contains("stages[1]") }
    }

    /// A batch of 1e300 sequences is whole micro-batches in floating point, and once trapped converting to a count.
    @Test func anAbsurdBatchOrTokenCountNamesItsField() throws {
        var plan = try Self.shipped()
        plan.stages = [plan.stages[0]]
        plan.stages[0].batch = 1e300
        plan.stages[0].rampFrom = nil
        plan.stages[0].rampTokens = 0
        #expect(try Self.library.validate(plan).contains { $0.hasPrefix("stages[0]") && $0.contains("batch: expected at most 1000000000") })
        plan.stages[0].batch = try Self.shipped().stages[0].batch
        plan.stages[0].tokens = .infinity
        plan.stages[0].steps = nil
        #expect(try Self.library.validate(plan).contains { $0.contains("tokens: expected a positive number up to 1e17") })
    }

    @Test func misspeltFieldsAreNamedWithTheirLine() throws {
        let path = try Self.edited("    steps: 1000                # §4.3: 1,000 steps at 32K", "    stpes: 1000")
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect {
            try Catalog.loadTrainingPlan(at: path)
        } throws: { error in
            let text = "\(error)"
            return text.contains("stages[1].stpes") && text.contains("unknown field") && text.contains(".yaml:23:")
        }
    }

    @Test func anUnknownPlanListsTheShippedOnes() {
        #expect {
            try Catalog.trainingPlanPath("gpt-5", dataDirectory: repositoryData)
        } throws: { "\($0)".contains("deepseek-v3") }
    }
}

/// A scenario that names a training plan charges every finished request its tokens' share, and
/// the shares over the stated life add up to the plan's footprint.
@Suite struct TrainingAmortisationTests {
    static let plan = """
        id: mixtral-small
        model: mixtral-8x7b
        hardware: h800
        layout: {gpus: 64, pp: 4, ep: 8, schedule: dualpipe, communicationSMs: 20, recompute: selective}
        stages:
          - {name: pre-training, tokens: 1.0e9, sequenceLength: 4096, batch: 128}
        """

    /// The requests of the test: every one finishes (the run goes on until the last does).
    static func requests() -> [ServingRequest] {
        var rng = SplitMix64(seed: 5)
        var t = 0.0
        return (0..<60).map { id in
            t += Double.random(in: 0.05...0.4, using: &rng)
            return ServingRequest(id: id, arrival: t, promptTokens: Int.random(in: 20...900, using: &rng), cachedTokens: 0, outputTokens: Int.random(in: 1...120, using: &rng))
        }
    }

    static func scenario(servedTokens: Double) throws -> ServingScenario {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("amortise-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try plan.write(toFile: dir + "/small-plan.yaml", atomically: true, encoding: .utf8)
        var text = try String(contentsOfFile: repositoryData + "/scenarios/mixtral-single-node.yaml", encoding: .utf8)
        text = text.replacingOccurrences(of: "duration: 600\n", with: "")
        text += "training: {plan: small-plan.yaml, servedTokens: \(servedTokens), lifeMonths: 12, grid: FR}\n"
        try text.write(toFile: dir + "/scenario.yaml", atomically: true, encoding: .utf8)
        return try Catalog.loadScenario(at: dir + "/scenario.yaml", library: TrainingPlanTests.library, dataDirectory: repositoryData).scenario
    }

    @Test func sharesOverTheLifeAddUpToTheFootprint() throws {
        let requests = Self.requests()
        let life = Double(requests.reduce(0) { $0 + $1.promptTokens + $1.outputTokens })
        let scenario = try Self.scenario(servedTokens: life)
        let footprint = try #require(scenario.training)
        var simulator = try ServingSimulator(scenario: scenario)
        var stream = TraceStream(requests)
        var records: [RequestRecord] = []
        let summary = try simulator.run(&stream, onRecord: { records.append($0) }, onInterval: { _ in })
        #expect(records.count == requests.count && records.allSatisfy { !$0.inFlight })
        // Every request carries a share, in proportion to its tokens.
        #expect(records.allSatisfy { r in
            guard let t = r.training else { return false }
            return t.tokens == Double(r.promptTokens + r.outputTokens) && abs(t.carbonGrams / footprint.carbonGrams - t.tokens / life) < 1e-12
        })
        let carbon = records.reduce(0) { $0 + $1.training!.carbonGrams }
        let energy = records.reduce(0) { $0 + $1.training!.facilityJoules }
        let gpu = records.reduce(0) { $0 + $1.training!.gpuSeconds }
        #expect(abs(carbon / footprint.carbonGrams - 1) < 1e-9)
        #expect(abs(energy / footprint.facilityJoules - 1) < 1e-9)
        #expect(abs(gpu / (footprint.gpuHours * 3600) - 1) < 1e-9)
        #expect(abs((summary.training?.shareOfFootprint ?? 0) - 1) < 1e-9)
        // The training share stays out of the run's own figures: without it, every request's
        // energy and operational and embodied carbon are the same.
        var plain = scenario
        plain.training = nil
        var other = try ServingSimulator(scenario: plain)
        var again = TraceStream(requests)
        var plainRecords: [RequestRecord] = []
        let plainSummary = try other.run(&again, onRecord: { plainRecords.append($0) }, onInterval: { _ in })
        #expect(plainRecords.map(\.totalCarbonGrams) == records.map(\.totalCarbonGrams))
        #expect(plainRecords.map(\.facilityJoules) == records.map(\.facilityJoules))
        #expect(plainSummary.carbonKg == summary.carbonKg && plainSummary.training == nil)
    }

    @Test func theFootprintIsThePlansEstimate() throws {
        let scenario = try Self.scenario(servedTokens: 1e12)
        let t = try #require(scenario.training)
        #expect(t.plan == "mixtral-small" && t.grid == "FR")
        #expect(t.facilityJoules > 0 && t.gpuHours > 0)
        #expect(abs(t.carbonGrams - t.facilityJoules / 3.6e6 * t.gramsPerKWh) < 1e-6 * t.carbonGrams)
        // Twice the life volume halves every share.
        let half = try Self.scenario(servedTokens: 2e12).training!
        #expect(abs(half.share(tokens: 1000).carbonGrams * 2 - t.share(tokens: 1000).carbonGrams) < 1e-15)
    }

    @Test func badTrainingSectionsNameTheirField() throws {
        #expect {
            try Self.scenario(servedTokens: 0)
        } throws: { "\($0)".contains("training.servedTokens") }
    }
}
