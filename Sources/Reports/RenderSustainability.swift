import Foundation

extension Render {
    static let disclosureOrder: [(String, String)] = [
        ("score", "SCI score"), ("functionalUnit", "Functional unit"), ("softwareBoundary", "Software boundary"), ("energyMethod", "Energy (E) method"),
        ("intensitySignal", "Carbon intensity (I)"), ("factorType", "Emission factor type"), ("embodiedModel", "Embodied emissions (M)"),
        ("conversionFactors", "Conversion factors"), ("marketBasedStatement", "Market-based measures"), ("period", "Period and inclusion"),
    ]

    static func summaryRows(_ r: SustainabilityReport) -> [(String, String)] {
        var rows: [(String, String)] = [
            ("Facility energy", "\(number(r.facilityKWh)) kWh"),
            ("IT energy (GPUs + hosts)", "\(number(r.itKWh)) kWh = GPUs \(number(r.gpuKWh)) + hosts \(number(r.hostKWh))"),
            ("Facility overhead (PUE)", "\(number(r.facilityOverheadKWh)) kWh"),
            ("Runs covered", r.scope),
            ("Grid emissions, location-based (every factor type; the SCI's O)", "\(number(r.locationBasedKg)) kgCO2e (mean \(number(r.meanLocationIntensityGramsPerKWh)) g/kWh)"),
            ("Scope 2, location-based (direct combustion factors)",
             r.runs.contains { $0.carbonFactor == "direct" } ? "\(number(r.scope2LocationBasedKg)) kgCO2e" : "none: no run in scope uses direct factors (see below)"),
        ]
        if r.runs.contains(where: { $0.carbonFactor == "lifecycle" }) {
            rows.append(("Grid emissions at life-cycle factors (reported apart from Scope 2)", "\(number(r.lifecycleGridKg)) kgCO2e"))
        }
        if r.runs.contains(where: { $0.carbonFactor == "unspecified" }) {
            rows.append(("Grid emissions, factor type not stated by the source (not classed as Scope 2)", "\(number(r.unstatedFactorGridKg)) kgCO2e"))
        }
        if let m = r.scope2MarketBased {
            rows.append(("Scope 2, market-based (reported separately)", "\(number(m.kg)) kgCO2e at \(number(m.factorGramsPerKWh)) g/kWh (\(m.instrument))"))
        }
        rows.append(("Embodied emissions (GPUs)", "\(number(r.embodiedKg)) kgCO2e"))
        rows.append(("SCI per request", r.sci.perRequestGrams.map { "\(number($0)) gCO2e" } ?? "—"))
        rows.append(("SCI per 1,000 tokens", r.sci.per1000TokensGrams.map { "\(number($0)) gCO2e" } ?? "—"))
        rows.append(("Requests (finished, arrived in the period)", r.sci.requests.formatted()))
        if let t = r.training {
            rows.append((
                "Training share (beside SCI, not in it)",
                "\(number(t.carbonKg)) kgCO2e, \(number(t.facilityKWh)) kWh, \(number(t.gpuHours)) GPU-hours for \(t.tokens.formatted()) tokens; \(number(t.perRequestGrams)) gCO2e per request (\(t.plans))"
            ))
        }
        return rows
    }

    public static func markdown(_ r: SustainabilityReport) -> String {
        var s = "# \(r.title)\n\nGenerated \(r.generatedAt) from the ledger `\(r.ledger)`; \(r.runs.count) run(s).\n\n## Summary\n\n| Figure | Value |\n|---|---|\n"
        for (k, v) in summaryRows(r) { s += "| \(k) | \(v) |\n" }
        s += "\n## Trend (per \(r.trendBucket))\n\n| From | Facility kWh | Location-based kgCO2e | Requests | SCI g/request |\n|---|---|---|---|---|\n"
        for b in r.trend {
            s += "| \(b.start) | \(number(b.facilityKWh)) | \(number(b.locationBasedKg)) | \(b.requests.formatted()) | \(b.sciGramsPerRequest.map(number) ?? "—") |\n"
        }
        s += "\n## SCI disclosures\n\n"
        for (key, label) in disclosureOrder { s += "- **\(label).** \(r.disclosures[key] ?? "—")\n" }
        if let writers = r.byWriter {
            s += "\n## By writer\n\n| Writer | Runs | Facility kWh | Location-based kgCO2e | Embodied kgCO2e | Requests |\n|---|---|---|---|---|---|\n"
            for w in writers {
                s += "| \(w.writer) | \(w.runs.map(String.init).joined(separator: ", ")) | \(number(w.facilityKWh)) | \(number(w.locationBasedKg)) | \(number(w.embodiedKg)) | \(w.requests.formatted()) |\n"
            }
            s += "| **Total** | \(r.runs.count) | \(number(r.facilityKWh)) | \(number(r.locationBasedKg)) | \(number(r.embodiedKg)) | \(r.sci.requests.formatted()) |\n"
        }
        s += "\n## Runs\n\n| Run | Name | Mode | Source | Status | Writer | Facility kWh | Location-based kgCO2e | Factor type | Region | Signal | Intensity source | Embodied model | PUE |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        for x in r.runs {
            s += "| \(x.run) | \(x.name) | \(x.mode) | \(x.source) | \(x.status) | \(x.writer ?? "—") | \(number(x.facilityKWh)) | \(number(x.locationBasedKg)) | \(x.carbonFactor) | \(x.carbonRegion ?? "—") | \(x.carbonSignal ?? "—") | \(x.carbonSource ?? "—") | \(x.embodiedModel ?? "—") | \(x.pue.map(number) ?? "—") |\n"
        }
        s += "\n## Data sources\n\n" + r.sources.map { "- \($0)\n" }.joined()
        return s
    }

    public static func csv(_ r: SustainabilityReport) -> String {
        func q(_ t: String) -> String { t.contains(",") || t.contains("\"") ? "\"" + t.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : t }
        var s = "section,key,value,unit\n"
        let values: [(String, Double?, String)] = [
            ("facility energy", r.facilityKWh, "kWh"), ("IT energy", r.itKWh, "kWh"), ("GPU energy", r.gpuKWh, "kWh"), ("host energy", r.hostKWh, "kWh"),
            ("facility overhead", r.facilityOverheadKWh, "kWh"), ("grid emissions location-based (all factor types)", r.locationBasedKg, "kgCO2e"),
            ("scope 2 location-based (direct factors)", r.scope2LocationBasedKg, "kgCO2e"), ("grid emissions at life-cycle factors", r.lifecycleGridKg, "kgCO2e"),
            ("grid emissions factor type not stated", r.unstatedFactorGridKg, "kgCO2e"),
            ("scope 2 market-based", r.scope2MarketBased?.kg, "kgCO2e"), ("embodied", r.embodiedKg, "kgCO2e"),
            ("SCI per request", r.sci.perRequestGrams, "gCO2e"), ("SCI per 1000 tokens", r.sci.per1000TokensGrams, "gCO2e"),
            ("requests", Double(r.sci.requests), "requests"),
            ("training share carbon", r.training?.carbonKg, "kgCO2e"), ("training share energy", r.training?.facilityKWh, "kWh"),
            ("training share GPU-hours", r.training?.gpuHours, "GPU-hours"), ("training share per request", r.training?.perRequestGrams, "gCO2e"),
        ]
        for (k, v, u) in values { s += "summary,\(q(k)),\(v.map { String($0) } ?? ""),\(u)\n" }
        for b in r.trend {
            s += "trend,\(b.start) facility energy,\(b.facilityKWh),kWh\ntrend,\(b.start) location-based,\(b.locationBasedKg),kgCO2e\n"
            s += "trend,\(b.start) requests,\(b.requests),requests\ntrend,\(b.start) SCI per request,\(b.sciGramsPerRequest.map { String($0) } ?? ""),gCO2e\n"
        }
        for w in r.byWriter ?? [] {
            s += "writer,\(q(w.writer)) facility energy,\(w.facilityKWh),kWh\nwriter,\(q(w.writer)) location-based,\(w.locationBasedKg),kgCO2e\n"
            s += "writer,\(q(w.writer)) embodied,\(w.embodiedKg),kgCO2e\nwriter,\(q(w.writer)) requests,\(w.requests),requests\n"
        }
        for (key, _) in disclosureOrder { s += "disclosure,\(key),\(q(r.disclosures[key] ?? "")),\n" }
        return s
    }

    public static func html(_ r: SustainabilityReport) -> String {
        let e = SVG.esc
        var s = pageHead(title: r.title, style: "td { text-align: left; }") + """
        <h1>\(e(r.title))</h1>
        <p class="note">Generated \(e(r.generatedAt)) from the ledger <code>\(e(r.ledger))</code>; \(r.runs.count) run(s): \(e(r.scope)). Scope 2 location-based takes direct (combustion) grid factors; runs at life-cycle factors are reported apart, labelled. A market-based figure appears only from contractual factors given to the report, and never reduces the SCI.</p>
        <h2>Summary</h2><table><tbody>
        """
        for (k, v) in summaryRows(r) { s += "<tr><th>\(e(k))</th><td>\(e(v))</td></tr>\n" }
        s += "</tbody></table>\n<h2>Trend (per \(e(r.trendBucket)))</h2><div class=\"charts\">\n"
        // Bucketed totals as bars on the wall clock: a one-hour period is one bar, not a line.
        let seconds = r.trendBucket == "hour" ? 3600.0 : 86_400
        s += SVG.timeBars(title: "Facility energy per \(r.trendBucket)", unit: "kWh", bucketSeconds: seconds, bars: r.trend.map { ($0.startEpochSeconds, $0.facilityKWh) })
        s += SVG.timeBars(title: "Grid emissions per \(r.trendBucket), location-based", unit: "kgCO2e", bucketSeconds: seconds, bars: r.trend.map { ($0.startEpochSeconds, $0.locationBasedKg) })
        s += SVG.timeBars(title: "SCI per request, by \(r.trendBucket)", unit: "gCO2e per request", bucketSeconds: seconds,
                          bars: r.trend.compactMap { b in b.sciGramsPerRequest.map { (b.startEpochSeconds, $0) } })
        s += "\n</div>\n<h2>SCI disclosures</h2><table><tbody>\n"
        for (key, label) in disclosureOrder { s += "<tr><th>\(e(label))</th><td>\(e(r.disclosures[key] ?? "—"))</td></tr>\n" }
        s += "</tbody></table>\n"
        if let writers = r.byWriter {
            s += "<h2>By writer</h2><table><thead><tr><th>Writer</th><th>Runs</th><th>Facility kWh</th><th>Location-based kgCO2e</th><th>Embodied kgCO2e</th><th>Requests</th></tr></thead><tbody>\n"
            for w in writers {
                s += "<tr><td>\(e(w.writer))</td><td>\(w.runs.map(String.init).joined(separator: ", "))</td><td>\(number(w.facilityKWh))</td><td>\(number(w.locationBasedKg))</td><td>\(number(w.embodiedKg))</td><td>\(w.requests.formatted())</td></tr>\n"
            }
            s += "<tr><th>Total</th><td>\(r.runs.count)</td><td>\(number(r.facilityKWh))</td><td>\(number(r.locationBasedKg))</td><td>\(number(r.embodiedKg))</td><td>\(r.sci.requests.formatted())</td></tr>\n</tbody></table>\n"
        }
        s += "<h2>Runs</h2><table><thead><tr><th>Run</th><th>Name</th><th>Mode</th><th>Source</th><th>Status</th><th>Writer</th><th>Facility kWh</th><th>Location-based kgCO2e</th><th>Factor type</th><th>Region</th><th>Signal</th><th>Intensity source</th><th>Embodied model</th><th>PUE</th></tr></thead><tbody>\n"
        for x in r.runs {
            s += "<tr><td>\(x.run)</td><td>\(e(x.name))</td><td>\(e(x.mode))</td><td>\(e(x.source))</td><td>\(e(x.status))</td><td>\(e(x.writer ?? "—"))</td><td>\(number(x.facilityKWh))</td><td>\(number(x.locationBasedKg))</td><td>\(e(x.carbonFactor))</td><td>\(e(x.carbonRegion ?? "—"))</td><td>\(e(x.carbonSignal ?? "—"))</td><td>\(e(x.carbonSource ?? "—"))</td><td>\(e(x.embodiedModel ?? "—"))</td><td>\(x.pue.map(number) ?? "—")</td></tr>\n"
        }
        s += "</tbody></table>\n<h2>Data sources</h2><ul>" + r.sources.map { "<li>\(e($0))</li>" }.joined() + "</ul>\n"
        return s + "</body></html>\n"
    }
}
