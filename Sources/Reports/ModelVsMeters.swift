import Accounting
import Foundation
import Ledger

/// A measured run set beside a simulated replay of the same requests: where Joule's model and the
/// meters disagree, by phase and by batch size. Both runs are read whole and treated alike: GPU
/// energy per request (active plus its idle share), the same regression, the same batch estimate.
public struct ModelVsMeters: Encodable, Sendable {
    public struct PhaseRow: Encodable, Sendable {
        /// `prefill` (joules per uncached prompt token) or `decode` (joules per output token).
        public var phase: String
        public var measured: Double
        public var simulated: Double
        public var deltaPercent: Double
    }

    public struct BatchRow: Encodable, Sendable {
        /// Requests on the unit during a request's decode, binned by powers of two.
        public var batch: String
        public var measuredRequests: Int
        public var simulatedRequests: Int
        /// Median GPU joules per output token of the bin's requests.
        public var measuredJoulesPerOutputToken: Double?
        public var simulatedJoulesPerOutputToken: Double?
        /// Median time per output token.
        public var measuredTPOTSeconds: Double?
        public var simulatedTPOTSeconds: Double?
    }

    public var measuredRun: Int64
    public var simulatedRun: Int64
    public var measuredRequests: Int
    public var simulatedRequests: Int
    /// Requests found in both runs: the same arrival after each run's first (to 1 ms), and the same
    /// token counts (a replay keeps the gaps between arrivals, not the clock they started at).
    public var matchedRequests: Int
    /// Simulated ÷ measured GPU energy of matched requests: 5th, 50th and 95th percentiles.
    public var ratioP5: Double?
    public var ratioP50: Double?
    public var ratioP95: Double?
    public var phases: [PhaseRow]
    /// Share of the per-request GPU energy the two-phase fit explains, in each run.
    public var fitR2Measured: Double
    public var fitR2Simulated: Double
    public var batches: [BatchRow]
    public var measuredGPUKWh: Double
    public var simulatedGPUKWh: Double

    /// Reads both runs' request rows and compares them.
    public static func build(_ ledger: some LedgerQueries, measured: Int64, simulated: Int64) throws -> ModelVsMeters {
        var m: [RequestRecord] = [], s: [RequestRecord] = []
        // A server request cancelled (its client left, or past its limit) stops reading.
        try ledger.forEachRequest(.run(measured)) {
            m.append($0.record)
            if m.count & 0x3FF == 0 { try Task.checkCancellation() }
        }
        try ledger.forEachRequest(.run(simulated)) {
            s.append($0.record)
            if s.count & 0x3FF == 0 { try Task.checkCancellation() }
        }
        return compare(measured: m, simulated: s, measuredRun: measured, simulatedRun: simulated)
    }

    static func gpu(_ r: RequestRecord) -> Double { r.gpuActiveJoules + r.gpuIdleJoules }
    static func prefillTokens(_ r: RequestRecord) -> Double { Double(max(0, r.promptTokens - r.cachedTokens)) }

    public static func compare(measured m: [RequestRecord], simulated s: [RequestRecord], measuredRun: Int64, simulatedRun: Int64) -> ModelVsMeters {
        let mf = m.filter { !$0.inFlight }, sf = s.filter { !$0.inFlight }
        let (ma, mb, mr2) = phaseFit(mf), (sa, sb, sr2) = phaseFit(sf)
        func delta(_ x: Double, _ y: Double) -> Double { x != 0 ? 100 * (y - x) / x : 0 }
        // Match by arrival after each run's first, and by counts.
        func aligned(_ rs: [RequestRecord], _ all: [RequestRecord]) -> [RequestRecord] {
            let first = all.map(\.arrival).min() ?? 0
            return rs.map { r -> RequestRecord in
                var r = r
                r.arrival -= first
                return r
            }.sorted { $0.arrival < $1.arrival }
        }
        let ms = aligned(mf, m), ss = aligned(sf, s)
        var ratios: [Double] = []
        var j = 0
        for r in ms {
            while j < ss.count, ss[j].arrival < r.arrival - 1e-3 { j += 1 }
            var k = j
            while k < ss.count, ss[k].arrival <= r.arrival + 1e-3 {
                if ss[k].promptTokens == r.promptTokens && ss[k].outputTokens == r.outputTokens {
                    if gpu(r) > 0 { ratios.append(gpu(ss[k]) / gpu(r)) }
                    break
                }
                k += 1
            }
        }
        ratios.sort()
        func q(_ p: Double) -> Double? { ratios.isEmpty ? nil : ratios[min(ratios.count - 1, Int(p * Double(ratios.count - 1) + 0.5))] }
        let mb2 = batchBins(mf), sb2 = batchBins(sf)
        let keys = Set(mb2.keys).union(sb2.keys).sorted()
        func median(_ xs: [Double]) -> Double? {
            let v = xs.sorted()
            return v.isEmpty ? nil : v.count % 2 == 1 ? v[v.count / 2] : (v[v.count / 2 - 1] + v[v.count / 2]) / 2
        }
        let batches = keys.map { key -> BatchRow in
            let a = mb2[key] ?? [], b = sb2[key] ?? []
            return BatchRow(
                batch: BatchProfileBin(engineGPUs: 1, batch: key).label, measuredRequests: a.count, simulatedRequests: b.count,
                measuredJoulesPerOutputToken: median(a.map { gpu($0) / Double($0.outputTokens) }),
                simulatedJoulesPerOutputToken: median(b.map { gpu($0) / Double($0.outputTokens) }),
                measuredTPOTSeconds: median(a.compactMap(\.tpot)), simulatedTPOTSeconds: median(b.compactMap(\.tpot))
            )
        }
        return ModelVsMeters(
            measuredRun: measuredRun, simulatedRun: simulatedRun, measuredRequests: mf.count, simulatedRequests: sf.count, matchedRequests: ratios.count,
            ratioP5: q(0.05), ratioP50: q(0.5), ratioP95: q(0.95),
            phases: [
                PhaseRow(phase: "prefill", measured: ma, simulated: sa, deltaPercent: delta(ma, sa)),
                PhaseRow(phase: "decode", measured: mb, simulated: sb, deltaPercent: delta(mb, sb)),
            ],
            fitR2Measured: mr2, fitR2Simulated: sr2, batches: batches,
            measuredGPUKWh: m.reduce(0) { $0 + gpu($1) } / 3.6e6, simulatedGPUKWh: s.reduce(0) { $0 + gpu($1) } / 3.6e6
        )
    }

    /// Least squares without intercept: GPU joules ≈ a × uncached prompt tokens + b × output tokens; with R².
    static func phaseFit(_ rs: [RequestRecord]) -> (Double, Double, Double) {
        var pp = 0.0, po = 0.0, oo = 0.0, pe = 0.0, oe = 0.0, ee = 0.0, e = 0.0
        for r in rs {
            let p = prefillTokens(r), o = Double(r.outputTokens), y = gpu(r)
            pp += p * p; po += p * o; oo += o * o; pe += p * y; oe += o * y; ee += y * y; e += y
        }
        let det = pp * oo - po * po
        guard det > 0, !rs.isEmpty else { return (0, 0, 0) }
        let a = (pe * oo - oe * po) / det, b = (oe * pp - pe * po) / det
        let mean = e / Double(rs.count)
        let residual = ee - 2 * (a * pe + b * oe) + a * a * pp + 2 * a * b * po + b * b * oo
        let total = ee - Double(rs.count) * mean * mean
        return (a, b, total > 0 ? max(0, 1 - residual / total) : 0)
    }

    /// Finished requests with a decode, by the lower bound of their batch bin: the mean number of
    /// requests decoding on their decode unit while they decoded.
    static func batchBins(_ rs: [RequestRecord]) -> [Int: [RequestRecord]] {
        var out: [Int: [RequestRecord]] = [:]
        let byUnit = Dictionary(grouping: rs.filter { $0.firstToken != nil && $0.finish != nil }, by: { $0.decodeUnit ?? -1 })
        for (_, list) in byUnit {
            // Concurrency as a step function, and its running integral at each event.
            var events: [(Double, Int)] = []
            for r in list where r.finish! > r.firstToken! {
                events.append((r.firstToken!, 1))
                events.append((r.finish!, -1))
            }
            events.sort { $0.0 < $1.0 || ($0.0 == $1.0 && $0.1 < $1.1) }
            var times: [Double] = [], integral: [Double] = [], level = 0, area = 0.0
            for (i, (t, d)) in events.enumerated() {
                if i > 0 { area += Double(level) * (t - events[i - 1].0) }
                level += d
                times.append(t)
                integral.append(area)
            }
            func at(_ t: Double) -> Double {
                var lo = 0, hi = times.count - 1
                while lo < hi {
                    let mid = (lo + hi + 1) / 2
                    if times[mid] <= t { lo = mid } else { hi = mid - 1 }
                }
                return integral[lo]
            }
            for r in list where r.outputTokens >= 2 && r.finish! > r.firstToken! {
                let mean = (at(r.finish!) - at(r.firstToken!)) / (r.finish! - r.firstToken!)
                let bin = BatchProfileBin(engineGPUs: 1, batch: max(1, Int(mean.rounded())))
                out[bin.minBatch, default: []].append(r)
            }
        }
        return out
    }
}

extension Comparison {
    /// The comparison of `metrics[0]` (the baseline) with the others, and where a measured run
    /// meets a simulated one, the model against the meters (read from `ledger`).
    public static func build(_ ledger: some LedgerQueries, metrics: [RunMetrics], location: String) throws -> ComparisonReport {
        var report = build(baseline: metrics[0], candidates: Array(metrics.dropFirst()), ledger: location)
        for m in metrics.dropFirst() where m.run.mode != metrics[0].run.mode {
            let (measured, simulated) = m.run.mode == .measured ? (m.run.id!, metrics[0].run.id!) : (metrics[0].run.id!, m.run.id!)
            try Task.checkCancellation()
            report.modelVsMeters.append(try ModelVsMeters.build(ledger, measured: measured, simulated: simulated))
        }
        return report
    }
}

extension Render {
    static func modelVsMetersMarkdown(_ x: ModelVsMeters) -> String {
        func n(_ v: Double?) -> String { v.map(number) ?? "—" }
        func ms(_ v: Double?) -> String { v.map { number($0 * 1000) } ?? "—" }
        var s = "## Model against meters: run \(x.simulatedRun) (simulated) beside run \(x.measuredRun) (measured)\n\n"
        s += "GPU energy only (both runs model the host). \(x.matchedRequests.formatted()) of \(x.measuredRequests.formatted()) measured requests found in the replay; "
        s += "simulated ÷ measured GPU energy per request: median \(n(x.ratioP50)) (5th–95th percentile \(n(x.ratioP5))–\(n(x.ratioP95))). "
        s += "GPU energy in all: measured \(number(x.measuredGPUKWh)) kWh, simulated \(number(x.simulatedGPUKWh)) kWh.\n\n"
        s += "### By phase\n\nA least-squares fit of each request's GPU energy on its uncached prompt tokens and its output tokens, in each run "
        s += "(share explained: measured \(number(x.fitR2Measured)), simulated \(number(x.fitR2Simulated))).\n\n"
        s += "| Phase | Measured | Simulated | Model vs meters |\n|---|---|---|---|\n"
        for p in x.phases {
            s += "| \(p.phase == "prefill" ? "Prefill, J per uncached prompt token" : "Decode, J per output token") | \(number(p.measured)) | \(number(p.simulated)) | \(signed(p.deltaPercent)) % |\n"
        }
        s += "\n### By batch size\n\nRequests binned by how many requests were decoding on their unit while they decoded (each run's own units).\n\n"
        s += "| Batch | Requests (measured / simulated) | J per output token, measured | simulated | TPOT ms, measured | simulated |\n|---|---|---|---|---|---|\n"
        for b in x.batches {
            s += "| \(b.batch) | \(b.measuredRequests) / \(b.simulatedRequests) | \(n(b.measuredJoulesPerOutputToken)) | \(n(b.simulatedJoulesPerOutputToken)) | \(ms(b.measuredTPOTSeconds)) | \(ms(b.simulatedTPOTSeconds)) |\n"
        }
        return s + "\n`joule calibrate --from-measured \(x.measuredRun)` proposes coefficients fitted to the measured run.\n\n"
    }

    static func modelVsMetersHTML(_ x: ModelVsMeters) -> String {
        let md = modelVsMetersMarkdown(x)
        func n(_ v: Double?) -> String { v.map(number) ?? "—" }
        var s = "<h2 id=\"model-vs-meters\">Model against meters: run \(x.simulatedRun) (simulated) beside run \(x.measuredRun) (measured)</h2>\n"
        // The prose paragraphs as the Markdown has them, tables as HTML.
        let paragraphs = md.components(separatedBy: "\n\n").filter { !$0.hasPrefix("#") && !$0.hasPrefix("|") && !$0.isEmpty }
        s += "<p class=\"note\">\(SVG.esc(paragraphs.first ?? ""))</p>\n"
        s += "<h3>By phase</h3><p class=\"note\">\(SVG.esc(paragraphs.dropFirst().first ?? ""))</p>\n"
        s += "<table><thead><tr><th>Phase</th><th>Measured</th><th>Simulated</th><th>Model vs meters</th></tr></thead><tbody>\n"
        for p in x.phases {
            s += "<tr><td>\(p.phase == "prefill" ? "Prefill, J per uncached prompt token" : "Decode, J per output token")</td><td>\(number(p.measured))</td><td>\(number(p.simulated))</td><td>\(signed(p.deltaPercent)) %</td></tr>\n"
        }
        s += "</tbody></table>\n<h3>By batch size</h3>\n"
        s += "<table><thead><tr><th>Batch</th><th>Requests (measured / simulated)</th><th>J per output token, measured</th><th>simulated</th><th>TPOT ms, measured</th><th>simulated</th></tr></thead><tbody>\n"
        for b in x.batches {
            s += "<tr><td>\(b.batch)</td><td>\(b.measuredRequests) / \(b.simulatedRequests)</td><td>\(n(b.measuredJoulesPerOutputToken))</td><td>\(n(b.simulatedJoulesPerOutputToken))</td>"
            s += "<td>\(b.measuredTPOTSeconds.map { number($0 * 1000) } ?? "—")</td><td>\(b.simulatedTPOTSeconds.map { number($0 * 1000) } ?? "—")</td></tr>\n"
        }
        s += "</tbody></table>\n<div class=\"charts\" style=\"margin-top:1rem\">\n"
        func series(_ key: KeyPath<ModelVsMeters.BatchRow, Double?>) -> [(Double, Double)] {
            x.batches.compactMap { b in b[keyPath: key].map { (Double(b.batch.split(separator: "–").first.flatMap { Int($0) } ?? 1), $0) } }
        }
        s += SVG.lineChart(
            title: "GPU J per output token by batch", xLabel: "requests decoding on the unit (bin's lower bound)", yLabel: "J per output token",
            series: [("measured (run \(x.measuredRun))", series(\.measuredJoulesPerOutputToken)), ("simulated (run \(x.simulatedRun))", series(\.simulatedJoulesPerOutputToken))]
        )
        s += SVG.lineChart(
            title: "Time per output token by batch", xLabel: "requests decoding on the unit (bin's lower bound)", yLabel: "ms",
            series: [
                ("measured (run \(x.measuredRun))", series(\.measuredTPOTSeconds).map { ($0.0, $0.1 * 1000) }),
                ("simulated (run \(x.simulatedRun))", series(\.simulatedTPOTSeconds).map { ($0.0, $0.1 * 1000) }),
            ]
        )
        return s + "</div>\n<p class=\"note\"><code>joule calibrate --from-measured \(x.measuredRun)</code> proposes coefficients fitted to the measured run.</p>\n"
    }

    static func modelVsMetersCSV(_ x: ModelVsMeters) -> String {
        var s = ""
        func row(_ figure: String, _ value: Double?, _ unit: String) {
            s += "\(x.simulatedRun),model vs meters,against run \(x.measuredRun),\"\(figure)\",\(value.map { String($0) } ?? ""),\(unit),,,\n"
        }
        row("simulated ÷ measured GPU energy per request, median", x.ratioP50, "")
        for p in x.phases {
            row("\(p.phase): measured", p.measured, "J/token")
            row("\(p.phase): simulated", p.simulated, "J/token")
        }
        for b in x.batches {
            row("batch \(b.batch): measured J per output token", b.measuredJoulesPerOutputToken, "J")
            row("batch \(b.batch): simulated J per output token", b.simulatedJoulesPerOutputToken, "J")
        }
        return s
    }
}
