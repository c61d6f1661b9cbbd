import ArgumentParser
import Catalog
import Foundation
import Planning
import Serving
import Synchronization

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Find the lowest-energy (or carbon, GPUs, cost) deployment that serves a workload within its SLO.",
        discussion: """
        Searches deployments of the workload's model on the hardware: for disaggregated serving, \
        prefill and decode pools (expert-parallel layouts over whole nodes, redundant experts, token \
        budgets, batch caps and unit counts); for colocated serving, tensor- and expert-parallel \
        units. An analytic screen (memory, the step-cost bound at each cap, capacity) stops the \
        hopeless candidates; each of the rest is simulated over a warm-up and a steady window of the \
        workload, on every core. The answer is the Pareto front (energy and carbon per request, GPUs, \
        p99 TTFT and TPOT), the best plan for the objective, re-simulated over the whole workload, \
        and why every other candidate lost (SLO missed, saturated, memory, step-cost bound).

        --workload takes a scenario (its workload, model, hardware, site and grid are used) or a \
        trace file (then --model and --grid are needed). --pruning re-plans each pruning \
        configuration at the same SLO and sets its best against the dense best, with the fidelity \
        proxy and the quality the literature reports (Data/planning/quality.yaml).

        Examples:
          joule plan --workload deepseek-v3-average-hour --slo ttft-p99=2s,tpot-p99=50ms,tokens-per-user=20 --objective energy
          joule plan --workload deepseek-v3-average-hour --slo ttft-p99=2s,tpot-p99=50ms,tokens-per-user=20 --pruning all --html plan.html
          joule plan --workload mixtral-single-node --slo ttft-p99=1s,tpot-p99=40ms --objective gpus --max-nodes 1 --out best.yaml
          joule plan --workload ../shared/data/traces/AzureLLMInferenceTrace_conv.csv --model deepseek-v3 --grid CN --slo ttft-p99=2s,tpot-p99=50ms --json

        The plan written by --out runs as is: joule simulate --scenario best.yaml
        """
    )

    @OptionGroup var data: DataOptions
    @Option(help: "A scenario (file or name in Data/scenarios) whose workload is planned, or a trace file.") var workload: String
    @Option(help: "The model (default: the scenario's; required with a trace).") var model: String?
    @Option(help: "The hardware, a node in Data/hardware/nodes (default: the scenario's, or h800).") var hardware: String?
    @Option(help: "Latency targets: ttft-p99=TIME,tpot-p99=TIME[,tokens-per-user=N] (TIME like 2s or 50ms).") var slo: String
    @Option(help: "What to minimise among plans that meet the SLO: energy, carbon, gpus or cost.") var objective: PlanObjective = .energy
    @Option(help: "Pruning configurations to re-plan: frequency=F, router-weighted=F, top-k=K, skip=B (comma-separated), or all.") var pruning: String?
    @Option(help: "Grid region for carbon (an annual average from Data/grids; default: the scenario's carbon).") var grid: String?
    @Option(name: .customLong("trace-format"), help: "With a trace: azure, mooncake, joule-csv or joule-jsonl (default: from the file name).") var traceFormat: TraceFormat?
    @Option(help: "Simulated seconds at full load before each candidate's window (a multiple of 10); long requests arrive before it as long as the decode population needs to fill.") var warmup: Double = 60
    @Option(help: "Simulated seconds each candidate is measured over (a multiple of 10).") var window: Double = 60
    @Option(name: .customLong("max-nodes"), help: "The most nodes a plan may use.") var maxNodes: Int?
    @Option(name: .customLong("micro-batches"), help: "Micro-batch counts to search for expert-parallel pools, comma-separated (1,2 doubles the search).") var microBatches: String = "2"
    @Option(help: "Write the best plan as a scenario file that joule simulate and the daemon run as is.") var out: String?
    @Option(help: "Write the HTML report (Pareto chart, front, pruning table) to this file.") var html: String?
    @Flag(help: "Print the whole result (every candidate and why it lost) as JSON.") var json = false
    @Flag(name: .customLong("no-verify"), help: "Skip re-simulating the best plan over the whole workload.") var noVerify = false

    func run() throws {
        for (flag, v) in [("--warmup", warmup), ("--window", window)] where !(v.isFinite && v >= 0 && v.truncatingRemainder(dividingBy: 10) == 0) {
            throw CLIError(message: "\(flag): expected a multiple of 10 simulated seconds, got \(v)")
        }
        let result = try failing { () throws -> PlanResult in
            do {
                let sloTargets = try PlanSLO.parse(slo)
                let choices = try pruning.map(PruningChoice.parseList) ?? []
                let (library, directory) = try Composition.library(data)
                let base = try PlanBase.resolve(
                    workload: workload, model: model, hardware: hardware, grid: grid, traceFormat: traceFormat, pruning: !choices.isEmpty,
                    library: library, dataDirectory: directory
                )
                var options = PlanOptions(
                    slo: sloTargets, objective: objective, pruning: choices, warmupSeconds: warmup, windowSeconds: window, maxNodes: maxNodes, verify: !noVerify
                )
                options.microBatches = try microBatches.split(separator: ",").map { item in
                    guard let k = Int(item.trimmingCharacters(in: .whitespaces)) else {
                        throw PlanInputError("--micro-batches", "expected whole numbers from 1 to 8 separated by commas, got '\(microBatches)'")
                    }
                    return k
                }
                let planner = try Planner(base: base, options: options, data: try PlanningData.load(dataDirectory: directory), library: library, dataDirectory: directory)
                let bar = ProgressBar(label: "planning")
                let last = Mutex<String>("")
                let result = planner.run { label, done, total in
                    let changed = last.withLock { old in
                        defer { old = label }
                        return old != label
                    }
                    if changed { bar.finish() }
                    ProgressBar(label: label).update(total > 0 ? Double(done) / Double(total) : 0)
                }
                bar.finish()
                return result
            } catch let e as PlanInputError {
                throw CLIError(message: e.description)
            }
        }
        if let html { try write(PlanRender.html(result), to: html, flag: "--html") }
        print(json ? try jsonText(result) : PlanRender.text(result))
        if let out {
            guard let text = result.dense.bestScenario else { throw CLIError(message: "--out: no plan meets the SLO, so none was written") }
            try write(text, to: out, flag: "--out")
            FileHandle.standardError.write(Data("wrote the best plan to \(out): joule simulate --scenario \(out)\n".utf8))
        }
    }

    private func write(_ text: String, to path: String, flag: String) throws {
        do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch {
            throw CLIError(message: "\(flag): cannot write \(path) (\((error as NSError).localizedDescription))")
        }
    }
}

extension PlanObjective: ExpressibleByArgument {}
