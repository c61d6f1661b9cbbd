/// Renders calibration rows as the Markdown table of `docs/calibration.md`.
public enum CalibrationReport {
    /// A number with up to four significant digits, grouped, without exponent for everyday magnitudes.
    public static func format(_ value: Double) -> String {
        let magnitude = abs(value)
        if magnitude >= 1e9 { return trim(value / 1e9, digits: 2) + "e9" }
        if magnitude >= 1000 { return trim(value, digits: 0) }
        if magnitude >= 100 { return trim(value, digits: 1) }
        if magnitude >= 1 { return trim(value, digits: 2) }
        return trim(value, digits: 4)
    }

    private static func trim(_ value: Double, digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        if digits == 0 { return String(Int(rounded)) }
        var text = String(rounded)
        if let dot = text.firstIndex(of: ".") {
            let decimals = text.distance(from: dot, to: text.endIndex) - 1
            if decimals < digits { text += String(repeating: "0", count: digits - decimals) }
        }
        return text
    }

    /// The Markdown table: id, figure, published, Joule, error, tolerance, verdict, source.
    public static func markdown(_ rows: [CalibrationRow]) -> String {
        var lines = [
            "| check | figure | unit | published | Joule | error | tolerance | verdict | source |",
            "|---|---|---|---:|---:|---:|---:|---|---|",
        ]
        for row in rows {
            let t = row.target
            let error = trim(row.relativeError * 100, digits: 1) + " %"
            let tolerance = t.tolerance.map { "±" + trim($0 * 100, digits: 0) + " %" } ?? "—"
            let verdict = switch row.passed {
            case .some(true): "pass"
            case .some(false): "**FAIL**"
            case .none: "shown only"
            }
            lines.append("| `\(t.id)` | \(t.description) | \(t.unit) | \(format(t.published)) | \(format(row.computed)) | \(error) | \(tolerance) | \(verdict) | \(t.source) |")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// A one-line summary: how many rows passed, failed, or are shown only.
    public static func summary(_ rows: [CalibrationRow]) -> String {
        let passed = rows.filter { $0.passed == true }.count
        let failed = rows.filter { $0.passed == false }.count
        let shown = rows.filter { $0.passed == nil }.count
        return "\(passed) passed, \(failed) failed, \(shown) shown only"
    }
}
