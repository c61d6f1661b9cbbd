import Calibration
import Catalog
import Foundation
import MoE
import Testing

/// The measured rows live in the team's shared data folder beside the project (never copied in).
let sharedData = URL(fileURLWithPath: dataDirectory).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("shared/data").path

@Suite struct FitTests {
    static let csv = sharedData + "/mlenergy/mlenergy_h100_fit.csv"

    @Test func everyMeasuredRowIsReadAndCompared() throws {
        let rows = try Catalog.loadMeasuredServing(csv: Self.csv, dataDirectory: dataDirectory)
        #expect(rows.count == 135)
        let library = try Catalog.load(from: dataDirectory)
        let comparisons = try library.compare(rows)
        #expect(comparisons.allSatisfy { $0.estimate.gpuPowerWatts > 0 && $0.estimate.interTokenLatencySeconds > 0 })
        // The documented fit table is exactly what the model computes now.
        let doc = try String(contentsOfFile: dataDirectory + "/../docs/calibration.md", encoding: .utf8)
        #expect(doc.contains(FitReport.markdown(comparisons)), "docs/calibration.md is stale: run Scripts/generate-calibration-doc")
    }

    @Test func llamaSeventyPowerRisesWithBatchAsMeasured() throws {
        let library = try Catalog.load(from: dataDirectory)
        let powers = try [8.0, 64, 256, 1024].map {
            try library.estimate(ServingBenchmark(model: "llama-3.1-70b", hardware: "h100", gpus: 4, tp: 4, batch: $0, inputTokens: 200, outputTokens: 350)).gpuPowerWatts
        }
        // Rising, and never above the 700 W limit (Joule reaches it by batch 256; the measurements at 637 W by 1,024).
        #expect(powers[0] < powers[1] && powers[1] < powers[2], "\(powers)")
        #expect(zip(powers, powers.dropFirst()).allSatisfy { $0 <= $1 } && powers.allSatisfy { $0 <= 700 }, "\(powers)")
    }

    @Test func theFitNeverMakesTheLossWorse() throws {
        // A few simplex steps from the shipped coefficients cannot end above where they started.
        let library = try Catalog.load(from: dataDirectory)
        let rows = Array(try Catalog.loadMeasuredServing(csv: Self.csv, dataDirectory: dataDirectory).prefix(20))
        let start = try Catalog.loadFittedParameters(from: dataDirectory)
        let before = CalibrationFit.loss(try library.applying(start).compare(rows))
        let fitted = try CalibrationFit(library: library).fitServing(rows, start: start, iterations: 15)
        let after = CalibrationFit.loss(try library.applying(fitted).compare(rows))
        #expect(after <= before + 1e-12)
    }

    @Test func nelderMeadFindsAQuadraticsMinimum() {
        let best = NelderMead.minimize({ x in pow(x[0] - 3, 2) + 2 * pow(x[1] + 1, 2) }, start: [0, 0], step: 0.5, iterations: 400)
        #expect(abs(best.point[0] - 3) < 1e-3 && abs(best.point[1] + 1) < 1e-3)
    }

    @Test(arguments: [
        ("model,task,num_gpus,tp,ep,dp,avg_batch_size,avg_output_len,avg_power_watts,energy_per_token_joules,median_itl_ms\nQwen/Qwen3-8B,gpqa,1,1,1,1,8,100,abc,0.1,10\n", "avg_power_watts", 2),
        ("model,task,num_gpus,tp,ep,dp,avg_batch_size,avg_output_len,avg_power_watts,energy_per_token_joules,median_itl_ms\nNobody/X,gpqa,1,1,1,1,8,100,400,0.1,10\n", "model", 2),
        ("model,task,num_gpus,tp,ep,dp,avg_batch_size,avg_output_len,energy_per_token_joules,median_itl_ms\n", "avg_power_watts", 1),
        ("model,task,num_gpus,tp,ep,dp,avg_batch_size,avg_output_len,avg_power_watts,energy_per_token_joules,median_itl_ms\r\nQwen/Qwen3-8B,gpqa,0,1,1,1,8,100,400,0.1,10\r\n", "num_gpus", 2),
    ])
    func badMeasurementFilesNameTheLineAndColumn(text: String, field: String, line: Int) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("joule-fit-\(UUID().uuidString).csv").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try Catalog.loadMeasuredServing(csv: path, dataDirectory: dataDirectory)
            Issue.record("expected an error for field \(field)")
        } catch let error as CatalogError {
            let message = "\(error)"
            #expect(message.contains(field) && message.contains("\(line)"), "\(message)")
        }
    }
}
