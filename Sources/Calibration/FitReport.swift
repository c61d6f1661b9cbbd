import MoE
import Units

/// Renders measured rows against Joule: the fit tables of `docs/calibration.md`.
public enum FitReport {
    /// The targets the fit is held to: median |error| ≤ 10 % for GPU power and ≤ 15 % for GPU
    /// J/token and inter-token latency; no error beyond 35 %.
    public static func meetsTargets(_ s: FitSummary) -> Bool {
        s.medianPowerError <= 0.10 && s.medianEnergyError <= 0.15 && s.medianLatencyError <= 0.15 && s.worstError <= 0.35
    }

    private static func pct(_ x: Double) -> String {
        let v = (x * 1000).rounded() / 10
        return (v > 0 ? "+" : "") + String(v) + " %"
    }

    /// One row per measured configuration.
    public static func markdown(_ comparisons: [ServingComparison]) -> String {
        let f = CalibrationReport.format
        var lines = [
            "| model | task | GPUs | TP/EP | batch | power W (meas. → Joule) | err | J/token | err | ITL ms | err |",
            "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for c in comparisons {
            let r = c.row, q = r.request
            lines.append(
                "| \(r.measuredModel) | \(r.task) | \(q.gpus) | \(q.tp)/\(q.ep) | \(f(q.batch)) | \(f(r.gpuPowerWatts)) → \(f(c.estimate.gpuPowerWatts)) | \(pct(c.powerError)) "
                    + "| \(f(r.gpuJoulesPerOutputToken)) → \(f(c.estimate.gpuJoulesPerOutputToken)) | \(pct(c.energyError)) "
                    + "| \(f(r.interTokenLatencySeconds * 1e3)) → \(f(c.estimate.interTokenLatencySeconds * 1e3)) | \(pct(c.latencyError)) |"
            )
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The one-line summary.
    public static func summary(_ s: FitSummary) -> String {
        let f = CalibrationReport.format
        return "\(s.rows) rows: median |error| GPU power \(f(s.medianPowerError * 100)) %, GPU J/token \(f(s.medianEnergyError * 100)) %, "
            + "inter-token latency \(f(s.medianLatencyError * 100)) %; worst \(f(s.worstError * 100)) % (\(s.worstRow)); "
            + (meetsTargets(s) ? "within the targets" : "OUTSIDE the targets (median ≤ 10/15/15 %, every row ≤ 35 %)")
    }

    /// DeepSeek's training trace against Joule's training kernels, phase by phase.
    public static func profileMarkdown(_ rows: [ProfileComparison]) -> String {
        let f = CalibrationReport.format
        var lines = ["| phase (per MoE layer) | trace µs | Joule µs | error | kind |", "|---|---:|---:|---:|---|"]
        for r in rows {
            lines.append("| \(r.phase) | \(f(r.measured.microseconds)) | \(f(r.modelled.microseconds)) | \(pct(r.error)) | \(r.fitted ? "fit" : "check") |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Every stage of a training estimate, and the total.
    public static func trainingMarkdown(_ e: TrainingRunEstimate) -> String {
        let f = CalibrationReport.format
        var lines = [
            "| stage | tokens | sequence | layout | step s | micro-batches | bubble | TDP stretch | MFU | GB per GPU | GPU-hours |",
            "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for s in e.stages {
            lines.append(
                "| \(s.name) | \(f(s.tokens / 1e9))B | \(Int(s.sequenceLength)) | CP\(s.layout.contextParallel), recompute \(s.layout.recompute.rawValue) "
                    + "| \(f(s.step.stepTime.seconds)) | \(s.step.microBatches) | \(pct(s.step.bubbleTime / s.step.stepTime)) | ×\(f(s.step.throttle)) "
                    + "| \(f(s.mfu * 100)) % | \(f(s.step.memoryBytes / 1e9)) | \(f(s.gpuHours)) |"
            )
        }
        lines.append("| **total** | | | | | | | | | | **\(f(e.gpuHours))** |")
        return lines.joined(separator: "\n") + "\n"
    }
}
