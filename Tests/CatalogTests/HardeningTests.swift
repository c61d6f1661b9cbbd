import Accounting
import Catalog
import Foundation
import MoE
import Serving
import Testing

/// Absurd values where they enter: each is an error naming the file, line and field with the
/// range, never a trap or a hang (issue "Hardening"). Each case once trapped or hung.
@Suite struct HardeningTests {
    static let mixtral = try! String(contentsOfFile: repositoryData + "/scenarios/mixtral-single-node.yaml", encoding: .utf8)

    func scratch(_ text: String, _ ext: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("joule-hardening-\(UUID().uuidString).\(ext)").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("A scenario value outside its range is an error naming the field, its line and the range", arguments: [
        // A log-normal mean of 1e300 trapped converting to a token count.
        ("mean: 1155", "mean: 1e300", "workload.generator.prompt.mean", ":19:", "1 to 10000000 tokens"),
        // A rate of 1e-300 looped about 1e295 times before the first arrival.
        ("ratePerSecond: 8", "ratePerSecond: 1e-300", "workload.generator.ratePerSecond", ":17:", "1e-6 to 1e6"),
        // Int.max units tried to build that many units.
        ("units: 1,", "units: 9223372036854775807,", "deployment.unit.units", ":14:", "from 1 to 100000"),
        ("maxBatchPerRank: 256", "maxBatchPerRank: 0", "deployment.unit.maxBatchPerRank", ":14:", "from 1 to 1000000"),
        ("max: 2048", "max: 9223372036854775807", "workload.generator.output.min", ":20:", "≤ 10000000"),
        ("cv: 2", "cv: 1e308", "workload.generator.arrivals.cv", ":18:", "at most 100"),
        // February 30 became March 2.
        ("start: 2025-06-02T14:00:00Z", "start: 2025-02-30T14:00:00Z", "start", ":9:", "ISO 8601"),
        // A reserve of -1e308 made the KV-cache size infinite and its token count trapped (found by the property test).
        ("tokenBudgetPerRank: 8192}", "tokenBudgetPerRank: 8192, memoryReserveFraction: -1e308}", "deployment.unit.memoryReserveFraction", ":14:", "up to (not including) 1"),
        // An interval of 1e-300 s closed empty intervals for ever; an intensity of 1e308 g/kWh is no grid's.
        ("embodied: llmcarbon-h800", "embodied: llmcarbon-h800\naccounting: {intervalSeconds: 1e-300}", "accounting.intervalSeconds", ":28:", "0.001 to 86400 seconds"),
        ("gramsPerKWh: 369.5", "gramsPerKWh: 1e308", "carbon.gramsPerKWh", ":24:", "0 to 10000"),
        ("duration: 600", "duration: 1e300", "duration", ":10:", "(366 days)"),
        // A zero or negative duration was reported as "missing".
        ("duration: 600", "duration: 0", "duration", ":10:", "(366 days)"),
        ("duration: 600", "duration: -5", "duration", ":10:", "(366 days)"),
        // tp: 0 divided by zero; ep: Int.max tried to place that many ranks.
        ("tp: 8,", "tp: 0,", "deployment.unit.tp", ":14:", "from 1 to 100000"),
        ("ep: 1,", "ep: 9223372036854775807,", "deployment.unit.ep", ":14:", "from 1 to 100000"),
    ])
    func scenarioValues(find: String, replace: String, field: String, line: String, range: String) throws {
        let path = try scratch(Self.mixtral.replacingOccurrences(of: find, with: replace), "yaml")
        #expect(Self.mixtral.contains(find))
        #expect {
            _ = try ScenarioTests.load(path)
        } throws: { error in
            let m = "\(error)"
            return m.contains(field) && m.contains(line) && m.contains(range)
        }
    }

    @Test("A --duration outside 1 ms to 366 days is an error naming the flag, not a run", arguments: [0, -5, 1e300, Double.nan])
    func durationFlag(seconds: Double) throws {
        let loaded = try ScenarioTests.load(try Catalog.scenarioPath("mixtral-single-node", dataDirectory: repositoryData))
        #expect {
            _ = try Catalog.prepare(loaded, overrides: RunOverrides(duration: seconds))
        } throws: { "\($0)".contains("--duration") && "\($0)".contains("366 days") }
    }

    @Test("A step request outside its ranges is an error naming the flag, checked before any arithmetic", arguments: [
        // Int.max expert-parallel ranks, or redundant experts, overflowed placing them.
        (StepRequest(model: "deepseek-v3", hardware: "h800", phase: .decode, ep: Int.max, batchPerGPU: 8, context: 4096), "--ep: expected a whole number from 1 to 100000"),
        (StepRequest(model: "deepseek-v3", hardware: "h800", phase: .decode, ep: 144, batchPerGPU: 8, context: 4096, redundantExperts: Int.max), "--redundant-experts: expected a whole number from 0 to 100000"),
        (StepRequest(model: "deepseek-v3", hardware: "h800", phase: .decode, ep: 144, tp: 0, batchPerGPU: 8, context: 4096), "--tp: expected a whole number from 1"),
        // Silently accepted before: a negative or NaN cached share in decode, and batches and contexts past any GPU.
        (StepRequest(model: "deepseek-v3", hardware: "h800", phase: .decode, ep: 144, batchPerGPU: 8, cachedFraction: .nan, context: 4096), "--cached-fraction"),
        (StepRequest(model: "deepseek-v3", hardware: "h800", phase: .decode, ep: 144, batchPerGPU: 1e300, context: 4096), "--batch-per-gpu: expected a positive number of sequences up to 1000000"),
        (StepRequest(model: "deepseek-v3", hardware: "h800", phase: .prefill, ep: 32, tokensPerGPU: 1e300, context: 4096), "--tokens-per-gpu: expected a positive number of tokens up to 1000000000"),
        (StepRequest(model: "deepseek-v3", hardware: "h800", phase: .decode, ep: 144, batchPerGPU: 8, context: 1e300), "--context: expected 1 to 10000000 tokens"),
    ])
    func stepRequestRanges(request: StepRequest, message: String) {
        #expect { _ = try ScenarioTests.library.resolve(request) } throws: { "\($0)".contains(message) }
    }

    @Test("A leap day is a date, and February 29 of a common year is not")
    func leapDays() {
        #expect(WallClock.iso8601("2024-02-29T12:00:00Z") == 1_709_208_000)
        #expect(WallClock.iso8601("2025-02-29T12:00:00Z") == nil)
        #expect(WallClock.iso8601("2100-02-29T00:00:00Z") == nil)
        #expect(WallClock.iso8601("2000-02-29T00:00:00Z") != nil)
        #expect(WallClock.iso8601("2025-04-31T00:00:00Z") == nil)
        #expect(WallClock.epochSeconds("2023-11-31 00:00:00") == nil)
    }

    @Test("A trace value outside its range is an error naming the line and field", arguments: [
        // Token counts ≥ 2^63 trapped (JSONL) or overflowed later (CSV).
        ("arrivalSeconds,promptTokens,outputTokens\n0,9223372036854775807,5\n", TraceFormat.jouleCSV, ":2:", "promptTokens", "1 to 10000000"),
        ("{\"arrivalSeconds\": 0, \"promptTokens\": 1e19, \"outputTokens\": 3}\n", .jouleJSONL, ":1:", "promptTokens", "1 to 10000000"),
        ("{\"timestamp\": 0, \"input_length\": 5, \"output_length\": 3, \"hash_ids\": [1e19]}\n", .mooncake, ":1:", "hash_ids", "whole-number"),
        // An arrival 1e300 s in kept the simulator closing empty intervals for ages.
        ("arrivalSeconds,promptTokens,outputTokens\n0,10,5\n1e300,10,5\n", .jouleCSV, ":3:", "arrivalSeconds", "at most 366 days"),
        // An empty trace ran and exited 0.
        ("arrivalSeconds,promptTokens,outputTokens\n", .jouleCSV, ":", "(file)", "no requests"),
        ("", .jouleJSONL, ":", "(file)", "no requests"),
    ])
    func traceValues(text: String, format: TraceFormat, line: String, field: String, range: String) throws {
        #expect {
            _ = try TraceParser.parse(text, file: "t", format: format)
        } throws: { error in
            let m = "\(error)"
            return m.contains("t\(line)") && m.contains(field) && m.contains(range)
        }
    }
}
