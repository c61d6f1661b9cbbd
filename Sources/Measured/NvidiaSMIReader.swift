import Accounting
import Foundation
import CarbonData

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
        var columns: [String: Int]? = nil
        var powerColumn = ""
        var lineNumber = 0
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let fields = CSVLine.fields(line)
            guard let cols = columns else {
                // The header: names before any " [unit]".
                var names: [String: Int] = [:]
                for (i, f) in fields.enumerated() {
                    let name = f.split(separator: " ").first.map(String.init) ?? f
                    names[name] = i
                }
                guard names["timestamp"] != nil, names["index"] != nil, let p = powerColumns.first(where: { names[$0] != nil }) else {
                    throw MeasuredInputError(
                        file: file, line: lineNumber, field: "header",
                        "expected nvidia-smi's CSV header with timestamp, index and power.draw (run it with --format=csv, not noheader), got '\(line.prefix(120))'"
                    )
                }
                powerColumn = p
                columns = names
                continue
            }
            do {
                let needed = (cols.values.max() ?? 0) + 1
                guard fields.count >= needed else {
                    throw MeasuredInputError(file: file, line: lineNumber, "expected \(needed) columns, got \(fields.count)")
                }
                let stamp = fields[cols["timestamp"]!]
                guard let t = timestamp(stamp) else {
                    throw MeasuredInputError(
                        file: file, line: lineNumber, field: "timestamp", "expected nvidia-smi's time such as 2024/05/01 12:00:00.123, got '\(stamp)'"
                    )
                }
                let indexText = fields[cols["index"]!]
                guard let gpu = Int(indexText), (0...4095).contains(gpu) else {
                    throw MeasuredInputError(file: file, line: lineNumber, field: "index", "expected a GPU index from 0 to 4095, got '\(indexText)'")
                }
                let powerText = fields[cols[powerColumn]!]
                let watts = try value(powerText, unit: "W", file: file, line: lineNumber, field: powerColumn, range: 0...5000)
                if watts == nil {
                    builder.issues.append(MeasuredIssue(.missingValue, subject: "GPU \(gpu)", "line \(lineNumber): \(powerColumn) is '\(powerText)'; sample left out"))
                }
                let uuid = cols["uuid"].map { fields[$0] }
                builder.add(gpu: gpu, uuid: uuid, TrackBuilder.Sample(time: t - utcOffsetSeconds, watts: watts, counterJoules: nil, line: lineNumber))
            } catch let error as MeasuredInputError where skipBadLines {
                builder.issues.append(MeasuredIssue(.skippedLine, "\(error)"))
            }
        }
        guard columns != nil else { throw MeasuredInputError(file: file, "empty: expected nvidia-smi's CSV header and samples") }
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
