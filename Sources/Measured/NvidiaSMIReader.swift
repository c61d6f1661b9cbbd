import Accounting
import Foundation

/// Reads the CSV that `nvidia-smi --query-gpu=timestamp,index,uuid,power.draw,... --format=csv`
/// writes, at any sampling rate (`-lms 100`, `-l 1`).
///
/// The header names the columns (`power.draw [W]`); `timestamp` and `index` are required, with one
/// of `power.draw`, `power.draw.instant` or `power.draw.average` (in that order of preference),
/// and `uuid` is kept when present. Values may carry their units (`245.67 W`, `--format=csv`) or
/// not (`csv,nounits`). nvidia-smi prints the node's local time without a zone
/// (`2024/05/01 12:00:00.123`): it is read as UTC shifted by `utcOffsetSeconds` (run nvidia-smi
/// with `TZ=UTC` and leave it 0). `[N/A]` and `[Not Supported]` values are reported and left out.
public enum NvidiaSMIReader {
    public static let powerColumns = ["power.draw", "power.draw.instant", "power.draw.average"]

    public static func read(_ text: String, file: String, utcOffsetSeconds: Double = 0, skipBadLines: Bool = false) throws -> PowerTelemetry {
        var builder = TrackBuilder(file: file)
        var skipped: [MeasuredIssue] = []
        var powerColumn = ""
        try MeasuredCSV.read(
            text, file: file, skipBadLines: skipBadLines, issues: &skipped, emptyMessage: "empty: expected nvidia-smi's CSV header and samples",
            // Names before any " [unit]".
            name: { $0.split(separator: " ").first.map(String.init) ?? $0 },
            header: { names, line in
                guard names["timestamp"] != nil, names["index"] != nil, let p = powerColumns.first(where: { names[$0] != nil }) else {
                    return "expected nvidia-smi's CSV header with timestamp, index and power.draw (run it with --format=csv, not noheader), got '\(line.prefix(120))'"
                }
                powerColumn = p
                return nil
            }
        ) { row in
            guard let t = timestamp(row["timestamp"]) else {
                throw row.error("timestamp", "expected nvidia-smi's time such as 2024/05/01 12:00:00.123, got '\(row["timestamp"])'")
            }
            guard let gpu = Int(row["index"]), (0...4095).contains(gpu) else {
                throw row.error("index", "expected a GPU index from 0 to 4095, got '\(row["index"])'")
            }
            let powerText = row[powerColumn]
            let watts = try value(powerText, unit: "W", file: file, line: row.line, field: powerColumn, range: 0...5000)
            if watts == nil {
                builder.issues.append(MeasuredIssue(.missingValue, subject: "GPU \(gpu)", "line \(row.line): \(powerColumn) is '\(powerText)'; sample left out"))
            }
            builder.add(gpu: gpu, uuid: row.optional("uuid"), TrackBuilder.Sample(time: t - utcOffsetSeconds, watts: watts, counterJoules: nil, line: row.line))
        }
        builder.issues += skipped
        return try builder.build(format: "nvidia-smi")
    }

    /// `2024/05/01 12:00:00.123` (nvidia-smi's format) or an ISO 8601 time.
    static func timestamp(_ text: String) -> Double? {
        var s = text
        if s.count >= 10, s[s.index(s.startIndex, offsetBy: 4)] == "/" {
            s = s.replacingOccurrences(of: "/", with: "-")
        }
        return WallClock.iso8601(s)
    }

    /// A number with an optional unit suffix; nil for `[N/A]`-style values; an error otherwise.
    static func value(_ text: String, unit: String, file: String, line: Int, field: String, range: ClosedRange<Double>) throws -> Double? {
        if text.hasPrefix("[") || text.isEmpty || text == "N/A" { return nil }
        var s = text
        if s.hasSuffix(unit) { s = String(s.dropLast(unit.count)).trimmingCharacters(in: .whitespaces) }
        guard let v = Double(s), v.isFinite else {
            throw MeasuredInputError(file: file, line: line, field: field, "expected a number of \(unit) such as 245.67 \(unit), got '\(text)'")
        }
        guard range.contains(v) else {
            throw MeasuredInputError(file: file, line: line, field: field, "expected \(format1(range.lowerBound)) to \(format1(range.upperBound)) \(unit), got \(text)")
        }
        return v
    }
}
