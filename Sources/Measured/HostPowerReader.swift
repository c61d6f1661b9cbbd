import Accounting
import CarbonData

/// Reads host (whole-server) power readings: a CSV `timestamp,watts[,node]` with ISO 8601 UTC
/// times, as a loop over `ipmitool dcmi power reading` or a Redfish `PowerConsumedWatts` poll
/// writes it (docs/measured.md). One track per node, integrated by the trapezoid rule. Host
/// energy metered this way replaces the host model's, split evenly over the node's GPUs.
public enum HostPowerReader {
    public static func read(_ text: String, file: String, skipBadLines: Bool = false) throws -> (nodes: [String], telemetry: PowerTelemetry) {
        var builder = TrackBuilder(file: file)
        var columns: [String: Int]? = nil
        var nodes: [String] = []
        var lineNumber = 0
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let fields = CSVLine.fields(line)
            guard let cols = columns else {
                var names: [String: Int] = [:]
                for (i, f) in fields.enumerated() { names[f] = i }
                guard names["timestamp"] != nil, names["watts"] != nil else {
                    throw MeasuredInputError(file: file, line: lineNumber, field: "header", "expected the columns timestamp,watts[,node], got '\(line.prefix(80))'")
                }
                columns = names
                continue
            }
            do {
                let needed = (cols.values.max() ?? 0) + 1
                guard fields.count >= needed else { throw MeasuredInputError(file: file, line: lineNumber, "expected \(needed) columns, got \(fields.count)") }
                guard let t = WallClock.iso8601(fields[cols["timestamp"]!]), t > 0, t < 7.3e9 else {
                    throw MeasuredInputError(file: file, line: lineNumber, field: "timestamp", "expected an ISO 8601 UTC time, got '\(fields[cols["timestamp"]!])'")
                }
                let watts = try NvidiaSMIReader.value(fields[cols["watts"]!], unit: "W", file: file, line: lineNumber, field: "watts", range: 0...100_000)
                let node = cols["node"].map { fields[$0] } ?? ""
                if !nodes.contains(node) { nodes.append(node) }
                if watts == nil {
                    builder.issues.append(MeasuredIssue(.missingValue, subject: node.isEmpty ? "host" : "host \(node)", "line \(lineNumber): no reading; left out"))
                }
                builder.add(gpu: nodes.firstIndex(of: node)!, uuid: node, .init(time: t, watts: watts, counterJoules: nil, line: lineNumber))
            } catch let error as MeasuredInputError where skipBadLines {
                builder.issues.append(MeasuredIssue(.skippedLine, "\(error)"))
            }
        }
        guard columns != nil else { throw MeasuredInputError(file: file, "empty: expected the header timestamp,watts[,node]") }
        return (nodes, try builder.build(format: "host-power"))
    }
}
