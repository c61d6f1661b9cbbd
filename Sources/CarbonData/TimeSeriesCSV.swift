import Foundation
import Accounting

/// A two-column CSV of times and values under a fixed header: the layout shared by Joule's own
/// intensity CSV (`timestamp,gco2_per_kwh`) and the Let's Wait Awhile data set (`Time,Carbon
/// Intensity`). Times are ISO 8601 (no zone means UTC), values finite and ≥ 0, times strictly
/// increasing. Every problem is a `CarbonDataError.invalidPoint` naming the line (from 1) and the
/// column, or `.empty`. With `requireOrder: false` rows come back in file order, for
/// `PointChecker` to sort with a warning.
public enum TimeSeriesCSV {
    public struct Row: Hashable, Sendable {
        public var line: Int
        public var epochSeconds: Double
        public var value: Double
    }

    public static func parse(_ text: String, file: String, header: (time: String, value: String), requireOrder: Bool = true) throws -> [Row] {
        var rows: [Row] = []
        var lineNumber = 0
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let fields = CSVLine.fields(line)
            if lineNumber == 1 {
                guard fields == [header.time, header.value] else {
                    throw CarbonDataError.invalidPoint(
                        file: file, index: 1, field: "header", message: "expected the header '\(header.time),\(header.value)', got '\(line)'"
                    )
                }
                continue
            }
            guard fields.count == 2 else {
                throw CarbonDataError.invalidPoint(file: file, index: lineNumber, field: "(line)", message: "expected 2 columns, got \(fields.count)")
            }
            guard let t = WallClock.iso8601(fields[0]) else {
                throw CarbonDataError.invalidPoint(
                    file: file, index: lineNumber, field: header.time,
                    message: "expected an ISO 8601 time such as 2025-02-27T04:00:00Z or 2020-01-01 00:30:00, got '\(fields[0])'"
                )
            }
            guard let v = Double(fields[1]), v.isFinite, v >= 0 else {
                throw CarbonDataError.invalidPoint(file: file, index: lineNumber, field: header.value, message: "expected a non-negative number, got '\(fields[1])'")
            }
            if requireOrder, let last = rows.last, t <= last.epochSeconds {
                throw CarbonDataError.invalidPoint(
                    file: file, index: lineNumber, field: header.time,
                    message: "expected times in increasing order; \(fields[0]) is not after the line before"
                )
            }
            rows.append(Row(line: lineNumber, epochSeconds: t, value: v))
        }
        guard !rows.isEmpty else { throw CarbonDataError.empty(file: file) }
        return rows
    }
}

/// Splits one CSV line into trimmed fields; a field in double quotes may hold commas, and `""`
/// inside quotes is one quote.
public enum CSVLine {
    public static func fields<S: StringProtocol>(_ line: S) -> [String] {
        var fields: [String] = []
        var current = ""
        var quoted = false
        var iterator = line.makeIterator()
        var pending: Character? = nil
        while let c = pending ?? iterator.next() {
            pending = nil
            if quoted {
                if c == "\"" {
                    let next = iterator.next()
                    if next == "\"" { current.append("\"") } else { quoted = false; pending = next }
                } else {
                    current.append(c)
                }
            } else if c == "\"" {
                quoted = true
            } else if c == "," {
                fields.append(current.trimmingCharacters(in: .whitespaces))
                current = ""
            } else {
                current.append(c)
            }
        }
        fields.append(current.trimmingCharacters(in: .whitespaces))
        return fields
    }
}
