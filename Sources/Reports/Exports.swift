import Accounting
import Crypto
import Foundation
import Ledger
import Yams

/// What a run's stored scenario names: the scenario, its grid region and signal, its hardware.
public struct ScenarioLabels: Sendable, Hashable {
    public var scenario: String
    public var region: String
    public var signal: String
    public var hardware: String
    /// The emission factor type the scenario states for its intensity (`carbon.factor`), if any.
    public var factor: String?

    /// From the run's stored scenario text (`name`, `carbon.region`, `carbon.signal`, `hardware`);
    /// the file's stem and "unknown" where the text does not say.
    public init(_ run: StoredRun) {
        let stem = URL(fileURLWithPath: run.scenarioFile).deletingPathExtension().lastPathComponent
        let yaml = (try? Yams.load(yaml: run.scenarioText)) as? [String: Any]
        let carbon = yaml?["carbon"] as? [String: Any]
        scenario = (yaml?["name"] as? String) ?? stem
        region = (carbon?["region"] as? String) ?? "unknown"
        signal = (carbon?["signal"] as? String) ?? "average"
        hardware = (yaml?["hardware"] as? String) ?? "unknown"
        factor = (carbon?["factor"] as? String).flatMap { ["direct", "lifecycle"].contains($0) ? $0 : nil }
    }
}

/// A run's request rows, streamed out as CSV or JSON Lines: one line per request, in row order,
/// with its run and wall-clock arrival before the record's own fields (the names and units of
/// `joule simulate --requests-out`: seconds, joules, grams).
public struct RequestExport {
    public enum Format: String, CaseIterable, Sendable { case csv, jsonl }

    public static let leadingColumns = ["run", "arrivalTime", "arrivalEpochSeconds"]
    public static let recordColumns = [
        "id", "inFlight", "arrival", "prefillStart", "firstToken", "finish", "queueWait", "ttft", "tpot", "endToEnd",
        "promptTokens", "cachedTokens", "outputTokens", "prefillUnit", "decodeUnit",
        "gpuActiveJoules", "gpuIdleJoules", "hostJoules", "facilityOverheadJoules", "facilityJoules", "meanPowerWatts",
        "gpuSeconds", "intensityGramsPerKWh", "operationalCarbonGrams", "embodiedCarbonGrams", "totalCarbonGrams",
    ]

    let format: Format
    let encoder: JSONEncoder

    public init(format: Format) {
        self.format = format
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    }

    /// The header line (CSV), or nothing (JSON Lines).
    public var header: String {
        format == .csv ? (Self.leadingColumns + Self.recordColumns).joined(separator: ",") + "\n" : ""
    }

    /// One request as a line.
    public func line(_ row: RequestRow) throws -> String {
        let r = row.record
        switch format {
        case .csv:
            func o(_ v: Double?) -> String { v.map { "\($0)" } ?? "" }
            func o(_ v: Int?) -> String { v.map { "\($0)" } ?? "" }
            let fields: [String] = [
                "\(row.runID)", WallClock.string(row.epochSeconds), "\(row.epochSeconds)",
                "\(r.id)", r.inFlight ? "1" : "0", "\(r.arrival)", o(r.prefillStart), o(r.firstToken), o(r.finish), o(r.queueWait),
                o(r.ttft), o(r.tpot), o(r.endToEnd), "\(r.promptTokens)", "\(r.cachedTokens)", "\(r.outputTokens)",
                o(r.prefillUnit), o(r.decodeUnit), "\(r.gpuActiveJoules)", "\(r.gpuIdleJoules)", "\(r.hostJoules)",
                "\(r.facilityOverheadJoules)", "\(r.facilityJoules)", "\(r.meanPowerWatts)", "\(r.gpuSeconds)",
                "\(r.intensityGramsPerKWh)", "\(r.operationalCarbonGrams)", "\(r.embodiedCarbonGrams)", "\(r.totalCarbonGrams)",
            ]
            return fields.joined(separator: ",") + "\n"
        case .jsonl:
            // The record's own JSON, with the run and wall-clock arrival before its fields.
            let record = String(decoding: try encoder.encode(r), as: UTF8.self)
            return "{\"arrivalEpochSeconds\":\(row.epochSeconds),\"arrivalTime\":\"\(WallClock.string(row.epochSeconds))\",\"run\":\(row.runID),"
                + record.dropFirst() + "\n"
        }
    }

    /// Streams run `run`'s requests arriving in [from, to) through `write`, buffered in chunks of
    /// about a megabyte, calling `progress` with the share written so far; returns how many.
    @discardableResult
    public func stream(
        _ ledger: some LedgerQueries, run: Int64, from: Double? = nil, to: Double? = nil,
        write: (String) throws -> Void, progress: (Double) -> Void = { _ in }
    ) throws -> Int {
        let total = max(1, try ledger.committedRequests(run: run))
        var buffer = header, count = 0, seen = 0
        try ledger.forEachRequest(RowScope(runs: [run], from: from, to: to)) { row in
            buffer += try line(row)
            count += 1
            seen += 1
            if buffer.utf8.count >= 1 << 20 {
                try write(buffer)
                buffer = ""
                progress(Double(seen) / Double(total))
            }
        }
        try write(buffer)
        progress(1)
        return count
    }
}

/// A run as CodeCarbon's `emissions.csv` (CodeCarbon 3.3.2's `EmissionsData`, its columns in its
/// order and its units: seconds, kg CO2e, kg/s, W, kWh, L, GB), so CodeCarbon's dashboard and
/// notebooks written for it load Joule's runs. One row per run, per wall-clock hour, or per
/// accounting interval. The mapping, and what has no counterpart, is in docs/carbon.md.
public struct CodeCarbonExport {
    /// CodeCarbon 3.3.2's columns, in its order.
    public static let columns = [
        "timestamp", "project_name", "run_id", "experiment_id", "duration", "emissions", "emissions_rate", "cpu_power", "gpu_power",
        "ram_power", "cpu_energy", "gpu_energy", "ram_energy", "energy_consumed", "water_consumed", "country_name", "country_iso_code",
        "region", "cloud_provider", "cloud_region", "os", "python_version", "codecarbon_version", "cpu_count", "cpu_model", "gpu_count",
        "gpu_model", "longitude", "latitude", "ram_total_size", "tracking_mode", "cpu_utilization_percent", "gpu_utilization_percent",
        "ram_utilization_percent", "ram_used_gb", "on_cloud", "pue", "wue",
    ]

    public enum Period: String, CaseIterable, Sendable { case run, hour, interval }

    /// One row: a period of the run's accounting intervals, summed.
    public struct Row: Sendable {
        public var end: Double
        public var seconds: Double
        public var gpuJoules: Double
        public var hostJoules: Double
        public var facilityJoules: Double
        public var carbonGrams: Double
        public var gpuSeconds: Double
        public var busyGPUSeconds: Double
    }

    public var project: String
    public var runID: String
    public var experiment: String
    public var labels: ScenarioLabels
    public var rows: [Row]

    /// Run `run`'s intervals summed per `period`; nil when it has none yet.
    public static func build(_ ledger: some LedgerQueries, run id: Int64, per period: Period, project: String = "joule") throws -> CodeCarbonExport? {
        let run = try ledger.run(id)
        var buckets: [Double: Row] = [:]
        var first = Double.infinity, last = -Double.infinity
        try ledger.forEachInterval(.run(id)) { row in
            let i = row.record
            let start = row.epochSeconds, end = row.epochSeconds + (i.end - i.start)
            first = min(first, start)
            last = max(last, end)
            let key: Double
            switch period {
            case .run: key = 0
            case .hour: key = (start / 3600).rounded(.down) * 3600
            case .interval: key = start
            }
            var r = buckets[key] ?? Row(end: end, seconds: 0, gpuJoules: 0, hostJoules: 0, facilityJoules: 0, carbonGrams: 0, gpuSeconds: 0, busyGPUSeconds: 0)
            r.end = max(r.end, period == .hour ? min(end, key + 3600) : end)
            r.gpuJoules += i.gpuActiveJoules + i.gpuIdleJoules
            r.hostJoules += i.hostActiveJoules + i.hostIdleJoules
            r.facilityJoules += i.facilityJoules
            r.carbonGrams += i.operationalCarbonGrams
            r.gpuSeconds += i.gpuSeconds
            r.busyGPUSeconds += i.gpuSeconds * i.busyFraction
            buckets[key] = r
        }
        guard first.isFinite else { return nil }
        var rows: [Row] = []
        for key in buckets.keys.sorted() {
            var r = buckets[key]!
            switch period {
            case .run: r.seconds = last - first
            case .hour: r.seconds = r.end - max(key, first)
            case .interval: r.seconds = r.end - key
            }
            rows.append(r)
        }
        // A stable identifier from the ledger's record of the run: the same run always exports alike.
        var h = SHA256()
        h.update(data: Data("\(run.scenarioHash)|\(id)|\(run.createdAt)".utf8))
        let b = Array(h.finalize())
        let hex = b.prefix(16).map { String(format: "%02x", $0) }.joined()
        let uuid = [hex.prefix(8), hex.dropFirst(8).prefix(4), "8" + hex.dropFirst(13).prefix(3), hex.dropFirst(16).prefix(4), hex.dropFirst(20).prefix(12)]
            .map(String.init).joined(separator: "-")
        return CodeCarbonExport(project: project, runID: uuid, experiment: "\(run.name)#\(id)", labels: ScenarioLabels(run), rows: rows)
    }

    /// The CSV text: CodeCarbon's header, then one line per row.
    public var csv: String {
        var out = Self.columns.joined(separator: ",") + "\n"
        func q(_ s: String) -> String { s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }
        for r in rows {
            let it = r.gpuJoules + r.hostJoules
            let pue = it > 0 ? r.facilityJoules / it : 1
            // CodeCarbon applies PUE to each component's power and energy; so does this export.
            let gpuKWh = r.gpuJoules * pue / 3.6e6, cpuKWh = r.hostJoules * pue / 3.6e6
            let kg = r.carbonGrams / 1000
            let watts = { (joules: Double) in r.seconds > 0 ? joules * pue / r.seconds : 0 }
            let timestamp = String(WallClock.string(r.end).prefix(19))
            let fields: [String] = [
                timestamp, q(project), runID, q(experiment), "\(r.seconds)", "\(kg)", "\(r.seconds > 0 ? kg / r.seconds : 0)",
                "\(watts(r.hostJoules))", "\(watts(r.gpuJoules))", "0.0", "\(cpuKWh)", "\(gpuKWh)", "0.0", "\(r.facilityJoules / 3.6e6)", "0.0",
                "", "", q(labels.region), "", "", "", "", "", "0", "", "\(r.seconds > 0 ? r.gpuSeconds / r.seconds : 0)",
                q(labels.hardware), "", "", "0.0", "machine", "0.0", "\(r.gpuSeconds > 0 ? 100 * r.busyGPUSeconds / r.gpuSeconds : 0)",
                "0.0", "0.0", "N", "\(pue)", "0.0",
            ]
            out += fields.joined(separator: ",") + "\n"
        }
        return out
    }
}
