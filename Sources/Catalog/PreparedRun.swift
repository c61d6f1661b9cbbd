import Calibration
import MoE
import Accounting
import Serving

/// A scenario with its overrides applied and its workload read: ready to simulate.
public struct PreparedRun: Sendable {
    public var scenario: ServingScenario
    /// The trace's requests, or nil for a generated workload.
    public var traceRequests: [ServingRequest]?
    /// The generator, or nil for a trace.
    public var generator: GeneratorSpec?
    /// Malformed trace lines skipped (with `skipBadLines`), and a few of their errors.
    public var skippedLines: Int
    public var skippedExamples: [TraceError]

    /// Runs the simulation, handing records and intervals to the closures.
    public func run(
        onRecord: (RequestRecord) -> Void, onInterval: (ClusterInterval) -> Void = { _ in },
        progress: ((Double) -> Void)? = nil
    ) throws -> RunSummary {
        let hooks = RunHooks(progress: progress, expectedRequests: traceRequests?.count)
        guard case .finished(let summary) = try run(onRecord: onRecord, onInterval: onInterval, hooks: hooks) else {
            preconditionFailure("a run without a pace hook cannot stop early")
        }
        return summary
    }

    /// Runs the simulation with `hooks` (pacing, stopping, checkpoints, carbon refresh).
    public func run(onRecord: (RequestRecord) -> Void, onInterval: (ClusterInterval) -> Void, hooks: RunHooks) throws -> RunOutcome {
        var simulator = try ServingSimulator(scenario: scenario)
        if let traceRequests {
            var stream = TraceStream(traceRequests)
            return try simulator.run(&stream, onRecord: onRecord, onInterval: onInterval, hooks: hooks)
        }
        guard let generator else { preconditionFailure("a prepared run has either trace requests or a generator") }
        var stream = GeneratedStream(generator, startEpochSeconds: scenario.startEpochSeconds, seed: scenario.seed)
        return try simulator.run(&stream, onRecord: onRecord, onInterval: onInterval, hooks: hooks)
    }
}

/// Overrides of single scenario fields, as `joule simulate` flags give them.
public struct RunOverrides: Sendable {
    public var trace: String?
    public var traceFormat: TraceFormat?
    public var duration: Double?
    public var seed: UInt64?
    public var skipBadLines = false

    public init(trace: String? = nil, traceFormat: TraceFormat? = nil, duration: Double? = nil, seed: UInt64? = nil, skipBadLines: Bool = false) {
        self.trace = trace
        self.traceFormat = traceFormat
        self.duration = duration
        self.seed = seed
        self.skipBadLines = skipBadLines
    }
}

extension Catalog {
    /// Applies `overrides` to `loaded` and reads its workload. Flags beat the file.
    public static func prepare(_ loaded: LoadedScenario, overrides: RunOverrides) throws -> PreparedRun {
        var scenario = loaded.scenario
        if let d = overrides.duration {
            guard ServingScenario.durationRange.contains(d) else {
                throw CatalogError.invalidField(file: "--duration", field: "duration", line: nil, message: "expected 0.001 to 31622400 simulated seconds (366 days), got \(d)")
            }
            scenario.duration = d
        }
        if let s = overrides.seed { scenario.seed = s }
        var workload = loaded.workload
        if let path = overrides.trace {
            var options = ReplayOptions()
            if case .trace(_, _, let o) = workload { options = o }
            let format = overrides.traceFormat ?? TraceFormat.guess(fromFileName: path) ?? .jouleCSV
            workload = .trace(path: path, format: format, options: options)
        }
        switch workload {
        case .generator(let spec):
            return PreparedRun(scenario: scenario, traceRequests: nil, generator: spec, skippedLines: 0, skippedExamples: [])
        case .trace(let path, let fileFormat, let options):
            let format = overrides.traceFormat ?? fileFormat
            let parsed = try loadTrace(at: path, format: format, skipBadLines: overrides.skipBadLines)
            if !loaded.hasStart, let start = parsed.startEpochSeconds {
                scenario.startEpochSeconds = start + options.windowStart
            }
            return PreparedRun(
                scenario: scenario, traceRequests: parsed.requests(options), generator: nil,
                skippedLines: parsed.skippedLines, skippedExamples: parsed.skippedExamples
            )
        }
    }
}

extension Catalog {
    /// Scenario `name` (a file or a name in `Data/scenarios`) with its pools sized to its generated
    /// workload at `slo` (`joule simulate --size-fleet`).
    public static func sizeFleet(
        scenario name: String, overrides: RunOverrides = RunOverrides(), slo: FleetSLO, library: SpecLibrary, dataDirectory: String
    ) throws -> FleetSizing {
        let loaded = try loadScenario(at: try scenarioPath(name, dataDirectory: dataDirectory), library: library, dataDirectory: dataDirectory)
        let prepared = try prepare(loaded, overrides: overrides)
        guard let generator = prepared.generator else {
            throw FleetSizingError.unsupported("--size-fleet: scenario \(prepared.scenario.name) replays a trace; sizing needs a generated workload")
        }
        let s = prepared.scenario
        return try FleetSizer(model: s.model, node: s.node, site: s.site, topology: s.topology)
            .size(generator, startEpochSeconds: s.startEpochSeconds, duration: s.duration ?? 86_400, slo: slo)
    }

    /// Node-hours of a capacity check (the calibration table's `fleet-node-hours` rows).
    public static func fleetNodeHours(_ inputs: FleetInputs, library: SpecLibrary, dataDirectory: String) throws -> Double {
        let slo = FleetSLO(timePerOutputToken: .milliseconds(inputs.tpotMilliseconds), prefillStep: .milliseconds(inputs.prefillStepMilliseconds))
        return try sizeFleet(scenario: inputs.scenario, slo: slo, library: library, dataDirectory: dataDirectory).nodeHours
    }
}
