import Accounting
import ArgumentParser
import Calibration
import Catalog
import Foundation
import Ledger
import MoE
import Serving

extension Calibrate {
    func fitMeasured(run id: Int64, library: SpecLibrary, directory: String) throws {
        guard let model else { throw CLIError(message: "--from-measured: name the model the engines served with --model (see Data/models)") }
        guard (1...100_000).contains(iterations) else { throw CLIError(message: "--iterations: expected 1 to 100000, got \(iterations)") }
        guard minSeconds.isFinite, minSeconds >= 0 else { throw CLIError(message: "--min-seconds: expected a non-negative number, got \(minSeconds)") }
        _ = try failing { try library.model(model) }
        _ = try failing { try library.node(hardware) }
        let run = try failing { try ledger.open(mustExist: true).run(id) }
        guard run.mode == .measured else {
            throw CLIError(message: "--from-measured: run \(id) (\(run.name)) is simulated; fit to a measured run (`joule measure --db`)")
        }
        guard let summary = run.decodedSummary else { throw CLIError(message: "--from-measured: run \(id) has no summary (it did not finish)") }
        let rows = Catalog.measuredServingRows(run: id, summary: summary, model: model, hardware: hardware, minSeconds: minSeconds)
        guard !rows.isEmpty else {
            throw CLIError(message: "--from-measured: run \(id) has no batch size with at least \(minSeconds) engine-seconds and output tokens (lower --min-seconds)")
        }
        let start = try failing { try Catalog.loadFittedParameters(from: directory) }
        let before = try failing { try library.compare(rows) }
        FileHandle.standardError.write(Data("fitting power and engine coefficients to \(rows.count) rows of measured run \(id)…\n".utf8))
        let fitter = CalibrationFit(library: library)
        let fitted = try failing { try fitter.fitServing(rows, start: start, iterations: iterations) }
        let after = try failing { try library.applying(fitted).compare(rows) }
        let (b, a) = (FitSummary(before), FitSummary(after))
        func pct(_ x: Double) -> String { CalibrationReport.format(x * 100) + " %" }
        print("Measured run \(id) (\(run.name)) as \(model) on \(hardware), tensor parallel over each engine's GPUs: \(rows.count) rows\n")
        print("## Before (the coefficients as they are)\n")
        print(FitReport.markdown(before), terminator: "")
        print("\n" + FitReport.summary(b) + "\n")
        print("## After (the proposed coefficients)\n")
        print(FitReport.markdown(after), terminator: "")
        print("\n" + FitReport.summary(a) + "\n")
        let provenance = [
            "power and engine: measured run \(id) (\(run.name)) in \(LedgerLocation.redacted(ledger.db)), \(rows.count) batch sizes, as \(model) on \(hardware);",
            "  least squares on log GPU power, log GPU J/token and log inter-token latency, Nelder–Mead, \(iterations) iterations, from the coefficients in use;",
            "  median |error| before: power \(pct(b.medianPowerError)), J/token \(pct(b.medianEnergyError)), latency \(pct(b.medianLatencyError));",
            "  after: power \(pct(a.medianPowerError)), J/token \(pct(a.medianEnergyError)), latency \(pct(a.medianLatencyError)); worst \(pct(a.worstError)) (\(a.worstRow)).",
            "Kernel coefficients are unchanged (fitted to DeepSeek's training trace).",
        ]
        let text = Catalog.fittedText(
            fitted, provenance: provenance, servingSource: "measured run \(id)'s batch sizes", engineSource: "measured run \(id)'s batch sizes",
            command: "joule calibrate --from-measured \(id) --apply"
        )
        print("## Proposed calibration/fitted.yaml\n")
        print(text, terminator: "")
        guard apply else {
            print("\nNothing was changed: pass --apply to write this to \(directory)/calibration/fitted.yaml.")
            return
        }
        do {
            try text.write(toFile: directory + "/calibration/fitted.yaml", atomically: true, encoding: .utf8)
        } catch {
            throw CLIError(message: "\(directory)/calibration/fitted.yaml: cannot write (\(error.localizedDescription))")
        }
        print("\nWrote \(directory)/calibration/fitted.yaml.")
    }
}
