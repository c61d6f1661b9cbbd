import Scheduling
import Serving

/// The Let's Wait Awhile data set's CSV (`Time,Carbon Intensity`; naive UTC times such as
/// `2020-01-01 00:30:00`; gCO₂/kWh). Each point lasts until the next; the last as long as the one
/// before it.
public enum LetsWaitAwhileCSV {
    public static func parse(_ text: String, file: String) throws -> [TimedValue] {
        var starts: [Double] = []
        var values: [Double] = []
        var lineNumber = 0
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            if lineNumber == 1 {
                guard fields == ["Time", "Carbon Intensity"] else {
                    throw CarbonDataError.syntax(file: file, message: "line 1: expected the header 'Time,Carbon Intensity', got '\(line)'")
                }
                continue
            }
            guard fields.count == 2 else {
                throw CarbonDataError.invalidPoint(file: file, index: lineNumber, field: "line", message: "expected 2 fields, got \(fields.count)")
            }
            guard let t = WallClock.iso8601(fields[0]) else {
                throw CarbonDataError.invalidPoint(file: file, index: lineNumber, field: "Time", message: "expected a time like 2020-01-01 00:30:00, got '\(fields[0])'")
            }
            guard let v = Double(fields[1]), v.isFinite, v >= 0 else {
                throw CarbonDataError.invalidPoint(file: file, index: lineNumber, field: "Carbon Intensity", message: "expected a number ≥ 0, got '\(fields[1])'")
            }
            if let last = starts.last, t <= last {
                throw CarbonDataError.unordered(file: file, index: lineNumber, message: "\(fields[0]) is not after the line before")
            }
            starts.append(t)
            values.append(v)
        }
        guard !starts.isEmpty else { throw CarbonDataError.empty(file: file) }
        return starts.indices.map { i in
            let duration = i + 1 < starts.count ? starts[i + 1] - starts[i] : (i > 0 ? starts[i] - starts[i - 1] : 3600)
            return TimedValue(start: starts[i], duration: duration, value: values[i])
        }
    }
}
