import Accounting
import Foundation

/// Small, self-contained SVG charts (no scripts, no external assets) for the HTML reports.
public enum SVG {
    public static let palette = ["#1f6f8b", "#e07a2e", "#4c9a2a", "#9b3f8f", "#c43c39", "#5d5d5d"]

    /// `s` with `&`, `<`, `>` and `"` escaped for HTML text and attributes.
    public static func esc(_ s: String) -> String {
        guard s.utf8.contains(where: { $0 == 0x26 || $0 == 0x3C || $0 == 0x3E || $0 == 0x22 }) else { return s }
        var out = ""
        out.reserveCapacity(s.utf8.count + 16)
        for c in s.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    /// `v` with two decimals, as `String(format: "%.2f", v)` writes it (a coordinate: where `v` is
    /// within a rounding error of a tie between two hundredths, either may be written).
    static func n(_ v: Double) -> String {
        let scaled = (v * 100).rounded(.toNearestOrEven)
        guard scaled.isFinite, abs(scaled) < 1e15 else { return String(format: "%.2f", v) }
        let hundredths = Int64(abs(scaled))
        let fraction = hundredths % 100
        return (v.sign == .minus ? "-" : "") + String(hundredths / 100) + (fraction < 10 ? ".0" : ".") + String(fraction)
    }

    /// A "nice" tick step for a range.
    static func ticks(_ low: Double, _ high: Double, count: Int = 5) -> [Double] {
        guard high > low else { return [low] }
        let raw = (high - low) / Double(count)
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        var t = (low / step).rounded(.up) * step
        var out: [Double] = []
        while t <= high + step * 1e-9 { out.append(t); t += step }
        return out
    }

    /// A legend entry short enough for the legend's column (about 30 characters).
    static func legend(_ name: String) -> String { name.count <= 30 ? name : String(name.prefix(29)) + "…" }

    static func label(_ v: Double) -> String {
        let a = abs(v)
        if a == 0 { return "0" }
        if a >= 1e6 { return String(format: "%.3gM", v / 1e6) }
        if a >= 1e4 { return String(format: "%.3gk", v / 1e3) }
        if a >= 1 { return String(format: "%.4g", v) }
        return String(format: "%.3g", v)
    }

    /// Lines over shared axes; each series is (name, points).
    public static func lineChart(title: String, xLabel: String, yLabel: String, series: [(name: String, points: [(Double, Double)])], width: Double = 640, height: Double = 320) -> String {
        plot(title: title, xLabel: { _ in xLabel }, yLabel: yLabel, series: series, xTicks: { ticks($0, $1).map { ($0, label($0)) } }, width: width, height: height)
    }

    /// Points over shared axes (a scatter plot), drawn in series order (the last on top); a series
    /// with `connected` true is also joined by a line, in x order; `color` nil takes the palette's.
    public static func scatter(
        title: String, xLabel: String, yLabel: String, series: [(name: String, points: [(Double, Double)], connected: Bool, color: String?)],
        width: Double = 640, height: Double = 360
    ) -> String {
        plot(
            title: title, xLabel: { _ in xLabel }, yLabel: yLabel,
            series: series.map { ($0.name, $0.connected ? $0.points.sorted { $0.0 < $1.0 } : $0.points) },
            xTicks: { ticks($0, $1).map { ($0, label($0)) } }, connected: series.map(\.connected), padded: true,
            colors: series.enumerated().map { $1.color ?? palette[$0 % palette.count] }, width: width, height: height
        )
    }

    /// The SVG element, its background and its title.
    static func open(_ title: String, left: Double, width: Double, height: Double) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 \(n(width)) \(n(height))\" width=\"\(n(width))\" height=\"\(n(height))\" role=\"img\" aria-label=\"\(esc(title))\">"
            + "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>"
            + "<text x=\"\(n(left))\" y=\"20\" font-size=\"14\" font-weight=\"bold\" fill=\"#222\">\(esc(title))</text>"
    }

    /// Horizontal grid lines with their labels at `values`.
    static func yGrid(_ values: [Double], left: Double, right: Double, width: Double, py: (Double) -> Double) -> String {
        values.map { t in
            "<line x1=\"\(n(left))\" x2=\"\(n(width - right))\" y1=\"\(n(py(t)))\" y2=\"\(n(py(t)))\" stroke=\"#e4e4e4\"/>"
                + "<text x=\"\(n(left - 6))\" y=\"\(n(py(t) + 4))\" font-size=\"11\" text-anchor=\"end\" fill=\"#444\">\(label(t))</text>"
        }.joined()
    }

    /// The x tick labels, the axis lines (the y one with `yAxisLine`) and both axis titles.
    static func axes(
        xTicks: [(Double, String)], px: (Double) -> Double, xLabel: String, yLabel: String, yAxisLine: Bool,
        left: Double, right: Double, top: Double, bottom: Double, width: Double, height: Double
    ) -> String {
        var s = xTicks.map { "<text x=\"\(n(px($0.0)))\" y=\"\(n(height - bottom + 16))\" font-size=\"11\" text-anchor=\"middle\" fill=\"#444\">\($0.1)</text>" }.joined()
        s += "<line x1=\"\(n(left))\" x2=\"\(n(width - right))\" y1=\"\(n(height - bottom))\" y2=\"\(n(height - bottom))\" stroke=\"#888\"/>"
        if yAxisLine { s += "<line x1=\"\(n(left))\" x2=\"\(n(left))\" y1=\"\(n(top))\" y2=\"\(n(height - bottom))\" stroke=\"#888\"/>" }
        s += "<text x=\"\(n((left + width - right) / 2))\" y=\"\(n(height - 10))\" font-size=\"12\" text-anchor=\"middle\" fill=\"#222\">\(esc(xLabel))</text>"
        s += "<text transform=\"translate(14 \(n((top + height - bottom) / 2))) rotate(-90)\" font-size=\"12\" text-anchor=\"middle\" fill=\"#222\">\(esc(yLabel))</text>"
        return s
    }

    /// Lines over shared axes, the x ticks from `xTicks` over the data's range (numbers, or times
    /// of day), the x title from the range's start; an optional shaded span marks a window.
    static func plot(
        title: String, xLabel: (Double) -> String, yLabel: String, series: [(name: String, points: [(Double, Double)])],
        xTicks: (Double, Double) -> [(Double, String)], mark: (start: Double, end: Double, label: String)? = nil,
        connected: [Bool]? = nil, padded: Bool = false, colors: [String]? = nil, width: Double, height: Double
    ) -> String {
        let left = 64.0, right = 16.0, top = 32.0, bottom = 48.0
        // Only finite points are drawn: a value a ledger should never hold does not bend the axes.
        let series = series.map { (name: $0.name, points: $0.points.filter { $0.0.isFinite && $0.1.isFinite }) }
        let all = series.flatMap(\.points)
        let xs = all.map(\.0), ys = all.map(\.1)
        // A single point (or none) gets a unit-wide axis rather than a vanishing one.
        var x0 = xs.min() ?? 0, x1 = (xs.max() ?? x0) > x0 ? xs.max() ?? x0 + 1 : x0 + 1
        var y1 = max(ys.max() ?? 1, 1e-9) * 1.05
        let y0 = min(0, ys.min() ?? 0)
        // Points clear of the frame, and of the legend in the top right corner.
        if padded {
            let span = x1 - x0
            x0 -= 0.06 * span
            x1 += 0.06 * span
            y1 = y0 + (y1 - y0) * 1.35
        }
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * (width - left - right) }
        func py(_ y: Double) -> Double { height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom) }
        var s = open(title, left: left, width: width, height: height)
        if let m = mark {
            let a = px(max(m.start, x0)), b = px(min(m.end, x1))
            s += "<rect data-window=\"chosen\" x=\"\(n(a))\" y=\"\(n(top))\" width=\"\(n(max(1, b - a)))\" height=\"\(n(height - top - bottom))\" fill=\"#4c9a2a\" fill-opacity=\"0.18\" stroke=\"#4c9a2a\"/>"
            s += "<text x=\"\(n(a + 4))\" y=\"\(n(top + 14))\" font-size=\"11\" fill=\"#2e6b16\">\(esc(m.label))</text>"
        }
        s += yGrid(ticks(y0, y1), left: left, right: right, width: width, py: py)
        s += axes(xTicks: xTicks(x0, x1), px: px, xLabel: xLabel(x0), yLabel: yLabel, yAxisLine: true,
                  left: left, right: right, top: top, bottom: bottom, width: width, height: height)
        for (i, line) in series.enumerated() {
            let color = colors?[i] ?? palette[i % palette.count]
            let joined = connected?[i] ?? true
            if joined {
                let path = line.points.map { "\(n(px($0.0))),\(n(py($0.1)))" }.joined(separator: " ")
                s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(path)\"/>"
            }
            // Few points, or points not joined: mark each one, so a single point still shows.
            if line.points.count <= 48 || !joined {
                for p in line.points { s += "<circle cx=\"\(n(px(p.0)))\" cy=\"\(n(py(p.1)))\" r=\"3\" fill=\"\(color)\"/>" }
            }
            let ly = top + 4 + Double(i) * 16
            s += "<rect x=\"\(n(width - right - 190))\" y=\"\(n(ly))\" width=\"12\" height=\"3\" fill=\"\(color)\"/>"
            s += "<text x=\"\(n(width - right - 172))\" y=\"\(n(ly + 5))\" font-size=\"11\" fill=\"#222\">\(esc(legend(line.name)))</text>"
        }
        return s + "</svg>"
    }

    /// One stacked bar per configuration.
    public static func stackedBars(title: String, unit: String, parts: [String], bars: [(name: String, values: [Double])], width: Double = 640, height: Double = 320) -> String {
        let left = 64.0, right = 170.0, top = 32.0, bottom = 48.0
        let high = max(bars.map { $0.values.reduce(0, +) }.max() ?? 1, 1e-9) * 1.05
        func py(_ y: Double) -> Double { height - bottom - y / high * (height - top - bottom) }
        let slot = (width - left - right) / Double(max(bars.count, 1))
        var s = open(title, left: left, width: width, height: height)
        s += yGrid(ticks(0, high), left: left, right: right, width: width, py: py)
        s += "<text transform=\"translate(14 \(n((top + height - bottom) / 2))) rotate(-90)\" font-size=\"12\" text-anchor=\"middle\" fill=\"#222\">\(esc(unit))</text>"
        for (i, bar) in bars.enumerated() {
            var base = 0.0
            let x = left + Double(i) * slot + slot * 0.2
            for (j, v) in bar.values.enumerated() {
                s += "<rect x=\"\(n(x))\" y=\"\(n(py(base + v)))\" width=\"\(n(slot * 0.6))\" height=\"\(n(max(0, py(base) - py(base + v))))\" fill=\"\(palette[j % palette.count])\"/>"
                base += v
            }
            s += "<text x=\"\(n(x + slot * 0.3))\" y=\"\(n(height - bottom + 16))\" font-size=\"11\" text-anchor=\"middle\" fill=\"#222\">\(esc(bar.name))</text>"
        }
        for (j, part) in parts.enumerated() {
            let ly = top + 4 + Double(j) * 16
            s += "<rect x=\"\(n(width - right + 12))\" y=\"\(n(ly - 4))\" width=\"10\" height=\"10\" fill=\"\(palette[j % palette.count])\"/>"
            s += "<text x=\"\(n(width - right + 28))\" y=\"\(n(ly + 5))\" font-size=\"11\" fill=\"#222\">\(esc(part))</text>"
        }
        s += "<line x1=\"\(n(left))\" x2=\"\(n(width - right))\" y1=\"\(n(height - bottom))\" y2=\"\(n(height - bottom))\" stroke=\"#888\"/>"
        return s + "</svg>"
    }

    /// Tick times on a wall-clock axis over [t0, t1] (seconds since 1970, UTC) and how to write
    /// each: whole hours (HH:MM) for a span up to two days, whole days (MM-DD) beyond.
    static func timeTicks(_ t0: Double, _ t1: Double) -> [(t: Double, label: String)] {
        let span = max(t1 - t0, 1)
        let steps: [Double] = [60, 300, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800, 604_800, 2_592_000]
        let step = steps.first { span / $0 <= 8 } ?? span / 8
        var out: [(Double, String)] = []
        var t = (t0 / step).rounded(.up) * step
        let formatter = DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.dateFormat = step >= 86_400 ? "MM-dd" : "HH:mm"
        while t <= t1 + 1e-6 && out.count < 12 {
            out.append((t, formatter.string(from: Date(timeIntervalSince1970: t))))
            t += step
        }
        return out
    }

    /// Bucketed totals as bars on a wall-clock axis: one bar per bucket [start, start + seconds),
    /// at its place in time (a gap shows as a gap), labelled in UTC.
    public static func timeBars(title: String, unit: String, bucketSeconds: Double, bars: [(start: Double, value: Double)], width: Double = 640, height: Double = 320) -> String {
        let left = 64.0, right = 16.0, top = 32.0, bottom = 48.0
        let bars = bars.filter { $0.start.isFinite && $0.value.isFinite }
        let t0 = bars.map(\.start).min() ?? 0, t1 = (bars.map(\.start).max() ?? t0) + bucketSeconds
        let high = max(bars.map(\.value).max() ?? 1, 1e-12) * 1.05
        func px(_ t: Double) -> Double { left + (t - t0) / max(t1 - t0, 1) * (width - left - right) }
        func py(_ y: Double) -> Double { height - bottom - y / high * (height - top - bottom) }
        var s = open(title, left: left, width: width, height: height)
        s += yGrid(ticks(0, high), left: left, right: right, width: width, py: py)
        for b in bars {
            let x = px(b.start), w = max(1, px(b.start + bucketSeconds) - x - 2)
            s += "<rect x=\"\(n(x + 1))\" y=\"\(n(py(b.value)))\" width=\"\(n(w))\" height=\"\(n(max(0, py(0) - py(b.value))))\" fill=\"\(palette[0])\"><title>\(esc(WallClock.string(b.start))): \(label(b.value)) \(esc(unit))</title></rect>"
        }
        s += axes(xTicks: timeTicks(t0, t1).map { ($0.t, $0.label) }, px: px, xLabel: "UTC, from \(WallClock.string(t0))", yLabel: unit, yAxisLine: false,
                  left: left, right: right, top: top, bottom: bottom, width: width, height: height)
        return s + "</svg>"
    }

    /// Lines over a wall-clock x axis (seconds since 1970), ticks in UTC; an optional shaded span
    /// marks a window (the scheduler's choice).
    public static func timeLineChart(
        title: String, yLabel: String, series: [(name: String, points: [(Double, Double)])], mark: (start: Double, end: Double, label: String)? = nil,
        width: Double = 640, height: Double = 320
    ) -> String {
        plot(title: title, xLabel: { "UTC, from \(WallClock.string($0))" }, yLabel: yLabel, series: series,
             xTicks: { timeTicks($0, $1).map { ($0.t, $0.label) } }, mark: mark, width: width, height: height)
    }
}
