import Catalog
import Foundation
import MoE
import Serving

/// The workload a plan serves and the scenario text candidates are written from.
public struct PlanBase: Sendable {
    /// The scenario text candidates replace sections of (model, hardware and grid already applied).
    public var text: String
    /// The file relative paths in it resolve from.
    public var file: String
    public var name: String
    /// The base scenario as loaded (its own deployment).
    public var loaded: LoadedScenario
    /// The routing model every candidate's `experts:` block carries (nil: the serving defaults').
    public var routing: RoutingModelText?
    public var scenario: ServingScenario { loaded.scenario }
    var colocated: Bool {
        if case .colocated = loaded.scenario.topology { return true }
        return false
    }

    /// The base scenario's pools as choices (the partner pool while one pool's layouts are screened).
    var poolChoices: [PoolChoice] {
        loaded.scenario.topology.pools.map { p in
            let role = p.role == .colocated ? "unit" : p.role.rawValue
            return PoolChoice(
                role: role, units: p.units, ep: p.deployment.expertParallel, tp: p.deployment.tensorParallel,
                redundantExperts: p.deployment.redundantExperts, microBatches: p.deployment.microBatches,
                maxBatchPerRank: p.maxBatchPerRank, tokenBudgetPerRank: p.tokenBudgetPerRank
            )
        }
    }

    /// Resolves `--workload` (a scenario name or file, or a trace) with the model, hardware and grid flags.
    public static func resolve(
        workload: String, model: String?, hardware: String?, grid: String?, traceFormat: TraceFormat?, pruning: Bool,
        library: SpecLibrary, dataDirectory: String
    ) throws -> PlanBase {
        let fm = FileManager.default
        let isScenario = workload.hasSuffix(".yaml") || workload.hasSuffix(".yml") || !fm.fileExists(atPath: workload)
        var text: String
        var file: String
        if isScenario {
            file = try Catalog.scenarioPath(workload, dataDirectory: dataDirectory)
            text = try Catalog.readText(at: file)
        } else {
            guard let format = traceFormat ?? TraceFormat.guess(fromFileName: workload) else {
                throw PlanInputError("--trace-format", "the trace's name does not say its layout; pass one of \(TraceFormat.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard let model else { throw PlanInputError("--model", "a trace names no model: pass --model (a model in Data/models)") }
            guard let grid else { throw PlanInputError("--grid", "a trace carries no grid: pass --grid REGION (a region of Data/grids, see `joule carbon defaults`)") }
            let absolute = URL(fileURLWithPath: workload).standardizedFileURL.path
            let name = URL(fileURLWithPath: workload).deletingPathExtension().lastPathComponent
            file = fm.currentDirectoryPath + "/\(name)-plan.yaml"
            text = """
            name: \(name)
            description: \(ScenarioText.quoted("The trace \(URL(fileURLWithPath: workload).lastPathComponent)"))
            model: \(model)
            hardware: \(hardware ?? "h800")
            site: default
            seed: 1
            deployment:
              kind: colocated
              unit: {units: 1, tp: 8}
            workload:
              trace: {path: \(ScenarioText.quoted(absolute)), format: \(format.rawValue)}
            carbon: {region: \(grid), grid: \(grid)}
            embodied: llmcarbon-h800

            """
            // Large MoE models are planned disaggregated, the others colocated.
            let arch = try library.model(model)
            if SearchSpace.isLargeMoE(arch), let moe = arch.moe {
                let ep = 32
                let r = SearchSpace.redundancy(experts: moe.routedExperts, ep: ep)[0]
                text = ScenarioText.replacing([
                    "deployment": "deployment:\n  kind: disaggregated\n  prefill: {units: 1, ep: \(ep), redundantExperts: \(r)}\n  decode: {units: 1, ep: \(ep), redundantExperts: \(r)}",
                ], in: text, header: [], order: [])
            }
        }
        var replacements: [String: String?] = [:]
        if let model { replacements["model"] = "model: \(model)" }
        if let hardware { replacements["hardware"] = "hardware: \(hardware)" }
        if let grid, isScenario { replacements["carbon"] = "carbon: {region: \(grid), grid: \(grid)}" }
        if !replacements.isEmpty {
            text = ScenarioText.replacing(replacements, in: text, header: ScenarioText.sections(text).header, order: [])
        }
        let loaded: LoadedScenario
        do {
            loaded = try Catalog.loadScenario(text: text, file: file, library: library, dataDirectory: dataDirectory)
        } catch let error as CatalogError where grid != nil && "\(error)".contains("carbon.grid") {
            throw PlanInputError("--grid", "no annual average for grid '\(grid!)' in Data/grids/annual.yaml (see `joule carbon defaults` for the regions)")
        }
        // Candidates model expert routing when the base does or when pruning is compared (like for like).
        var routing: RoutingModelText?
        if let e = loaded.scenario.experts {
            routing = RoutingModelText(skew: e.skew, sampledLayers: e.sampledLayers, tokens: 4096, seed: 1)
        } else if pruning, loaded.scenario.model.moe != nil {
            let p = library.serving.expertPopularity
            routing = RoutingModelText(skew: p.skew, sampledLayers: p.layers, tokens: 4096, seed: Int(p.seed))
        }
        if pruning && loaded.scenario.model.moe == nil {
            throw PlanInputError("--pruning", "\(loaded.scenario.model.id) is dense: there are no experts to prune")
        }
        return PlanBase(text: text, file: file, name: loaded.scenario.name, loaded: loaded, routing: routing)
    }

    /// The workload's requests arriving before `end` simulated seconds.
    func requests(until end: Double) throws -> [ServingRequest] {
        let prepared = try Catalog.prepare(loaded, overrides: RunOverrides())
        if let trace = prepared.traceRequests { return trace.filter { $0.arrival < end } }
        guard let generator = prepared.generator else { return [] }
        var stream = GeneratedStream(generator, startEpochSeconds: prepared.scenario.startEpochSeconds, seed: prepared.scenario.seed)
        var out: [ServingRequest] = []
        while let r = stream.next(), r.arrival < end { out.append(r) }
        return out
    }
}
