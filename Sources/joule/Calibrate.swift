import ArgumentParser
import Calibration
import Catalog
import Foundation
import MoE

struct Calibrate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare Joule's model with every published figure, and fit its coefficients to measurements.",
        discussion: """
        Prints the calibration table (Data/calibration/targets.yaml) and exits non-zero if any checked \\
        row is outside its tolerance. --markdown prints the table docs/calibration.md embeds \\
        (Scripts/generate-calibration-doc writes it).

        --fit fits the coefficients in Data/calibration/fitted.yaml and writes them back: first the \\
        kernel-level ones to DeepSeek's H800 training trace (--profile), then the GPU power terms and \\
        the engine's step overhead to ML.ENERGY's measured H100 rows (--measurements). --fit-table \\
        prints every measured row against Joule with the coefficients as they are, and fails if the \\
        median errors exceed 10 % (power) or 15 % (J/token, latency), or any error exceeds 35 %. \
        --training-profile prints every phase of DeepSeek's H800 training trace against Joule's \
        training kernels (fit rows and check rows marked).

        --from-measured RUN fits the same power and engine coefficients to a measured run of your \
        own fleet (`joule measure --db`): each batch size the run's engines served becomes a row \
        (GPU power, GPU J per output token, inter-token latency), run by Joule as --model on \
        --hardware with the engine's GPUs in tensor parallel. It prints the rows before and after \
        and the coefficients it proposes, and changes nothing unless --apply is given (which \
        writes them to the data folder's calibration/fitted.yaml).

        Examples:
          joule calibrate
          joule calibrate --markdown
          joule calibrate --fit
          joule calibrate --fit-table --markdown
          joule calibrate --training-profile
          joule calibrate --from-measured 3 --db joule.sqlite --model llama-3.1-70b --hardware h100
        """
    )

    @OptionGroup var data: DataOptions
    @Flag(help: "Print the Markdown table only.") var markdown = false
    @Flag(help: "Fit Data/calibration/fitted.yaml to the measurements and write it.") var fit = false
    @Flag(name: .customLong("fit-table"), help: "Print the measured rows against Joule (no fitting).") var fitTable = false
    @Flag(name: .customLong("training-profile"), help: "Print DeepSeek's training-trace phases against Joule (no fitting).") var trainingProfile = false
    @Option(help: "ML.ENERGY's fit file (default: ../shared/data/mlenergy/mlenergy_h100_fit.csv beside the data folder's project).")
    var measurements: String?
    @Option(help: "Folder with DeepSeek's training-trace aggregates (default: ../shared/data/deepseek_anchors).") var profile: String?
    @Option(help: "Simplex iterations of the serving fit.") var iterations: Int = 400
    @Option(name: .customLong("from-measured"), help: ArgumentHelp("A measured run in --db to fit the power and engine coefficients to.", valueName: "run"))
    var fromMeasured: Int64?
    @Option(help: "With --from-measured: the model the measured engines served (Data/models).") var model: String?
    @Option(help: "With --from-measured: the node the measured GPUs are in (Data/hardware/nodes).") var hardware = "h800"
    @Option(name: .customLong("min-seconds"), help: "With --from-measured: the fewest engine-seconds a batch size needs to be a row.") var minSeconds = 20.0
    @Flag(help: "With --from-measured: write the proposed coefficients to the data folder's calibration/fitted.yaml.") var apply = false
    @OptionGroup var ledger: LedgerOptions

    func run() throws {
        let (library, directory) = try failing { try Composition.library(data) }
        let shared = URL(fileURLWithPath: directory).standardized.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/data").path
        let csv = measurements ?? shared + "/mlenergy/mlenergy_h100_fit.csv"
        if let fromMeasured { return try fitMeasured(run: fromMeasured, library: library, directory: directory) }
        if apply { throw CLIError(message: "--apply: only with --from-measured (--fit always writes)") }
        if fit {
            guard (1...100_000).contains(iterations) else { throw CLIError(message: "--iterations: expected 1 to 100000, got \(iterations)") }
            let rows = try failing { try Catalog.loadMeasuredServing(csv: csv, dataDirectory: directory) }
            let trace = try failing { try Catalog.loadTrainingProfile(directory: profile ?? shared + "/deepseek_anchors") }
            let start = try failing { try Catalog.loadFittedParameters(from: directory) }
            let fitter = CalibrationFit(library: library)
            let kernels = try failing { try fitter.fitKernels(trace, start: start) }
            FileHandle.standardError.write(Data("kernels fitted to the training trace; fitting power and overhead to \(rows.count) measured rows…\n".utf8))
            let fitted = try failing { try fitter.fitServing(rows, start: kernels, iterations: iterations) }
            let comparisons = try failing { try library.applying(fitted).compare(rows) }
            let s = FitSummary(comparisons)
            let profileModel = try failing { try fitter.modelledProfile(trace, in: library.applying(fitted)) }
            let provenance = [
                "kernels: deepseek_anchors/profile_train_ep64_* (DeepSeek's H800 trace, EP64, 4,096 tokens, balanced routing):",
                "  forward attention \(f(trace.attentionForward.microseconds)) µs/layer measured, \(f(profileModel.attention.microseconds)) modelled;",
                "  forward MoE block \(f(trace.mlpForward.microseconds)) µs/layer measured, \(f(profileModel.mlp.microseconds)) modelled;",
                "  FlashAttention forward \(f(trace.flashAttentionForward.microseconds)) µs measured (sets prefillAttentionFraction);",
                "  FlashAttention backward \(f(trace.flashAttentionBackward.microseconds)) µs measured (sets attentionBackwardFraction);",
                "  every other phase is a check: joule calibrate --training-profile.",
                "power and engine: mlenergy/mlenergy_h100_fit.csv, \(rows.count) rows (ML.ENERGY leaderboard v3, vLLM 0.11.1, NVML GPU power);",
                "  least squares on log GPU power, log GPU J/token and log median inter-token latency, Nelder–Mead, \(iterations) iterations;",
                "  median |error| power \(pct(s.medianPowerError)), J/token \(pct(s.medianEnergyError)), latency \(pct(s.medianLatencyError)); worst \(pct(s.worstError)) (\(s.worstRow)).",
                "Prompt lengths per task are assumptions (calibration/mlenergy.yaml).",
            ]
            let text = Catalog.fittedText(fitted, provenance: provenance)
            do {
                try text.write(toFile: directory + "/calibration/fitted.yaml", atomically: true, encoding: .utf8)
            } catch {
                throw CLIError(message: "\(directory)/calibration/fitted.yaml: cannot write (\(error.localizedDescription))")
            }
            print(text, terminator: "")
            return
        }
        if trainingProfile {
            let trace = try failing { try Catalog.loadTrainingProfile(directory: profile ?? shared + "/deepseek_anchors") }
            let rows = try failing { try CalibrationFit(library: library).compareProfile(trace, in: library) }
            print(FitReport.profileMarkdown(rows), terminator: "")
            return
        }
        if fitTable {
            let rows = try failing { try Catalog.loadMeasuredServing(csv: csv, dataDirectory: directory) }
            let comparisons = try failing { try library.compare(rows) }
            print(FitReport.markdown(comparisons), terminator: "")
            let s = FitSummary(comparisons)
            if !markdown { print("\n" + FitReport.summary(s)) }
            if !FitReport.meetsTargets(s) { throw ExitCode(1) }
            return
        }
        let targets = try failing { try Catalog.loadCalibrationTargets(from: directory) }
        let runner = CalibrationRunner(
            library: library, trainingPlan: { try Catalog.loadTrainingPlan(at: try Catalog.trainingPlanPath($0, dataDirectory: directory)) },
            fleetNodeHours: { try Catalog.fleetNodeHours($0, library: library, dataDirectory: directory) }
        )
        let rows = try failing { try runner.run(targets) }
        print(CalibrationReport.markdown(rows), terminator: "")
        if !markdown { print("\n" + CalibrationReport.summary(rows)) }
        if rows.contains(where: { $0.passed == false }) { throw ExitCode(1) }
    }

    private func f(_ x: Double) -> String { CalibrationReport.format(x) }
    private func pct(_ x: Double) -> String { CalibrationReport.format(x * 100) + " %" }
}
