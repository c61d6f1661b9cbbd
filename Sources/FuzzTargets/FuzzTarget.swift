import Accounting
import CarbonData
import Catalog
import Foundation
import Measured
import MoE
import Serving

/// One parser Joule exposes to files a user hands it, as a target for the fuzzer (`Scripts/fuzz`)
/// and for the property test over random and mutated bytes.
///
/// Every target states the same law: bytes in, either a value that meets the parser's own
/// postconditions or a thrown error whose message names the file. Never a trap, never a hang.
public enum FuzzTarget: String, CaseIterable, Sendable {
    case scenarioYAML = "scenario-yaml"
    case daemonYAML = "daemon-yaml"
    case traceAzure = "trace-azure"
    case traceMooncake = "trace-mooncake"
    case traceJouleCSV = "trace-joule-csv"
    case traceJouleJSONL = "trace-joule-jsonl"
    case carbonJoule = "carbon-joule"
    case carbonUKCI = "carbon-ukci"
    case carbonLetsWaitAwhile = "carbon-lets-wait-awhile"
    case carbonElectricityMaps = "carbon-electricitymaps"
    case carbonElectricityMapsCSV = "carbon-electricitymaps-csv"
    case carbonWattTime = "carbon-watttime"
    case powerNvidiaSMI = "power-nvidia-smi"
    case powerDCGM = "power-dcgm"
    case powerZeus = "power-zeus"
    case powerHost = "power-host"
    case requestsCSV = "requests-csv"
    case requestsOTLP = "requests-otlp"
    case requestsOTLPProtobuf = "requests-otlp-protobuf"

    /// Repository files (relative to its root) this target's corpus starts from.
    public var seedFiles: [String] {
        switch self {
        case .scenarioYAML:
            return [
                // The small deployments (DeepSeek's take ~1 s each to resolve in a debug build), and
                // a Mixtral with the sections those lack: schedule, daily profile, pruning, accounting.
                "Data/scenarios/mixtral-single-node.yaml", "Data/scenarios/llama-3.1-70b-dense-hour.yaml",
                "Tests/Fuzz/scenario-yaml/seeds/mixtral-pruned-scheduled.yaml",
            ]
        case .daemonYAML: return ["Data/daemon/example.yaml"]
        case .traceAzure: return ["Tests/Fixtures/traces/azure-small.csv", "Tests/Fixtures/traces/azure-bad.csv"]
        case .traceMooncake: return ["Tests/Fixtures/traces/mooncake-small.jsonl"]
        case .traceJouleCSV: return ["Tests/Fixtures/traces/joule-small.csv"]
        case .traceJouleJSONL: return ["Tests/Fixtures/traces/joule-small.jsonl"]
        case .carbonJoule: return ["Tests/Fixtures/carbon/joule-small.csv"]
        case .carbonLetsWaitAwhile: return ["Tests/Fixtures/carbon/lwa-small.csv"]
        case .carbonUKCI: return ["Tests/Fixtures/carbon/ukci-small.json"]
        case .carbonElectricityMaps:
            return [
                "Tests/Fixtures/carbon/electricitymaps-history.json", "Tests/Fixtures/carbon/electricitymaps-forecast.json",
                "Tests/Fixtures/carbon/electricitymaps-latest.json",
            ]
        case .carbonElectricityMapsCSV: return ["Tests/Fixtures/carbon/electricitymaps-gb.csv"]
        case .carbonWattTime:
            return [
                "Tests/Fixtures/carbon/watttime-forecast.json", "Tests/Fixtures/carbon/watttime-historical.json",
                "Tests/Fixtures/carbon/watttime-forecast-historical.json",
            ]
        case .powerNvidiaSMI: return ["Tests/Fixtures/measured/nvidia-smi-small.csv", "Tests/Fixtures/measured/nvidia-smi-nounits.csv"]
        case .powerDCGM: return ["Tests/Fixtures/measured/dcgm-small.prom", "Tests/Fixtures/measured/dcgm-timestamps.prom"]
        case .powerZeus: return ["Tests/Fixtures/measured/zeus-small.json"]
        case .powerHost: return ["Tests/Fixtures/measured/host-small.csv"]
        case .requestsCSV: return ["Tests/Fixtures/measured/requests-small.csv"]
        case .requestsOTLP: return ["Tests/Fixtures/measured/spans-small.json"]
        case .requestsOTLPProtobuf: return ["Tests/Fixtures/measured/spans-small.pb"]
        }
    }

    /// What came of one input.
    public enum Outcome: Equatable, Sendable {
        /// The parser returned a value that meets its postconditions.
        case accepted
        /// The parser threw an error whose message names the file.
        case rejected(String)
        /// A broken law: a value outside its documented range, or an error that does not say where.
        case violated(String)
    }

    /// Feeds `data` to the parser, as the contents of a file called `context.fileName(self)`.
    public func run(_ data: Data, in context: FuzzContext) -> Outcome {
        let file = context.fileName(self)
        do {
            if let broken = try parse(data, file: file, context: context) { return .violated(broken) }
            return .accepted
        } catch {
            let message = "\(error)"
            // Every error names the file it came from, or the file it refers to (a scenario's
            // trace, resolved in the same folder); the command line adds nothing else.
            guard message.contains(file) || message.contains(context.folder) else { return .violated("an error that does not name the file: \(message)") }
            return .rejected(message)
        }
    }

    /// Parses; returns a description of a broken postcondition, or nil.
    private func parse(_ data: Data, file: String, context: FuzzContext) throws -> String? {
        switch self {
        case .scenarioYAML:
            let text = try utf8(data, file: file)
            let loaded = try Catalog.loadScenario(text: text, file: file, library: context.library, dataDirectory: context.dataDirectory)
            if let p = loaded.scenario.validate().first { return "a loaded scenario fails its own validation: \(p.field): \(p.message)" }
            let prepared = try Catalog.prepare(loaded, overrides: RunOverrides())
            if let spec = prepared.generator {
                // The first arrivals come quickly and hold documented values (a rate of 1e-300 once
                // looped ~1e295 times before the first one).
                var stream = GeneratedStream(spec, startEpochSeconds: prepared.scenario.startEpochSeconds, seed: prepared.scenario.seed)
                var last = 0.0
                for _ in 0..<32 {
                    guard let r = stream.next() else { return "a generated stream ended" }
                    if let broken = Self.check(r, after: last) { return broken }
                    last = r.arrival
                }
            }
            for r in prepared.traceRequests ?? [] { if let broken = Self.check(r, after: 0) { return broken } }
            return nil
        case .daemonYAML:
            let c = try DaemonConfiguration.parse(try utf8(data, file: file), file: file)
            typealias L = DaemonConfiguration.Limits
            if !L.progressSeconds.contains(c.progressSeconds) { return "progressSeconds \(c.progressSeconds)" }
            if !L.refreshSeconds.contains(c.carbonRefreshSeconds) { return "refreshSeconds \(c.carbonRefreshSeconds)" }
            if let mb = c.maximumDatabaseMB, !(1...1e9).contains(mb) { return "maxDatabaseMB \(mb)" }
            for job in c.jobs {
                if let d = job.duration, !L.jobDuration.contains(d) { return "job duration \(d)" }
                if let i = job.intervalSeconds, !L.intervalSeconds.contains(i) { return "job intervalSeconds \(i)" }
                if case .accelerated(let f) = job.pacing, !L.acceleration.contains(f) { return "acceleration \(f)" }
            }
            return nil
        case .traceAzure, .traceMooncake, .traceJouleCSV, .traceJouleJSONL:
            let text = try utf8(data, file: file)
            // Strict, and again skipping bad lines as `--skip-bad-lines` does.
            let strict = try? TraceParser.parse(text, file: file, format: traceFormat!)
            let lenient = try TraceParser.parse(text, file: file, format: traceFormat!, skipBadLines: true)
            if let strict, strict.rows != lenient.rows { return "strict and lenient parses of a clean trace differ" }
            let arrivals = lenient.rows.map(\.arrival)
            if let first = arrivals.min(), let last = arrivals.max(), !(first.isFinite && last.isFinite && last - first <= TraceLimits.spanSeconds) {
                return "arrivals from \(first) to \(last): not finite, or beyond the trace span limit"
            }
            for row in lenient.rows {
                for t in [row.promptTokens, row.outputTokens, row.cachedTokens ?? 0] where !(0...TraceLimits.tokens).contains(t) {
                    return "token count \(t) outside 0...\(TraceLimits.tokens)"
                }
            }
            for r in lenient.requests(ReplayOptions()) { if let broken = Self.check(r, after: 0) { return broken } }
            return nil
        case .carbonJoule, .carbonUKCI, .carbonLetsWaitAwhile, .carbonElectricityMaps, .carbonElectricityMapsCSV, .carbonWattTime:
            let imported = try carbonFormat!.read(data, file: file, options: carbonOptions)
            if imported.series.isEmpty { return "an import with no series" }
            for s in imported.series {
                var previousEnd = -Double.infinity
                for p in s.points {
                    typealias L = PointChecker.Limits
                    guard L.intensity.contains(p.value), L.duration.contains(p.duration), L.start.contains(p.start) else {
                        return "a stored point outside the import limits: \(p)"
                    }
                    guard p.start >= previousEnd else { return "points overlap or are out of order at \(p.start)" }
                    previousEnd = p.end
                }
            }
            return nil
        case .powerNvidiaSMI, .powerDCGM, .powerZeus, .powerHost:
            let t: PowerTelemetry
            switch self {
            case .powerNvidiaSMI: t = try NvidiaSMIReader.read(try utf8(data, file: file), file: file, skipBadLines: true)
            case .powerDCGM: t = try DCGMReader.read(try utf8(data, file: file), file: file, skipBadLines: true)
            case .powerHost: t = try HostPowerReader.read(try utf8(data, file: file), file: file, skipBadLines: true).telemetry
            default: t = try ZeusReader.read(data, file: file)
            }
            for track in t.tracks {
                guard track.times.count >= 2, track.times.allSatisfy(\.isFinite), zip(track.times, track.times.dropFirst()).allSatisfy({ $0 < $1 }) else {
                    return "GPU \(track.gpu): times not finite and strictly increasing"
                }
                guard track.joules.first == 0, track.joules.allSatisfy(\.isFinite), zip(track.joules, track.joules.dropFirst()).allSatisfy({ $0 <= $1 }) else {
                    return "GPU \(track.gpu): cumulative energy not finite, from 0 and non-decreasing"
                }
            }
            return nil
        case .requestsCSV, .requestsOTLP, .requestsOTLPProtobuf:
            let log = self == .requestsCSV
                ? try RequestCSVReader.read(try utf8(data, file: file), file: file, skipBadLines: true)
                : self == .requestsOTLP ? try OTLPReader.read(data, file: file) : try OTLPReader.readProtobuf(data, file: file)
            for r in log.requests {
                let times = [r.arrival, r.scheduled, r.firstToken, r.finish].compactMap { $0 }
                guard times.allSatisfy(\.isFinite), zip(times, times.dropFirst()).allSatisfy({ $0 <= $1 }) else { return "request \(r.id): times not finite or out of order" }
                for n in [r.promptTokens, r.cachedTokens, r.outputTokens].compactMap({ $0 }) where !(0...10_000_000).contains(n) { return "request \(r.id): \(n) tokens" }
            }
            if Set(log.requests.map(\.id)).count != log.requests.count { return "two requests with one id" }
            return nil
        }
    }

    /// A request holds documented values: arrivals in order and finite, tokens in range.
    private static func check(_ r: ServingRequest, after last: Double) -> String? {
        guard r.arrival.isFinite, r.arrival >= last else { return "arrival \(r.arrival) after \(last)" }
        guard (1...TraceLimits.tokens).contains(r.promptTokens), (1...TraceLimits.tokens).contains(r.outputTokens) else {
            return "token counts \(r.promptTokens)/\(r.outputTokens) outside 1...\(TraceLimits.tokens)"
        }
        guard (0..<r.promptTokens).contains(r.cachedTokens) else { return "cached \(r.cachedTokens) of \(r.promptTokens) prompt tokens" }
        return nil
    }

    private var traceFormat: TraceFormat? {
        switch self {
        case .traceAzure: return .azure
        case .traceMooncake: return .mooncake
        case .traceJouleCSV: return .jouleCSV
        case .traceJouleJSONL: return .jouleJSONL
        default: return nil
        }
    }

    private var carbonFormat: CarbonFormat? {
        switch self {
        case .carbonJoule: return .joule
        case .carbonUKCI: return .ukci
        case .carbonLetsWaitAwhile: return .letsWaitAwhile
        case .carbonElectricityMaps: return .electricityMaps
        case .carbonElectricityMapsCSV: return .electricityMapsCSV
        case .carbonWattTime: return .wattTime
        default: return nil
        }
    }

    /// What `joule carbon import` would be told for such a file: a region where the format has none.
    private var carbonOptions: CarbonImportOptions {
        switch self {
        case .carbonJoule, .carbonLetsWaitAwhile: return CarbonImportOptions(region: "DE")
        default: return CarbonImportOptions()
        }
    }

    private func utf8(_ data: Data, file: String) throws -> String {
        guard let text = String(data: data, encoding: .utf8) else { throw CatalogError.syntax(file: file, message: "not UTF-8 text") }
        return text
    }
}

/// What the parsers need besides the bytes: the spec library scenarios resolve against, and a
/// folder to name the input's file in (a scenario's relative paths resolve there).
public struct FuzzContext: Sendable {
    public let library: SpecLibrary
    public let dataDirectory: String
    public let folder: String

    public init(dataDirectory: String, folder: String) throws {
        self.library = try Catalog.load(from: dataDirectory)
        self.dataDirectory = dataDirectory
        self.folder = folder
    }

    public func fileName(_ target: FuzzTarget) -> String {
        let ext: String
        switch target {
        case .scenarioYAML, .daemonYAML: ext = "yaml"
        case .traceMooncake, .traceJouleJSONL: ext = "jsonl"
        case .carbonUKCI, .carbonElectricityMaps, .carbonWattTime, .powerZeus, .requestsOTLP: ext = "json"
        case .powerDCGM: ext = "prom"
        case .requestsOTLPProtobuf: ext = "pb"
        default: ext = "csv"
        }
        return "\(folder)/fuzz-input-\(target.rawValue).\(ext)"
    }
}
