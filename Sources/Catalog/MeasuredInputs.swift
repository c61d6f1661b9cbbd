import Accounting
import Calibration
import CarbonData
import Crypto
import Foundation
import Measured
import MoE
import Serving

/// The telemetry formats `joule measure --power-format` names.
public enum PowerFormat: String, CaseIterable, Sendable {
    case nvidiaSMI = "nvidia-smi"
    case dcgm
    case zeus

    /// From a file name: `.json` Zeus, `.prom`/`.txt`/`.metrics` DCGM, anything else (`.csv`) nvidia-smi;
    /// a URL is a DCGM exporter's.
    public static func guess(_ path: String) -> PowerFormat {
        let lower = path.lowercased()
        if lower.hasPrefix("http://") || lower.hasPrefix("https://") { return .dcgm }
        if lower.hasSuffix(".json") { return .zeus }
        if lower.hasSuffix(".prom") || lower.hasSuffix(".txt") || lower.hasSuffix(".metrics") { return .dcgm }
        return .nvidiaSMI
    }
}

/// The request-log formats `joule measure --requests-format` names.
public enum RequestLogFormat: String, CaseIterable, Sendable {
    case csv
    case otlp

    /// `.json`/`.jsonl` OTLP, anything else the CSV log.
    public static func guess(_ path: String) -> RequestLogFormat {
        let lower = path.lowercased()
        return lower.hasSuffix(".json") || lower.hasSuffix(".jsonl") ? .otlp : .csv
    }
}

/// What `joule measure` is asked to record, as given.
public struct MeasureRequest: Sendable {
    public var power: String
    public var powerFormat: PowerFormat?
    public var requests: String
    public var requestsFormat: RequestLogFormat?
    public var hardware: String
    public var site: String
    public var grid: String
    public var embodied: String
    public var policy: String
    public var intervalSeconds: Double
    public var engineGPUs: [Int]?
    public var clockOffsetSeconds: Double
    public var skipBadLines: Bool
    public var activeSplit: ActiveSplit
    /// Server power readings (`timestamp,watts[,node]`), and which GPUs each node holds
    /// (`node-a=0-7,node-b=8-15`; default with one node: every GPU).
    public var hostPower: String?
    public var hostGPUs: String?
    /// The telemetry and the log already fetched (from URLs), in place of reading `power` and `requests`.
    public var powerData: Data?
    public var requestsData: Data?
    /// Only this stretch of the telemetry, and the requests that overlap it (a daemon window).
    public var window: ClosedRange<Double>? = nil

    public init(
        power: String, powerFormat: PowerFormat? = nil, requests: String, requestsFormat: RequestLogFormat? = nil, hardware: String = "h800",
        site: String = "default", grid: String, embodied: String = "llmcarbon-h800", policy: String = AttributionPolicies.default.id,
        intervalSeconds: Double = 60, engineGPUs: [Int]? = nil, clockOffsetSeconds: Double = 0, skipBadLines: Bool = false,
        activeSplit: ActiveSplit = .tokens, hostPower: String? = nil, hostGPUs: String? = nil, powerData: Data? = nil, requestsData: Data? = nil
    ) {
        self.powerData = powerData
        self.requestsData = requestsData
        self.activeSplit = activeSplit
        self.hostPower = hostPower
        self.hostGPUs = hostGPUs
        self.power = power
        self.powerFormat = powerFormat
        self.requests = requests
        self.requestsFormat = requestsFormat
        self.hardware = hardware
        self.site = site
        self.grid = grid
        self.embodied = embodied
        self.policy = policy
        self.intervalSeconds = intervalSeconds
        self.engineGPUs = engineGPUs
        self.clockOffsetSeconds = clockOffsetSeconds
        self.skipBadLines = skipBadLines
    }
}

/// A measured run read and attributed: its books, its setup and the text stored as its "scenario".
public struct MeasuredRun: Sendable {
    public var name: String
    public var telemetry: PowerTelemetry
    public var log: RequestLog
    public var setup: MeasuredSetup
    public var books: MeasuredBooks
    /// A YAML description of what was measured (files, their SHA-256, formats, site, grid, policy),
    /// stored with the run in place of a scenario.
    public var descriptionText: String
    public var summary: RunSummary
}

extension Catalog {
    /// Reads the telemetry and the request log, and attributes the measured energy to the requests.
    public static func measure(_ m: MeasureRequest, name: String, library: SpecLibrary, dataDirectory: String) throws -> MeasuredRun {
        guard m.intervalSeconds.isFinite, (1...3600).contains(m.intervalSeconds) else {
            throw MeasuredInputError(file: "--interval", "expected 1 to 3600 seconds, got \(m.intervalSeconds)")
        }
        guard m.clockOffsetSeconds.isFinite, abs(m.clockOffsetSeconds) <= 86_400 else {
            throw MeasuredInputError(file: "--clock-offset", "expected −86400 to 86400 seconds, got \(m.clockOffsetSeconds)")
        }
        guard let policy = AttributionPolicies.named(m.policy) else {
            throw MeasuredInputError(file: "--policy", "expected one of \(AttributionPolicies.all.map(\.id).joined(separator: ", ")), got '\(m.policy)'")
        }
        let node = try library.node(m.hardware)
        let site = try library.site(m.site)
        let embodiedModels = try loadEmbodiedModels(from: dataDirectory)
        guard let embodied = embodiedModels[m.embodied] else {
            throw MeasuredInputError(file: "--embodied", "unknown embodied model '\(m.embodied)'; available: \(embodiedModels.keys.sorted().joined(separator: ", "))")
        }
        guard let annual = try loadGridDefaults(dataDirectory: dataDirectory).annual(region: m.grid) else {
            throw MeasuredInputError(file: "--grid", "no annual average for grid '\(m.grid)' in Data/grids/annual.yaml (see `joule carbon defaults` for the regions)")
        }
        let carbon = CarbonSeries.constant(
            CarbonIntensity(gramsPerKWh: annual.gramsPerKWh), region: m.grid, signal: .average,
            source: "\(annual.source) annual" + (annual.year.map { " \($0)" } ?? ""), factor: annual.factor
        )
        let powerData = try m.powerData ?? readData(m.power, flag: "--power")
        let requestData = try m.requestsData ?? readData(m.requests, flag: "--requests")
        let powerFormat = m.powerFormat ?? PowerFormat.guess(m.power)
        var telemetry: PowerTelemetry
        switch powerFormat {
        case .nvidiaSMI: telemetry = try NvidiaSMIReader.read(String(decoding: powerData, as: UTF8.self), file: m.power, skipBadLines: m.skipBadLines)
        case .dcgm: telemetry = try DCGMReader.read(String(decoding: powerData, as: UTF8.self), file: m.power, skipBadLines: m.skipBadLines)
        case .zeus: telemetry = try ZeusReader.read(powerData, file: m.power)
        }
        telemetry = telemetry.shifted(by: m.clockOffsetSeconds)
        let requestsFormat = m.requestsFormat ?? RequestLogFormat.guess(m.requests)
        var log: RequestLog
        switch requestsFormat {
        case .csv: log = try RequestCSVReader.read(String(decoding: requestData, as: UTF8.self), file: m.requests, skipBadLines: m.skipBadLines)
        case .otlp: log = try OTLPReader.read(requestData, file: m.requests)
        }
        if let w = m.window {
            telemetry = telemetry.clipped(from: w.lowerBound, to: w.upperBound)
            guard !telemetry.tracks.isEmpty else { throw MeasuredInputError(file: m.power, "no telemetry between \(WallClock.string(w.lowerBound)) and \(WallClock.string(w.upperBound))") }
            log.requests = log.requests.filter { $0.arrival < w.upperBound && ($0.finish ?? .infinity) > w.lowerBound }
            let kept = Set(log.requests.map(\.id))
            log.issues = log.issues.filter { issue in issue.subject.map { kept.contains($0) } ?? true }
        }
        var setup = MeasuredSetup(
            hostIdleWattsPerGPU: node.hostIdle.watts / Double(node.gpusPerNode), hostPerGPUWatt: node.hostPerGPUWatt,
            gpuIdleWatts: node.gpu.power.idle.watts, pue: site.pue, carbon: carbon, embodied: embodied, policy: policy,
            intervalSeconds: m.intervalSeconds, engineGPUs: m.engineGPUs, activeSplit: m.activeSplit
        )
        setup.gpusPerNode = node.gpusPerNode
        var hostLabel = "modelled from the node's host model (no host meter read)"
        if let hostPath = m.hostPower {
            let (nodes, host) = try HostPowerReader.read(String(decoding: try readData(hostPath, flag: "--host-power"), as: UTF8.self), file: hostPath, skipBadLines: m.skipBadLines)
            let mapping = try hostMapping(m.hostGPUs, nodes: nodes, gpus: telemetry.tracks.map(\.gpu))
            for track in host.tracks {
                let members = mapping[nodes[track.gpu]] ?? []
                for g in members { setup.meteredHost[g] = (track, members.count) }
            }
            telemetry.issues += host.issues
            hostLabel = "metered: \(hostPath) (\(nodes.count) node\(nodes.count == 1 ? "" : "s"))"
        }
        var books = MeasuredAttribution.attribute(telemetry, log, setup: setup)
        // Clocks that disagree show as power that leads or lags the requests: said, never corrected silently.
        if let skew = ClockSkew.estimate(telemetry, log.requests, engines: books.engines),
           abs(skew.offsetSeconds) >= 2 * skew.resolution, skew.agreement - skew.agreementAtZero > 0.05 {
            books.issues.append(MeasuredIssue(
                .skew, "the GPUs' power lines up with the request log best with the telemetry shifted by \(String(format: "%+.1f", skew.offsetSeconds)) s "
                    + "(agreement \(String(format: "%.2f", skew.agreement)) against \(String(format: "%.2f", skew.agreementAtZero)) as given): if the clocks differ, "
                    + "pass --clock-offset \(String(format: "%.1f", m.clockOffsetSeconds + skew.offsetSeconds))"
            ))
        }
        func digest(_ d: Data) -> String { SHA256.hash(data: d).map { String(format: "%02x", $0) }.joined() }
        let description = """
        # A measured run: real telemetry and request logs, attributed by Joule (not a simulation).
        name: \(name)
        mode: measured
        hardware: \(m.hardware)
        hostPower: "\(hostLabel)"
        site: \(m.site)
        carbon: {region: \(m.grid), grid: \(m.grid)}
        embodied: \(m.embodied)
        accounting: {policy: \(policy.id), activeSplit: \(m.activeSplit.rawValue), intervalSeconds: \(format(m.intervalSeconds))}
        measured:
          power: {file: "\(m.power)", format: \(powerFormat.rawValue), sha256: \(digest(powerData)), clockOffsetSeconds: \(format(m.clockOffsetSeconds))}
          requests: {file: "\(m.requests)", format: \(requestsFormat.rawValue), sha256: \(digest(requestData))}
          engineGPUs: "\(m.engineGPUs.map { $0.map(String.init).joined(separator: ";") } ?? "all")"
        """
        return MeasuredRun(
            name: name, telemetry: telemetry, log: log, setup: setup, books: books, descriptionText: description + "\n",
            summary: books.summary(name: name, setup: setup)
        )
    }

    static func readData(_ path: String, flag: String) throws -> Data {
        if path.hasPrefix("http://") || path.hasPrefix("https://") {
            throw MeasuredInputError(file: flag, "'\(path)' is a URL: fetch it first (joule measure does, with --duration for a power URL)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MeasuredInputError(file: flag, "cannot read '\(path)' (no such file, or not readable)")
        }
        return data
    }

    /// Which telemetry GPUs each host-power node holds: `node-a=0-7,node-b=8-15`, or with one node and no mapping, all.
    static func hostMapping(_ text: String?, nodes: [String], gpus: [Int]) throws -> [String: [Int]] {
        guard let text, !text.isEmpty else {
            guard nodes.count == 1 else {
                throw MeasuredInputError(file: "--host-gpus", "the host readings name \(nodes.count) nodes (\(nodes.joined(separator: ", "))): say which GPUs each holds, as node-a=0-7,node-b=8-15")
            }
            return [nodes[0]: gpus]
        }
        var out: [String: [Int]] = [:]
        for part in text.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, nodes.contains(kv[0]) else {
                throw MeasuredInputError(file: "--host-gpus", "expected node=GPUs for a node of the host readings (\(nodes.joined(separator: ", "))), got '\(part)'")
            }
            out[kv[0]] = try RequestCSVReader.parseGPUs(kv[1], file: "--host-gpus", line: nil, field: kv[0])
        }
        return out
    }

    private static func format(_ v: Double) -> String { v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v) }
}

extension Catalog {
    /// The calibration rows a measured run gives (`joule calibrate --from-measured`): one per
    /// engine size and batch bin with at least `minSeconds` engine-seconds and output tokens, run
    /// by Joule as `model` on `hardware` with the engine's GPUs in tensor parallel, at the run's
    /// mean prompt, output and cached share.
    public static func measuredServingRows(run id: Int64, summary: RunSummary, model: String, hardware: String, minSeconds: Double) -> [MeasuredServingRow] {
        let finished = max(summary.requests, 1)
        let prompt = Double(summary.inputTokens) / Double(finished)
        let output = Double(summary.outputTokens) / Double(finished)
        let cached = summary.inputTokens > 0 ? Double(summary.cachedTokens) / Double(summary.inputTokens) : 0
        return (summary.measuredBatches ?? []).filter { $0.seconds >= minSeconds && $0.outputTokens > 0 && $0.gpuJoules > 0 }.map { b in
            MeasuredServingRow(
                origin: "run \(id), \(b.engineGPUs) GPUs, batch \(b.label)", measuredModel: model, task: "measured",
                request: ServingBenchmark(
                    model: model, hardware: hardware, gpus: b.engineGPUs, tp: b.engineGPUs, batch: b.meanBatch, inputTokens: max(prompt, 1),
                    outputTokens: max(output, 1), cachedFraction: min(cached, 0.99)
                ),
                gpuPowerWatts: b.gpuWattsPerGPU, gpuJoulesPerOutputToken: b.joulesPerOutputToken, interTokenLatencySeconds: b.interTokenLatencySeconds
            )
        }
    }
}

extension Catalog {
    /// A measured request log as a trace, to replay what really arrived through the simulator:
    /// each request at its logged arrival with its prompt, cached and output tokens. Requests
    /// without counts cannot be replayed and are skipped (counted as skipped lines).
    static func measuredTrace(_ text: String, file: String, format: TraceFormat, skipBadLines: Bool) throws -> ParsedTrace {
        let log: RequestLog
        do {
            log = format == .otlp
                ? try OTLPReader.read(Data(text.utf8), file: file)
                : try RequestCSVReader.read(text, file: file, skipBadLines: skipBadLines)
        } catch let error as MeasuredInputError {
            throw TraceError(file: error.file, line: error.line ?? 1, field: error.field ?? "(file)", message: error.message)
        }
        var rows: [TraceRow] = []
        var skipped = 0
        var examples: [TraceError] = []
        for r in log.requests {
            guard let prompt = r.promptTokens, prompt >= 1, let output = r.outputTokens, output >= 1 else {
                skipped += 1
                if examples.count < 3 {
                    examples.append(TraceError(file: file, line: r.line, field: "prompt_tokens", message: "request \(r.id) has no prompt or output token count: not replayed"))
                }
                continue
            }
            rows.append(TraceRow(arrival: r.arrival, promptTokens: prompt, outputTokens: output, cachedTokens: r.cachedTokens.map { min($0, prompt - 1) }, blockHashes: nil, line: r.line))
        }
        guard !rows.isEmpty else { throw TraceError(file: file, line: 1, field: "(file)", message: "no request in the log has token counts to replay") }
        if skipped > 0 && !skipBadLines { throw examples[0] }
        return ParsedTrace(rows: rows, skippedLines: skipped, startEpochSeconds: rows.map(\.arrival).min(), skippedExamples: examples)
    }
}
