import Foundation
import MoE

extension Catalog {
    /// Finds a training plan by path, or by name in `Data/training/` (`deepseek-v3`).
    public static func trainingPlanPath(_ nameOrPath: String, dataDirectory: String) throws -> String {
        let fm = FileManager.default
        if fm.fileExists(atPath: nameOrPath) { return nameOrPath }
        let named = dataDirectory + "/training/" + nameOrPath + (nameOrPath.hasSuffix(".yaml") ? "" : ".yaml")
        if fm.fileExists(atPath: named) { return named }
        let available = ((try? fm.contentsOfDirectory(atPath: dataDirectory + "/training")) ?? [])
            .filter { $0.hasSuffix(".yaml") }.map { String($0.dropLast(5)) }.sorted()
        throw CatalogError.unknown(kind: "training plan (file or name)", id: nameOrPath, available: available)
    }

    /// Reads the training plan at `path` (see `Data/training/deepseek-v3.yaml`).
    public static func loadTrainingPlan(at path: String) throws -> TrainingPlan {
        let r = try YAMLReader.parse(try readText(at: path), file: path)
        try r.onlyKeys(["id", "model", "hardware", "site", "layout", "stages"])
        let l = try r.child("layout")
        try l.onlyKeys(["gpus", "pp", "ep", "cp", "schedule", "communicationSMs", "recompute"])
        let layout = TrainingLayout(
            gpus: try l.int("gpus"), pipelineParallel: try l.int("pp"), expertParallel: try l.optionalInt("ep") ?? 1,
            contextParallel: try l.optionalInt("cp") ?? 1,
            schedule: l.has("schedule") ? try l.choice("schedule", as: PipelineSchedule.self) : .dualpipe,
            communicationSMs: try l.optionalInt("communicationSMs") ?? 0,
            recompute: l.has("recompute") ? try l.choice("recompute", as: Recompute.self) : .none
        )
        var stages: [TrainingStage] = []
        for s in try r.items("stages") {
            try s.onlyKeys(["name", "sequenceLength", "batch", "tokens", "steps", "sft", "cp", "recompute", "rollout", "referenceForward", "assumptions"])
            var stage = TrainingStage(name: try s.string("name"), sequenceLength: try s.double("sequenceLength"), batch: 0)
            if s.has("batch"), (try? s.child("batch")) != nil {
                let b = try s.child("batch")
                try b.onlyKeys(["from", "to", "overTokens"])
                stage.rampFrom = try b.double("from")
                stage.batch = try b.double("to")
                stage.rampTokens = try b.double("overTokens")
            } else {
                stage.batch = try s.double("batch")
            }
            stage.tokens = try s.optionalDouble("tokens")
            stage.steps = try s.optionalDouble("steps")
            if s.has("sft") {
                let f = try s.child("sft")
                try f.onlyKeys(["instances", "epochs", "tokensPerInstance"])
                guard stage.tokens == nil && stage.steps == nil else { throw s.error("sft", "expected sft instead of tokens or steps, not beside them") }
                stage.tokens = try f.double("instances") * f.double("epochs") * f.double("tokensPerInstance")
            }
            if (try? s.string("cp")) == "auto" { stage.chooseContextParallel = true } else { stage.contextParallel = try s.optionalInt("cp") }
            if (try? s.string("recompute")) == "auto" {
                stage.chooseRecompute = true
            } else if s.has("recompute") {
                stage.recompute = try s.choice("recompute", as: Recompute.self)
            }
            if s.has("rollout") {
                let o = try s.child("rollout")
                try o.onlyKeys(["prompts", "samplesPerPrompt", "promptTokens", "outputTokens", "decodeBatchPerGPU", "ep"])
                stage.rollout = Rollout(
                    prompts: try o.double("prompts"), samplesPerPrompt: try o.double("samplesPerPrompt"), promptTokens: try o.double("promptTokens"),
                    outputTokens: try o.double("outputTokens"), decodeBatchPerGPU: try o.double("decodeBatchPerGPU"), expertParallel: try o.int("ep")
                )
            }
            stage.referenceForward = s.has("referenceForward") ? try s.bool("referenceForward") : false
            if s.has("assumptions") {
                stage.assumptions = try s.items("assumptions").map { item in
                    guard let text = item.node.string else { throw s.error("assumptions", "expected a list of sentences") }
                    return text
                }
            }
            stages.append(stage)
        }
        let id = try r.optionalString("id") ?? URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        return TrainingPlan(
            id: id, model: try r.string("model"), hardware: try r.string("hardware"), site: try r.optionalString("site") ?? "default",
            layout: layout, stages: stages
        )
    }
}
