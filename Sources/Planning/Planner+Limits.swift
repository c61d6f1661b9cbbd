import Calibration
import Catalog
import Serving

/// What every report says bounds its answer.
extension Planner {
    /// The published serving figures of the planned model's family against Joule's, computed now
    /// from the calibration targets (DeepSeek's day-6 figures for DeepSeek-V3 and R1), or nil.
    func calibrationLine() -> String? {
        let id = base.scenario.model.id
        guard id.hasPrefix("deepseek-v3") || id.hasPrefix("deepseek-r1") else { return nil }
        let library = library, directory = dataDirectory
        guard let targets = try? Catalog.loadCalibrationTargets(from: directory).filter({ $0.id.hasPrefix("deepseek.serving.") }), !targets.isEmpty,
              let rows = try? CalibrationRunner(
                library: library, fleetNodeHours: { try Catalog.fleetNodeHours($0, library: library, dataDirectory: directory) }
              ).run(targets)
        else { return nil }
        let parts = rows.map { r in
            "\(r.target.description.split(separator: ";").first ?? "") \(CalibrationReport.format(r.computed)) against \(CalibrationReport.format(r.target.published)) \(r.target.unit) (\(r.relativeError >= 0 ? "+" : "")\(CalibrationReport.format(100 * r.relativeError)) %)"
        }
        return "Against DeepSeek's published serving figures, computed now: " + parts.joined(separator: "; ") + "."
    }

    /// What the search leaves out and what bounds its answer.
    func limits() -> [String] {
        var out = [
            base.colocated
                ? "Searched: colocated units (TP within a node, experts sharded or expert-parallel over the unit's GPUs), batch caps (with the largest whose step meets the TPOT target), token budgets and unit counts."
                : "Searched: prefill and decode pools, each expert-parallel over whole nodes with the fewest or one more redundant expert per GPU and \(options.microBatches.map(String.init).joined(separator: " or ")) micro-batches; prefill token budgets; decode batch caps (with the largest whose step meets the TPOT target); unit counts around the step-cost bound, bisected to the fewest that meet the targets; so the prefill:decode split.",
            "Not searched: memory reserve (the scenario's), routing policies, node schedules over the day, mixed layouts within a pool, quantisation, speculative decoding, other hardware\(options.pruning.isEmpty ? "" : "; pruned models are repacked on fewer GPUs (freedMemory: fewer-gpus), never given the freed memory as KV cache instead")\(base.colocated ? "" : "; tensor parallelism for expert-parallel pools").",
            "Each candidate is judged on \(fmt(options.windowSeconds)) s of arrivals after \(fmt(options.warmupSeconds)) s of full-load warm-up, preceded by \(fmt(prewarmSeconds)) s in which only the requests still decoding at the window's start arrive (99 % of the steady decode population, from the output lengths at the TPOT target); the best is re-simulated over the whole workload before it is returned. A load that changes over the day needs a plan per stretch (or `joule simulate --size-fleet`).",
            "Routing skew: expert loads follow a Zipf popularity (skew \(fmt(base.routing?.skew ?? library.serving.expertPopularity.skew)), an assumption, Data/SOURCES.md); a more skewed real router slows every expert-parallel candidate.",
            "The step and power model's fit against measurements bounds every figure here: see docs/calibration.md (fit and check errors per target)."
                + (calibrationLine().map { " " + $0 } ?? ""),
        ]
        if !base.colocated {
            out.insert("Prefill and decode pools are swept against a fixed partner and the three best of each are combined: the pools interact only through the KV transfer, which the combinations simulate.", at: 3)
        }
        if base.scenario.schedule != nil { out.append("The base scenario's node schedule is dropped: a plan serves its window at a fixed size.") }
        return out
    }
}
