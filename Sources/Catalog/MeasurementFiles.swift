import Calibration
import Foundation
import Hardware
import MoE
import Units

/// Readers for the measurement files `joule calibrate --fit` fits to (outside the project, in the
/// team's shared data folder): ML.ENERGY's H100 serving rows and DeepSeek's training-trace aggregates.
extension Catalog {
    /// Reads ML.ENERGY's fit file (`mlenergy_h100_fit.csv`) with the mapping in `calibration/mlenergy.yaml`.
    /// Errors name the file, the line and the column.
    public static func loadMeasuredServing(csv path: String, dataDirectory: String) throws -> [MeasuredServingRow] {
        let mapping = try reader(in: dataDirectory, "calibration/mlenergy.yaml")
        var prompts: [String: Double] = [:]
        let p = try mapping.child("prompts")
        for task in p.keys { prompts[task] = try p.double(task) }
        var models: [String: (id: String, weights: Precision?)] = [:]
        let m = try mapping.child("models")
        for name in m.keys {
            let entry = try m.child(name)
            models[name] = (try entry.string("id"), entry.has("weights") ? try entry.choice("weights", as: Precision.self) : nil)
        }
        let file = (path as NSString).lastPathComponent
        let text = try readText(at: path)
        // Lines end in LF or CRLF (the shared file uses CRLF, which Swift reads as one Character).
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map(String.init)
        guard let header = lines.first?.split(separator: ",").map(String.init) else {
            throw CatalogError.invalidField(file: file, field: "(header)", line: 1, message: "expected a CSV header")
        }
        func column(_ name: String) throws -> Int {
            guard let i = header.firstIndex(of: name) else {
                throw CatalogError.invalidField(file: file, field: name, line: 1, message: "missing column; expected it in the header")
            }
            return i
        }
        let cModel = try column("model"), cTask = try column("task"), cGPUs = try column("num_gpus"), cTP = try column("tp")
        let cEP = try column("ep"), cDP = try column("dp"), cBatch = try column("avg_batch_size"), cOut = try column("avg_output_len")
        let cPower = try column("avg_power_watts"), cEnergy = try column("energy_per_token_joules"), cITL = try column("median_itl_ms")
        var rows: [MeasuredServingRow] = []
        for (index, line) in lines.enumerated().dropFirst() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            let n = index + 1
            let f = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard f.count >= header.count - 1 else {
                throw CatalogError.invalidField(file: file, field: "(row)", line: n, message: "expected \(header.count) fields, got \(f.count)")
            }
            func number(_ c: Int) throws -> Double {
                guard let v = Double(f[c]), v.isFinite, v > 0 else {
                    throw CatalogError.invalidField(file: file, field: header[c], line: n, message: "expected a positive number, got '\(f[c])'")
                }
                return v
            }
            func whole(_ c: Int) throws -> Int {
                guard let v = Int(f[c]), v >= 1, v <= 1_000_000 else {
                    throw CatalogError.invalidField(file: file, field: header[c], line: n, message: "expected a whole number from 1 to 1000000, got '\(f[c])'")
                }
                return v
            }
            guard let model = models[f[cModel]] else {
                throw CatalogError.invalidField(file: file, field: "model", line: n, message: "no mapping for '\(f[cModel])' in calibration/mlenergy.yaml")
            }
            guard let prompt = prompts[f[cTask]] else {
                throw CatalogError.invalidField(file: file, field: "task", line: n, message: "no prompt length for task '\(f[cTask])' in calibration/mlenergy.yaml")
            }
            let gpus = try whole(cGPUs), tp = try whole(cTP), ep = try whole(cEP), dp = try whole(cDP)
            // "tp 1, ep 2, dp 1 on 2 GPUs": vLLM's expert parallelism with attention tensor-parallel over all GPUs.
            let attentionTP = tp * dp < gpus ? gpus : tp
            let request = ServingBenchmark(
                model: model.id, hardware: "h100", gpus: gpus, tp: attentionTP, ep: ep > 1 ? gpus : 1, dp: gpus / attentionTP,
                batch: try number(cBatch), inputTokens: prompt, outputTokens: try number(cOut), weights: model.weights
            )
            rows.append(MeasuredServingRow(
                origin: "\(file):\(n)", measuredModel: f[cModel], task: f[cTask], request: request,
                gpuPowerWatts: try number(cPower) / Double(gpus), gpuJoulesPerOutputToken: try number(cEnergy),
                interTokenLatencySeconds: try number(cITL) / 1e3
            ))
        }
        guard !rows.isEmpty else { throw CatalogError.invalidField(file: file, field: "(rows)", line: nil, message: "expected at least one measured row") }
        return rows
    }

    /// Reads DeepSeek's training-trace aggregates (`profile_train_ep64_phase_breakdown.csv` and
    /// `profile_train_ep64_summary.json` in `directory`).
    public static func loadTrainingProfile(directory: String) throws -> TrainingProfile {
        let csvName = "profile_train_ep64_phase_breakdown.csv", jsonName = "profile_train_ep64_summary.json"
        let text = try readText(at: directory + "/" + csvName)
        var perLayer: [String: Double] = [:]
        for (i, line) in text.split(whereSeparator: \.isNewline).enumerated().dropFirst() {
            let f = line.split(separator: ",").map(String.init)
            guard f.count >= 6, let us = Double(f[5]), us > 0 else {
                throw CatalogError.invalidField(file: csvName, field: "mean_per_layer_us", line: i + 1, message: "expected a positive number of µs")
            }
            // Compute streams (main and auxiliary) add up; the communication stream is its own phase.
            perLayer[f[0], default: 0] += us
        }
        for phase in TrainingProfile.phaseOrder where perLayer[phase] == nil {
            throw CatalogError.invalidField(file: csvName, field: "phase", line: nil, message: "expected a row for \(phase)")
        }
        let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + jsonName))
        guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw CatalogError.invalidField(file: jsonName, field: "(top level)", line: nil, message: "expected a JSON object")
        }
        func kernels(_ key: String) throws -> Double {
            guard let xs = json[key] as? [Double], !xs.isEmpty, xs.allSatisfy({ $0 > 0 }) else {
                throw CatalogError.invalidField(file: jsonName, field: key, line: nil, message: "expected a list of positive µs")
            }
            return xs.reduce(0, +) / Double(xs.count)
        }
        guard let summary = json["summary_us"] as? [String: Any], let span = summary["kernel_span_us"] as? Double, span > 0 else {
            throw CatalogError.invalidField(file: jsonName, field: "summary_us.kernel_span_us", line: nil, message: "expected a positive number of µs")
        }
        // The trace's name records its shape: EP64, 4,096 tokens per sequence, a chunk pair of 4
        // MoE layers (the CSV's occurrences); training reserves 20 SMs for communication.
        return TrainingProfile(
            tokens: 4096, expertParallel: 64, communicationSMs: 20, phases: perLayer.mapValues { .microseconds($0) }, chunkLayers: 4,
            chunkSpan: .microseconds(span), flashAttentionForward: .microseconds(try kernels("flash_attn_fwd_us")),
            flashAttentionBackward: .microseconds(try kernels("flash_attn_bwd_us"))
        )
    }
}

extension Catalog {
    /// The text of `calibration/fitted.yaml` for `fitted`, with the fit's provenance and errors as comments.
    /// `servingSource` names what the power and engine terms were fitted to (ML.ENERGY's rows by default).
    public static func fittedText(
        _ fitted: FittedParameters, provenance: [String], servingSource: String = "ML.ENERGY's H100 rows", engineSource: String = "ML.ENERGY's H100 rows (vLLM 0.11.1)",
        command: String = "joule calibrate --fit"
    ) -> String {
        func n(_ x: Double, _ digits: Int = 4) -> String {
            let s = String(format: "%.\(digits)g", x)
            return s.contains("e") ? String(format: "%.\(digits)f", x) : s
        }
        var lines = [
            "# Fitted coefficients: written by `\(command)`; do not edit by hand, re-run the fit.",
            "# Provenance:",
        ] + provenance.map { "#   " + $0 }
        lines.append("families:")
        for id in fitted.families.keys.sorted() {
            let f = fitted.families[id]!
            lines += [
                "  \(id):",
                "    power:                   # fitted on \(servingSource) (GPU power, GPU J/token, inter-token latency)",
                "      busyWatts: \(n(f.busyWatts))",
                "      computeWatts: \(n(f.computeWatts))",
                "      memoryWatts: \(n(f.memoryWatts))",
                "      communicationWatts: \(n(f.communicationWatts))",
                "    kernels:                 # fitted on DeepSeek's H800 training trace (forward attention and MoE blocks)",
                "      elementwiseBandwidthFraction: \(n(f.elementwiseBandwidthFraction))",
                "      prefillAttentionFraction: \(n(f.prefillAttentionFraction))",
                "      attentionBackwardFraction: \(n(f.attentionBackwardFraction))",
            ]
        }
        lines += [
            "engine:                      # fitted on \(engineSource)",
            "  stepOverheadMicroseconds: \(n(fitted.engine.stepOverhead.microseconds))",
            "  allReduceLatencyMicroseconds: \(n(fitted.engine.allReduceLatency.microseconds))",
            "  samplerBytesPerLogit: \(n(fitted.engine.samplerBytesPerLogit))",
            "  perSequenceOverheadMicroseconds: \(n(fitted.engine.perSequenceOverhead.microseconds))",
        ]
        return lines.joined(separator: "\n") + "\n"
    }
}
