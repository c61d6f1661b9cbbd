import Accounting

/// Reads host (whole-server) power readings: a CSV `timestamp,watts[,node]` with ISO 8601 UTC
/// times, as a loop over `ipmitool dcmi power reading` or a Redfish `PowerConsumedWatts` poll
/// writes it (docs/measured.md). One track per node, integrated by the trapezoid rule. Host
/// energy metered this way replaces the host model's, split evenly over the node's GPUs.
public enum HostPowerReader {
    public static func read(_ text: String, file: String, skipBadLines: Bool = false) throws -> (nodes: [String], telemetry: PowerTelemetry) {
        var builder = TrackBuilder(file: file)
        var nodes: [String] = []
        var skipped: [MeasuredIssue] = []
        try MeasuredCSV.read(
            text, file: file, skipBadLines: skipBadLines, issues: &skipped, emptyMessage: "empty: expected the header timestamp,watts[,node]",
            header: { names, line in names["timestamp"] != nil && names["watts"] != nil ? nil : "expected the columns timestamp,watts[,node], got '\(line.prefix(80))'" }
        ) { row in
            guard let t = WallClock.iso8601(row["timestamp"]), t > 0, t < 7.3e9 else {
                throw row.error("timestamp", "expected an ISO 8601 UTC time, got '\(row["timestamp"])'")
            }
            let watts = try NvidiaSMIReader.value(row["watts"], unit: "W", file: file, line: row.line, field: "watts", range: 0...100_000)
            let node = row.optional("node") ?? ""
            if !nodes.contains(node) { nodes.append(node) }
            if watts == nil {
                builder.issues.append(MeasuredIssue(.missingValue, subject: node.isEmpty ? "host" : "host \(node)", "line \(row.line): no reading; left out"))
            }
            builder.add(gpu: nodes.firstIndex(of: node)!, uuid: node, .init(time: t, watts: watts, counterJoules: nil, line: row.line))
        }
        builder.issues += skipped
        return (nodes, try builder.build(format: "host-power"))
    }
}
