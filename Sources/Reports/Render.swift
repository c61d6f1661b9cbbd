import Foundation

/// The report formats.
public enum ReportFormat: String, CaseIterable, Sendable {
    case md, html, json, csv
}

extension Figure {
    /// The value with its unit, in a precision that suits its size.
    var text: String {
        guard let v = value else { return "—" }
        return "\(Render.number(v)) \(unit)"
    }

    /// "+3.1 % [+2.0, +4.2]", or "" for the baseline.
    var deltaText: String {
        guard let d = deltaPercent else { return "" }
        var t = Render.signed(d) + " %"
        if let lo = ciLowPercent, let hi = ciHighPercent { t += " [\(Render.signed(lo)), \(Render.signed(hi))]" }
        return t
    }
}

/// A report that every format can show.
public protocol FormattedReport: Encodable {
    var markdownText: String { get }
    var htmlText: String { get }
    var csvText: String { get }
}

extension ComparisonReport: FormattedReport {
    public var markdownText: String { Render.markdown(self) }
    public var htmlText: String { Render.html(self) }
    public var csvText: String { Render.csv(self) }
}

extension SustainabilityReport: FormattedReport {
    public var markdownText: String { Render.markdown(self) }
    public var htmlText: String { Render.html(self) }
    public var csvText: String { Render.csv(self) }
}

public enum Render {
    /// `report` in `format`; JSON with sorted keys, readable.
    public static func text(_ report: some FormattedReport, as format: ReportFormat) throws -> String {
        switch format {
        case .md: return report.markdownText
        case .html: return report.htmlText
        case .csv: return report.csvText
        case .json:
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            return String(decoding: try encoder.encode(report), as: UTF8.self) + "\n"
        }
    }

    /// The start of a self-contained HTML page: the shared style, plus `style` for this page.
    public static func pageHead(title: String, style: String) -> String {
        """
        <!DOCTYPE html>
        <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
        <title>\(SVG.esc(title))</title>
        <style>
        body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1100px; color: #222; line-height: 1.45; padding: 0 1rem; }
        h1 { font-size: 1.5rem; } h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
        table { border-collapse: collapse; font-size: 0.9rem; width: 100%; } th, td { border: 1px solid #ddd; padding: 0.3rem 0.5rem; } th { background: #f4f6f8; }
        .charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 1rem; } .charts svg { max-width: 100%; height: auto; border: 1px solid #eee; }
        .note { color: #555; font-size: 0.9rem; }
        \(style)
        </style></head><body>

        """
    }

    public static func number(_ v: Double) -> String {
        let a = abs(v)
        if a == 0 { return "0" }
        if a >= 1000 { return v.formatted(.number.precision(.fractionLength(0))) }
        if a >= 10 { return v.formatted(.number.precision(.fractionLength(1))) }
        if a >= 1e-4 { return v.formatted(.number.precision(.significantDigits(3))) }
        return v.formatted(.number.precision(.significantDigits(3)).notation(.scientific))
    }

    static func signed(_ v: Double) -> String { (v >= 0 ? "+" : "−") + abs(v).formatted(.number.precision(.fractionLength(1))) }

    static func configurations(_ r: ComparisonReport) -> [ConfigurationFigures] { [r.baseline] + r.candidates }

    static func label(_ c: ConfigurationFigures) -> String { "\(c.name) (run \(c.run), \(c.mode))" }

    // MARK: Markdown

    public static func markdown(_ r: ComparisonReport) -> String {
        let configs = configurations(r)
        var s = "# \(r.title)\n\nGenerated \(r.generatedAt) from the ledger `\(r.ledger)`. Baseline: \(label(r.baseline)).\n\n"
        s += "## Figures\n\n| Figure | " + configs.map { label($0) + ($0.role == "baseline" ? " — baseline" : "") }.joined(separator: " | ") + " |\n"
        s += "|---|" + configs.map { _ in "---|" }.joined() + "\n"
        for (i, row) in r.baseline.rows.enumerated() {
            s += "| \(row.label) | " + configs.map { c in
                let f = c.rows[i].figure
                return f.text + (f.deltaText.isEmpty ? "" : " (\(f.deltaText))")
            }.joined(separator: " | ") + " |\n"
        }
        s += "\nDeltas are against the baseline, with bootstrap 95 % intervals in brackets.\n\n## Configurations\n\n"
        for c in configs {
            s += "- **\(label(c))**: \(c.requests.formatted()) finished requests (\(c.inFlightAtEnd.formatted()) in flight at the end) over \(number(c.simulatedSeconds)) s simulated; "
            if let e = c.experts {
                s += "\(e.routedExperts) of \(e.denseRoutedExperts) routed experts, \(number(e.activeExpertsPerToken)) per token, "
                s += e.pools.map { "\($0.role) EP\($0.expertParallel) (imbalance \(number($0.expertLoadImbalance)))" }.joined(separator: ", ")
                if let f = c.fidelity, c.role == "candidate" || f.relativeError > 0 {
                    s += "; fidelity proxy: relative error \(number(f.relativeError)), cosine \(number(f.cosineSimilarity)), router mass removed \(number(100 * f.routerMassRemoved)) %"
                }
                s += ".\n"
            } else {
                s += "no expert-routing model (the serving defaults' load imbalance).\n"
            }
        }
        s += "\n## Energy breakdown (kWh)\n\n| Configuration | GPU active | GPU idle | Host | Facility overhead (PUE) |\n|---|---|---|---|---|\n"
        for c in configs {
            let b = c.energyBreakdownKWh
            s += "| \(label(c)) | \(number(b["gpuActive"] ?? 0)) | \(number(b["gpuIdle"] ?? 0)) | \(number(b["host"] ?? 0)) | \(number(b["facilityOverhead"] ?? 0)) |\n"
        }
        s += "\nThe HTML format draws the energy distribution, the latency CDF, power over time and this breakdown as charts.\n\n"
        s += r.modelVsMeters.map(modelVsMetersMarkdown).joined()
        s += methodologyMarkdown(r.methodology)
        return s
    }

    static func methodologyMarkdown(_ m: Methodology) -> String {
        var s = "## Methodology\n\n"
        s += "- **Boundary.** \(m.boundary)\n- **Attribution.** \(m.attribution)\n- **Carbon signal.** \(m.carbonSignal)\n"
        s += "- **Embodied emissions.** \(m.embodied)\n- **Fidelity.** \(m.fidelity)\n- **Statistics.** \(m.statistics)\n"
        s += "\n### Assumptions\n\n" + m.assumptions.map { "- \($0)\n" }.joined()
        s += "\n### Data sources\n\n" + m.sources.map { "- \($0)\n" }.joined()
        return s
    }

    // MARK: CSV

    public static func csv(_ r: ComparisonReport) -> String {
        var s = "run,name,role,figure,value,unit,delta_percent,ci_low_percent,ci_high_percent\n"
        func q(_ t: String) -> String { t.contains(",") || t.contains("\"") ? "\"" + t.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : t }
        func v(_ d: Double?) -> String { d.map { String($0) } ?? "" }
        for c in configurations(r) {
            for row in c.rows {
                let f = row.figure
                s += [String(c.run), q(c.name), c.role, q(row.label), v(f.value), f.unit, v(f.deltaPercent), v(f.ciLowPercent), v(f.ciHighPercent)].joined(separator: ",") + "\n"
            }
            for (k, value) in c.energyBreakdownKWh.sorted(by: { $0.key < $1.key }) {
                s += [String(c.run), q(c.name), c.role, "energy breakdown: \(k)", String(value), "kWh", "", "", ""].joined(separator: ",") + "\n"
            }
            if let f = c.fidelity {
                for (k, value) in [("fidelity: relative error", f.relativeError), ("fidelity: cosine similarity", f.cosineSimilarity), ("fidelity: router mass removed", f.routerMassRemoved)] {
                    s += [String(c.run), q(c.name), c.role, q(k), String(value), "", "", "", ""].joined(separator: ",") + "\n"
                }
            }
        }
        return s + r.modelVsMeters.map(modelVsMetersCSV).joined()
    }

    // MARK: HTML

    public static func html(_ r: ComparisonReport) -> String {
        let configs = configurations(r)
        let e = SVG.esc
        var s = pageHead(title: r.title, style: """
        td { text-align: right; } th:first-child, td:first-child { text-align: left; }
        .delta { color: #555; font-size: 0.85em; display: block; } .better { color: #2b7a0b; } .worse { color: #b02a1f; }
        """) + """
        <h1>\(e(r.title))</h1>
        <p class="note">Generated \(e(r.generatedAt)) from the ledger <code>\(e(r.ledger))</code>. Baseline: \(e(label(r.baseline))). Deltas against the baseline with bootstrap 95 % intervals; a change is coloured only when its interval excludes zero.</p>
        <h2>Figures</h2>
        <table><thead><tr><th>Figure</th>
        """
        s += configs.map { "<th>\(e(label($0)))\($0.role == "baseline" ? "<br>baseline" : "")</th>" }.joined() + "</tr></thead><tbody>\n"
        // Lower is better for every figure but throughput.
        for (i, row) in r.baseline.rows.enumerated() {
            s += "<tr><td>\(e(row.label))</td>"
            for c in configs {
                let f = c.rows[i].figure
                var cell = e(f.text)
                if let d = f.deltaPercent {
                    let higherIsBetter = row.label.contains("tokens/s")
                    // Coloured only when the change is clear: an interval that spans zero is neutral.
                    let spansZero = f.ciLowPercent.map { low in f.ciHighPercent.map { low <= 0 && $0 >= 0 } ?? true } ?? false
                    let good = abs(d) < 0.05 || spansZero ? "" : ((d < 0) != higherIsBetter ? "better" : "worse")
                    cell += "<span class=\"delta \(good)\">\(e(f.deltaText))</span>"
                }
                s += "<td>\(cell)</td>"
            }
            s += "</tr>\n"
        }
        s += "</tbody></table>\n<h2>Configurations</h2><ul>\n"
        for c in configs {
            s += "<li><b>\(e(label(c)))</b>: \(c.requests.formatted()) finished requests over \(number(c.simulatedSeconds)) s simulated"
            if let x = c.experts {
                s += "; \(x.routedExperts) of \(x.denseRoutedExperts) routed experts, \(number(x.activeExpertsPerToken)) per token; "
                s += e(x.pools.map { "\($0.role) EP\($0.expertParallel), imbalance \(number($0.expertLoadImbalance))" }.joined(separator: "; "))
                if let f = c.fidelity {
                    s += "; fidelity proxy: relative error \(number(f.relativeError)), cosine \(number(f.cosineSimilarity)), router mass removed \(number(100 * f.routerMassRemoved)) %"
                }
            }
            s += "</li>\n"
        }
        s += "</ul>\n<h2>Charts</h2><div class=\"charts\">\n"
        let names = r.charts.map { chart in "\(chart.name) (\(chart.run)\(configs.first { $0.run == chart.run }?.mode == "measured" ? ", measured" : ""))" }
        let anyMeasured = configs.contains { $0.mode == "measured" }
        s += SVG.lineChart(
            title: "Energy per request (CDF)", xLabel: "Wh per request", yLabel: "share of requests",
            series: zip(names, r.charts).map { ($0, $1.energyQuantilesWh.enumerated().map { ($1, Double($0 + 1) / 100) }) }
        )
        s += SVG.lineChart(
            title: "End-to-end latency (CDF)", xLabel: "seconds", yLabel: "share of requests",
            series: zip(names, r.charts).map { ($0, $1.e2eQuantilesSeconds.enumerated().map { ($1, Double($0 + 1) / 100) }) }
        )
        s += SVG.lineChart(
            title: anyMeasured ? "Facility power over each run's time" : "Facility power over simulated time",
            xLabel: anyMeasured ? "seconds from each run's start (simulated or measured)" : "simulated seconds from each run's start", yLabel: "kW",
            series: zip(names, r.charts).map { ($0, $1.powerKW.map { ($0[0], $0[1]) }) }
        )
        s += SVG.stackedBars(
            title: "Energy breakdown", unit: "kWh", parts: ["GPU active", "GPU idle", "host", "facility overhead (PUE)"],
            bars: configs.map { c in (label(c), ["gpuActive", "gpuIdle", "host", "facilityOverhead"].map { c.energyBreakdownKWh[$0] ?? 0 }) }
        )
        s += "\n</div>\n" + r.modelVsMeters.map(modelVsMetersHTML).joined() + "<h2>Methodology</h2>\n"
        let m = r.methodology
        s += "<ul><li><b>Boundary.</b> \(e(m.boundary))</li><li><b>Attribution.</b> \(e(m.attribution))</li><li><b>Carbon signal.</b> \(e(m.carbonSignal))</li>"
        s += "<li><b>Embodied emissions.</b> \(e(m.embodied))</li><li><b>Fidelity.</b> \(e(m.fidelity))</li><li><b>Statistics.</b> \(e(m.statistics))</li></ul>\n"
        s += "<h3>Assumptions</h3><ul>" + m.assumptions.map { "<li>\(e($0))</li>" }.joined() + "</ul>\n"
        s += "<h3>Data sources</h3><ul>" + m.sources.map { "<li>\(e($0))</li>" }.joined() + "</ul>\n"
        return s + "</body></html>\n"
    }
}
