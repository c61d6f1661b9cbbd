import Foundation
import Accounting
import Measured
import Serving

/// How fast a daemon job runs simulated time against the wall clock.
public enum Pacing: Hashable, Sendable, CustomStringConvertible {
    /// One simulated second per wall second.
    case realtime
    /// `factor` simulated seconds per wall second.
    case accelerated(Double)
    /// As fast as the machine goes.
    case max

    /// Simulated seconds per wall second (infinite for `max`).
    public var speed: Double {
        switch self {
        case .realtime: return 1
        case .accelerated(let f): return f
        case .max: return .infinity
        }
    }

    public var description: String {
        switch self {
        case .realtime: return "realtime"
        case .accelerated(let f): return "accelerated \(f.formatted())x"
        case .max: return "max"
        }
    }

    /// Reads `realtime`, `max`, `60x` or `accelerated 60`.
    public init?(_ text: String) {
        let t = text.trimmingCharacters(in: .whitespaces).lowercased()
        switch t {
        case "realtime", "real-time", "1x": self = .realtime
        case "max", "maximum": self = .max
        default:
            var number = t
            if number.hasPrefix("accelerated") { number = String(number.dropFirst("accelerated".count)).trimmingCharacters(in: CharacterSet(charactersIn: " :")) }
            if number.hasSuffix("x") || number.hasSuffix("×") { number = String(number.dropLast()) }
            guard let f = Double(number.trimmingCharacters(in: .whitespaces)), f.isFinite, f > 0 else { return nil }
            self = .accelerated(f)
        }
    }
}

private extension Double {
    func formatted() -> String { self == rounded() && abs(self) < 1e15 ? String(Int(self)) : String(self) }
}

/// When a daemon job's simulated clock starts.
public enum JobStart: Hashable, Sendable {
    /// At the wall-clock time the run begins (a measurement daemon's natural choice).
    case now
    /// At the scenario's own `start`.
    case scenario
    /// At this time (seconds since 1970, UTC).
    case at(Double)
}

/// A daemon job that records what a real fleet drew (`measure:` in the configuration): window by
/// window, the telemetry and the requests of each window become a measured run.
public struct MeasuredJobSpec: Hashable, Sendable {
    /// A DCGM exporter's `/metrics` URL (scraped every `scrapeSeconds`), or a telemetry file being appended to.
    public var power: String
    public var powerFormat: PowerFormat?
    /// A request log URL (`joule serve --spans-out`'s `/v1/requests.csv`) or file being appended to.
    public var requests: String
    public var grid: String
    public var site = "default"
    public var hardware = "h800"
    public var hostPower: String?
    public var engineGPUs: [Int]?
    public var policy = AttributionPolicies.default.id
    /// Seconds of each measured run, and how long after a window's end it is recorded (spans
    /// arrive when requests finish: requests still running later than that are missed, and said).
    public var windowSeconds = 300.0
    public var settleSeconds = 60.0
    public var scrapeSeconds = 1.0
    public var intervalSeconds = 60.0

    public init(power: String, requests: String, grid: String) {
        self.power = power
        self.requests = requests
        self.grid = grid
    }
}

/// One scenario the daemon runs.
public struct DaemonJob: Hashable, Sendable {
    /// A scenario name from `Data/scenarios/` or a path.
    public var scenario: String
    /// The run's name in the ledger (the scenario's name by default).
    public var name: String?
    public var pacing: Pacing = .realtime
    /// Defaults to `.now` for realtime pacing, `.scenario` otherwise.
    public var start: JobStart?
    /// Simulated seconds; nil runs until stopped (a generated workload) or to the trace's end.
    public var duration: Double?
    public var seed: UInt64?
    /// Accounting interval; defaults to 1 s for realtime pacing (rows land within a second of a
    /// request finishing) and to the scenario's otherwise.
    public var intervalSeconds: Double?
    /// Continue the newest stopped or interrupted run of the same scenario and settings.
    public var resume = true
    /// Set for a measured job (which has no scenario).
    public var measure: MeasuredJobSpec?

    public init(scenario: String) { self.scenario = scenario }

    public var effectiveStart: JobStart { start ?? (pacing == .realtime ? .now : .scenario) }
}

/// The daemon's settings: defaults < file < flags.
public struct DaemonConfiguration: Hashable, Sendable {
    public var database = "joule.sqlite"
    /// Wall seconds between commits (at most 1).
    public var commitSeconds = 1.0
    /// A size limit for the ledger file, in megabytes (nil: the disk's).
    public var maximumDatabaseMB: Double?
    /// Request rows are kept this many days back from the newest batch's end, then pruned
    /// (`joule ledger prune`); nil keeps them all.
    public var retainRequestDays: Double?
    public var logLevel = "info"
    /// `text` or `json`.
    public var logFormat = "text"
    /// Wall seconds between carbon-intensity refreshes.
    public var carbonRefreshSeconds = 300.0
    /// Where refreshed intensity comes from: `scenario` (its series), `ledger` (series stored by
    /// `joule carbon import` or `fetch`), or a live source (`electricitymaps`, `watttime`,
    /// `ukci`); the scenario's series until the source first answers.
    public var carbonSource = "scenario"
    /// Live sources: the zone to ask for (default: each job's carbon region).
    public var carbonZone: String?
    /// Live sources: `latest`, `history` or `forecast`.
    public var carbonQuery = "forecast"
    /// Wall seconds between progress lines in the log.
    public var progressSeconds = 10.0
    /// Serve the HTTP API, the dashboard and /metrics while running (nil: no server). With a
    /// server the daemon keeps serving after its jobs end, until SIGINT or SIGTERM.
    public var serverPort: Int?
    public var serverHost = "127.0.0.1"
    /// With a server: receive OTLP request spans on POST /v1/traces into this CSV request log.
    public var serverSpansOut: String?
    public var jobs: [DaemonJob] = [DaemonJob(scenario: "deepseek-v3-day")]

    public init() {}

    public static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
}

extension DaemonConfiguration {
    /// Reads a daemon configuration file (YAML), reporting the first mistake by key and line.
    public static func load(at path: String) throws -> DaemonConfiguration {
        try parse(try Catalog.readText(at: path), file: path)
    }

    /// The ranges a configuration's numbers must fall in (each error names the field and its range).
    public enum Limits {
        /// Progress lines and carbon refreshes: from a millisecond or a second to a week.
        public static let progressSeconds = 0.001...604_800.0
        public static let refreshSeconds = 1.0...604_800.0
        /// A job's simulated duration: up to a leap year, as for a trace's span.
        public static let jobDuration = 1e-3...(366 * 86_400.0)
        /// A job's accounting interval: a millisecond to a day.
        public static let intervalSeconds = 1e-3...86_400.0
        /// An accelerated pacing factor (`max` is the unbounded choice).
        public static let acceleration = 1e-3...1e9
    }

    /// Reads a daemon configuration from `text`, the contents of `file`.
    public static func parse(_ text: String, file: String) throws -> DaemonConfiguration {
        let r = try YAMLReader.parse(text, file: file)
        try r.onlyKeys(["database", "commitSeconds", "maxDatabaseMB", "retainRequestDays", "log", "carbon", "progressSeconds", "jobs", "server"])
        var c = DaemonConfiguration()
        if r.has("server") {
            let server = try r.child("server")
            try server.onlyKeys(["host", "port", "spansOut"])
            c.serverSpansOut = try server.optionalString("spansOut")
            let port = try server.int("port")
            guard (0...65535).contains(port) else { throw server.error("port", "expected 0 to 65535, got \(port)") }
            c.serverPort = port
            c.serverHost = try server.optionalString("host") ?? c.serverHost
        }
        if let db = try r.optionalString("database") { c.database = db }
        if let s = try r.optionalDouble("commitSeconds") {
            guard s > 0, s <= 1 else { throw r.error("commitSeconds", "expected a number of seconds above 0 and at most 1, got \(s)") }
            c.commitSeconds = s
        }
        if let mb = try r.optionalDouble("maxDatabaseMB") {
            // Up to 1 PB: the limit becomes SQLite's page count, an Int.
            guard mb.isFinite, mb >= 1, mb <= 1e9 else {
                throw r.error("maxDatabaseMB", "expected a size from 1 to 1,000,000,000 megabytes, got \(mb)")
            }
            c.maximumDatabaseMB = mb
        }
        if let days = try r.optionalDouble("retainRequestDays") {
            guard days.isFinite, days >= 1.0 / 24, days <= 36_525 else {
                throw r.error("retainRequestDays", "expected 0.0417 (one hour) to 36525 days (100 years), got \(days)")
            }
            c.retainRequestDays = days
        }
        if let s = try r.optionalDouble("progressSeconds") {
            guard Limits.progressSeconds.contains(s) else { throw r.error("progressSeconds", "expected 0.001 to 604800 seconds, got \(s)") }
            c.progressSeconds = s
        }
        if r.has("log") {
            let log = try r.child("log")
            try log.onlyKeys(["level", "format"])
            if let level = try log.optionalString("level") {
                guard DaemonConfiguration.logLevels.contains(level) else {
                    throw log.error("level", "expected one of \(DaemonConfiguration.logLevels.joined(separator: ", ")), got '\(level)'")
                }
                c.logLevel = level
            }
            if let format = try log.optionalString("format") {
                guard ["text", "json"].contains(format) else { throw log.error("format", "expected text or json, got '\(format)'") }
                c.logFormat = format
            }
        }
        if r.has("carbon") {
            let carbon = try r.child("carbon")
            try carbon.onlyKeys(["refreshSeconds", "source", "zone", "query"])
            if let s = try carbon.optionalDouble("refreshSeconds") {
                guard Limits.refreshSeconds.contains(s) else { throw carbon.error("refreshSeconds", "expected 1 to 604800 seconds, got \(s)") }
                c.carbonRefreshSeconds = s
            }
            if let source = try carbon.optionalString("source") {
                guard ["scenario", "ledger", "electricitymaps", "watttime", "ukci"].contains(source) else {
                    throw carbon.error("source", "expected scenario, ledger, electricitymaps, watttime or ukci, got '\(source)'")
                }
                c.carbonSource = source
            }
            c.carbonZone = try carbon.optionalString("zone")
            if let query = try carbon.optionalString("query") {
                guard ["latest", "history", "forecast"].contains(query) else {
                    throw carbon.error("query", "expected latest, history or forecast, got '\(query)'")
                }
                c.carbonQuery = query
            }
        }
        if r.has("jobs") {
            c.jobs = try r.items("jobs").map(job)
            guard !c.jobs.isEmpty else { throw r.error("jobs", "expected at least one job") }
            if let j = c.jobs.first(where: { $0.measure != nil && $0.name == nil }) {
                throw r.error("jobs", "a measured job needs a name (its runs' name), measuring \(j.measure!.power)")
            }
            let names = c.jobs.map { $0.name ?? $0.scenario }
            if let dup = names.first(where: { n in names.filter { $0 == n }.count > 1 }) {
                throw r.error("jobs", "two jobs are named '\(dup)': give each a distinct name")
            }
        }
        return c
    }

    private static func job(_ r: YAMLReader) throws -> DaemonJob {
        if r.has("measure") {
            try r.onlyKeys(["name", "measure"])
            var j = DaemonJob(scenario: "")
            j.name = try r.optionalString("name")
            j.measure = try measuredJob(try r.child("measure"))
            return j
        }
        try r.onlyKeys(["scenario", "name", "pacing", "start", "duration", "seed", "intervalSeconds", "resume", "measure"])
        var j = DaemonJob(scenario: try r.string("scenario"))
        j.name = try r.optionalString("name")
        if r.has("pacing") {
            let raw: String
            if let nested = try? r.child("pacing") {
                try nested.onlyKeys(["accelerated"])
                raw = "\(try nested.double("accelerated"))x"
            } else {
                raw = try r.string("pacing")
            }
            guard let pacing = Pacing(raw) else {
                throw r.error("pacing", "expected realtime, max, or an acceleration such as 60x or {accelerated: 60}, got '\(raw)'")
            }
            if case .accelerated(let f) = pacing, !Limits.acceleration.contains(f) {
                throw r.error("pacing", "expected an acceleration from 0.001x to 1000000000x (or max), got \(f)x")
            }
            j.pacing = pacing
        }
        if let start = try r.optionalString("start") {
            switch start {
            case "now": j.start = .now
            case "scenario": j.start = .scenario
            default:
                guard let epoch = WallClock.iso8601(start) else {
                    throw r.error("start", "expected now, scenario, or an ISO 8601 time such as 2025-02-27T12:00:00+08:00, got '\(start)'")
                }
                j.start = .at(epoch)
            }
        }
        if let d = try r.optionalDouble("duration") {
            guard Limits.jobDuration.contains(d) else { throw r.error("duration", "expected 0.001 to 31622400 simulated seconds (366 days), got \(d)") }
            j.duration = d
        }
        if let s = try r.optionalInt("seed") {
            guard s >= 0 else { throw r.error("seed", "expected a whole number ≥ 0, got \(s)") }
            j.seed = UInt64(s)
        }
        if let i = try r.optionalDouble("intervalSeconds") {
            guard Limits.intervalSeconds.contains(i) else { throw r.error("intervalSeconds", "expected 0.001 to 86400 seconds, got \(i)") }
            j.intervalSeconds = i
        }
        if r.has("resume") { j.resume = try r.bool("resume") }
        return j
    }
}

extension DaemonConfiguration {
    private static func measuredJob(_ r: YAMLReader) throws -> MeasuredJobSpec {
        try r.onlyKeys([
            "power", "powerFormat", "requests", "grid", "site", "hardware", "hostPower", "engineGPUs", "policy", "windowSeconds", "settleSeconds",
            "scrapeSeconds", "intervalSeconds",
        ])
        var m = MeasuredJobSpec(power: try r.string("power"), requests: try r.string("requests"), grid: try r.string("grid"))
        if let f = try r.optionalString("powerFormat") {
            guard let format = PowerFormat(rawValue: f) else { throw r.error("powerFormat", "expected nvidia-smi, dcgm or zeus, got '\(f)'") }
            m.powerFormat = format
        }
        m.site = try r.optionalString("site") ?? m.site
        m.hardware = try r.optionalString("hardware") ?? m.hardware
        m.hostPower = try r.optionalString("hostPower")
        if let gpus = try r.optionalString("engineGPUs") {
            do {
                m.engineGPUs = try RequestCSVReader.parseGPUs(gpus, file: r.file, line: nil, field: "engineGPUs")
            } catch let error as MeasuredInputError {
                throw r.error("engineGPUs", error.message)
            }
        }
        if let p = try r.optionalString("policy") {
            guard AttributionPolicies.named(p) != nil else {
                throw r.error("policy", "expected one of \(AttributionPolicies.all.map(\.id).joined(separator: ", ")), got '\(p)'")
            }
            m.policy = p
        }
        for (key, range, path) in [
            ("windowSeconds", 10.0...86_400, \MeasuredJobSpec.windowSeconds), ("settleSeconds", 0.0...86_400, \MeasuredJobSpec.settleSeconds),
            ("scrapeSeconds", 0.1...60, \MeasuredJobSpec.scrapeSeconds), ("intervalSeconds", 1.0...3600, \MeasuredJobSpec.intervalSeconds),
        ] {
            if let v = try r.optionalDouble(key) {
                guard v.isFinite, range.contains(v) else { throw r.error(key, "expected \(range.lowerBound) to \(range.upperBound) seconds, got \(v)") }
                m[keyPath: path] = v
            }
        }
        guard m.intervalSeconds <= m.windowSeconds else {
            throw r.error("intervalSeconds", "expected at most windowSeconds (\(m.windowSeconds)), got \(m.intervalSeconds)")
        }
        return m
    }
}
