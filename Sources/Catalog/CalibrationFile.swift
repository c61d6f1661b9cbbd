import Calibration

/// Parses `calibration/targets.yaml`: a list of published figures, each with the check that computes Joule's value.
enum CalibrationFile {
    static func parse(_ r: YAMLReader) throws -> [CalibrationTarget] {
        var seen: Set<String> = []
        return try r.items("targets").map { item in
            let id = try item.string("id")
            if !seen.insert(id).inserted {
                throw CatalogError.invalidField(file: r.file, field: "targets", line: item.node.mark?.line, message: "duplicate id '\(id)'")
            }
            let tolerance = try item.optionalDouble("tolerance")
            if let tolerance, !(tolerance > 0 && tolerance < 1) {
                throw CatalogError.invalidField(file: r.file, field: "\(item.path).tolerance", line: item.node.mark?.line, message: "expected a share between 0 and 1, got \(tolerance)")
            }
            let published = try item.double("published")
            if published == 0 {
                throw CatalogError.invalidField(file: r.file, field: "\(item.path).published", line: item.node.mark?.line, message: "expected a non-zero figure")
            }
            return CalibrationTarget(
                id: id, description: try item.string("figure"), published: published, unit: try item.string("unit"),
                tolerance: tolerance, source: try item.string("source"), check: try check(try item.child("check"))
            )
        }
    }

    private static func check(_ c: YAMLReader) throws -> CalibrationCheck {
        let kind = try c.string("kind")
        switch kind {
        case "total-parameters":
            return .totalParameters(model: try c.string("model"))
        case "active-parameters":
            return .activeParameters(model: try c.string("model"), includesEmbedding: try c.bool("includesEmbedding"))
        case "kv-cache-bytes-per-token":
            return .kvCacheBytesPerToken(model: try c.string("model"))
        case "analytical-all-to-all-round":
            return .analyticalAllToAllRound(try bound(c))
        case "analytical-tpot":
            return .analyticalTPOT(try bound(c), microBatches: try c.int("microBatches"), layers: try c.int("layers"))
        case "gemm-throughput":
            return .gemmThroughput(gpu: try c.string("gpu"), rows: try c.double("rows"), outputs: try c.double("outputs"), depth: try c.double("depth"), groups: try c.double("groups"))
        case "attention-kernel":
            return .attentionKernel(
                gpu: try c.string("gpu"), model: try c.string("model"), batch: try c.double("batch"), context: try c.double("context"),
                heads: try c.double("heads"), queryTokens: try c.double("queryTokens"), metric: try c.choice("metric", as: AttentionMetric.self)
            )
        case "all-to-all":
            return .allToAll(
                node: try c.string("hardware"), ep: try c.int("ep"), tokensPerRank: try c.double("tokensPerRank"),
                hidden: try c.double("hidden"), expertsPerToken: try c.double("expertsPerToken"),
                operation: try c.choice("operation", as: AllToAllOperation.self), metric: try c.choice("metric", as: AllToAllMetric.self)
            )
        case "serving-step":
            return .servingStep(ServingStepInputs(
                model: try c.string("model"), hardware: try c.string("hardware"), site: c.has("site") ? try c.string("site") : "default",
                phase: try c.string("phase"), ep: try c.int("ep"), tp: c.has("tp") ? try c.int("tp") : 1,
                batchPerGPU: try c.optionalDouble("batchPerGPU"), tokensPerGPU: try c.optionalDouble("tokensPerGPU"),
                cachedFraction: try c.optionalDouble("cachedFraction") ?? 0, context: try c.double("context")
            ), metric: try c.choice("metric", as: ServingMetric.self))
        case "training-gpu-hours":
            return .trainingGPUHours(TrainingInputs(
                model: try c.string("model"), hardware: try c.string("hardware"), gpus: try c.int("gpus"), pp: try c.int("pp"),
                ep: try c.int("ep"), tokens: try c.double("tokens"), seqLen: try c.double("seqLen"), globalBatch: try c.double("globalBatch")
            ))
        case "training-plan-gpu-hours":
            return .trainingPlanGPUHours(
                plan: try c.string("plan"),
                stages: c.has("stages") ? try c.items("stages").map { item in
                    guard let name = item.node.string else { throw c.error("stages", "expected a list of stage names") }
                    return name
                } : nil
            )
        case "fleet-node-hours":
            return .fleetNodeHours(FleetInputs(
                scenario: try c.string("scenario"), tpotMilliseconds: try c.double("tpotMilliseconds"),
                prefillStepMilliseconds: try c.double("prefillStepMilliseconds")
            ))
        default:
            throw CatalogError.invalidField(
                file: c.file, field: "\(c.path).kind", line: c.node.mark?.line,
                message: "unknown check '\(kind)'; expected one of total-parameters, active-parameters, kv-cache-bytes-per-token, analytical-all-to-all-round, analytical-tpot, gemm-throughput, attention-kernel, all-to-all, serving-step, training-gpu-hours, training-plan-gpu-hours, fleet-node-hours"
            )
        }
    }

    private static func bound(_ c: YAMLReader) throws -> AnalyticalBoundInputs {
        AnalyticalBoundInputs(
            tokens: try c.double("tokens"), experts: try c.double("experts"), hidden: try c.double("hidden"),
            dispatchBytesPerElement: try c.double("dispatchBytesPerElement"),
            combineBytesPerElement: try c.double("combineBytesPerElement"), bandwidthGBps: try c.double("bandwidthGBps")
        )
    }
}
