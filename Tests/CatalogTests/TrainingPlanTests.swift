import Catalog
import Foundation
import MoE
import Testing

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
