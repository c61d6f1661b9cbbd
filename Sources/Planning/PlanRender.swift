import Foundation
import Reports

/// `joule plan`'s outputs: the terminal summary and the HTML report.
public enum PlanRender {
    static func n(_ v: Double, _ digits: Int = 0) -> String { v.formatted(.number.precision(.fractionLength(digits)).grouping(.automatic)) }
    static func plural(_ k: Int, _ noun: String) -> String { "\(k.formatted()) \(noun)\(k == 1 ? "" : "s")" }
    static func gpuDelta(_ d: Int) -> String { d == 0 ? "the same GPUs" : "\(d < 0 ? "−" : "+")\(abs(d)) GPUs" }
    static func pct(_ v: Double) -> String { (v >= 0 ? "+" : "−") + n(abs(v) * 100, 1) + " %" }
    static func ms(_ s: Double) -> String { s.isFinite ? n(s * 1e3, 1) + " ms" : "∞" }
    static func sec(_ s: Double) -> String { s.isFinite ? n(s, 2) + " s" : "∞" }

    /// Counts of the rejections by kind, in a fixed order.
    static func rejectionCounts(_ o: SearchOutcome) -> [(String, Int)] {
        let kinds = ["SLO missed", "saturated", "memory", "step-cost bound", "invalid"]
        return kinds.map { k in (k, o.candidates.filter { $0.rejection?.kind == k }.count) }.filter { $0.1 > 0 }
    }

    static func front(_ o: SearchOutcome) -> [CandidateResult] {
        o.candidates.filter(\.onFront).sorted { ($0.gpus, $0.figures!.whPerRequest, $0.id) < ($1.gpus, $1.figures!.whPerRequest, $1.id) }
    }

    /// The front with candidates of identical figures folded into the first of them (a batch cap
    /// the load never reaches changes nothing), each with how many it stands for.
    static func distinctFront(_ o: SearchOutcome) -> [(CandidateResult, Int)] {
        var out: [(CandidateResult, Int)] = []
        for c in front(o) {
            if let i = out.firstIndex(where: { $0.0.objectives == c.objectives }) { out[i].1 += 1 } else { out.append((c, 1)) }
        }
        return out
    }

    /// The pruning table's rows: each configuration's best against the dense best.
    public struct PruningRow: Hashable, Sendable {
        public var configuration: String
        public var best: CandidateResult?
        public var energyDelta: Double?
        public var carbonDelta: Double?
        public var gpuDelta: Int?
        public var pays: Bool
        public var verdict: String
    }

    /// Each pruning configuration's best against the dense best: whole-run figures when both were
    /// verified over the whole workload (the same requests, so the difference is the plans'), else
    /// the windows'. It pays when it saves more energy than the search resolves (the gap between
    /// the dense best's window and whole-run figures) at no more GPUs, or needs fewer GPUs at no
    /// more energy than that.
    public static func pruningRows(_ r: PlanResult) -> [PruningRow] {
        let dense = r.dense.best.map { r.dense.candidates[$0] }
        return r.pruned.map { o in
            let config = o.pruning!.description
            guard let b = o.best.map({ o.candidates[$0] }) else {
                let tried = o.verifications.count
                return PruningRow(configuration: config, best: nil, pays: false, verdict: tried > 0
                    ? "does not pay: none of its \(tried) best candidates held the targets over the whole workload"
                    : "does not pay: no plan meets the SLO")
            }
            guard let d = dense, let df = d.figures, let bf = b.figures else {
                return PruningRow(configuration: config, best: b, pays: true, verdict: "pays: feasible where dense is not")
            }
            let whole = o.verified != nil && r.dense.verified != nil
            let (be, de0) = whole ? (o.verified!.whPerRequest, r.dense.verified!.whPerRequest) : (bf.whPerRequest, df.whPerRequest)
            let (bc, dc0) = whole ? (o.verified!.carbonGramsPerRequest, r.dense.verified!.carbonGramsPerRequest) : (bf.carbonGramsPerRequest, df.carbonGramsPerRequest)
            let de = be / de0 - 1, dc = bc / dc0 - 1
            let dg = b.gpus - d.gpus
            // What the search can resolve: how far the dense best's window figure is from its whole run.
            let band = r.dense.verified.map { abs(df.whPerRequest / $0.whPerRequest - 1) } ?? 0
            let saves = de < -band, costs = de > band
            let pays = (saves && dg <= 0) || (dg < 0 && !costs)
            let mixed = (saves && dg > 0) || (costs && dg < 0)
            let within = !saves && !costs && de != 0 ? "; within the ±\(n(100 * band, 1)) % the search resolves" : ""
            let verdict = (pays ? "pays" : mixed ? "a trade-off" : "does not pay") + ": \(pct(de)) energy, \(gpuDelta(dg))" + (whole ? " (whole runs\(within))" : " (windows\(within))")
            return PruningRow(configuration: config, best: b, energyDelta: de, carbonDelta: dc, gpuDelta: dg, pays: pays, verdict: verdict)
        }
    }

    // MARK: Text

    public static func text(_ r: PlanResult) -> String {
        var s: [String] = []
        let o = r.dense
        s.append("Plan for \(r.workload): \(r.model) on \(r.hardware), \(r.slo.text), objective \(r.objective.rawValue)")
        let l = r.load
        s.append("Load        \(n(l.requestsPerSecond, 1)) requests/s over the first \(n(l.seconds)) s: prompt \(n(l.meanPromptTokens)) tokens (\(n(l.meanComputedTokens)) computed), output \(n(l.meanOutputTokens)), decode context \(n(l.meanDecodeContext))")
        s.append(summaryLine(o, r))
        if let b = o.best.map({ o.candidates[$0] }), let f = b.figures {
            s.append("")
            s.append("Best (\(r.objective.rawValue)): #\(b.id) \(b.label)")
            s.append("  \(plural(b.gpus, "GPU")) on \(plural(b.nodes, "node"))")
            s.append("  window      \(n(f.whPerRequest, 3)) Wh and \(n(f.carbonGramsPerRequest, 3)) gCO2e per request, \(n(f.whPer1kTokens, 2)) Wh per 1k output tokens, $\(n(f.costPer1kRequests, 2)) per 1k requests")
            s.append("              TTFT p99 \(sec(f.ttft99)), TPOT p50 \(ms(f.tpot50)) (\(n(1 / f.tpot50, 1)) tokens/s per user), p99 \(ms(f.tpot99))")
            if let v = o.verified {
                s.append("  whole run   \(n(v.simulatedSeconds)) s, \(v.requests.formatted()) requests: \(n(v.whPerRequest, 3)) Wh and \(n(v.carbonGramsPerRequest, 3)) gCO2e per request, TTFT p99 \(sec(v.ttftP99 ?? .infinity)), TPOT p50 \(ms(v.tpotP50 ?? .infinity)), p99 \(ms(v.tpotP99 ?? .infinity)), \(n(v.meanNodes, 1)) nodes")
            }
        } else {
            s.append("")
            s.append("No candidate meets the SLO: loosen a target, raise --max-nodes, or see why each lost (--json).")
        }
        if o.verifications.count > 1 || o.verifications.first?.missed != nil {
            s.append("  verified over the whole workload, best first:")
            for v in o.verifications {
                s.append("    #\(v.candidate) \(v.label): \(v.missed.map { "missed: \($0)" } ?? "held every target")")
            }
        }
        let front = distinctFront(o)
        if !front.isEmpty {
            s.append("")
            s.append("Pareto front (\(front.reduce(0) { $0 + $1.1 }) of \(o.candidates.filter(\.feasible).count) feasible; energy, carbon, GPUs, TTFT p99 and TPOT p99 all minimised):")
            s.append("     id  GPUs  Wh/req  gCO2e/req  TTFT p99  TPOT p99  plan")
            for (c, same) in front.prefix(12) {
                let f = c.figures!
                let twins = same > 1 ? " (and \(same - 1) with the same figures)" : ""
                s.append("  \(String(c.id).leftPadded(5)) \(String(c.gpus).leftPadded(5)) \(n(f.whPerRequest, 3).leftPadded(7)) \(n(f.carbonGramsPerRequest, 3).leftPadded(10)) \(sec(f.ttft99).leftPadded(9)) \(ms(f.tpot99).leftPadded(9))  \(c.label)\(twins)")
            }
            if front.count > 12 { s.append("  … \(front.count - 12) more in --json and --html") }
        }
        s.append("")
        s.append("Why the others lost:")
        for kind in ["memory", "step-cost bound", "saturated", "SLO missed", "invalid"] {
            let lost = o.candidates.filter { $0.rejection?.kind == kind }
            guard let first = lost.first else { continue }
            s.append("  \(kind) (\(lost.count)): e.g. #\(first.id) \(first.label): \(first.rejection!.reason)")
        }
        let dominated = o.candidates.filter { $0.dominatedBy != nil }.count
        if dominated > 0 { s.append("  dominated (\(dominated)): feasible, but a front member is at least as good in every objective") }
        let rows = pruningRows(r)
        if !rows.isEmpty {
            s.append("")
            s.append("Pruning at equal SLO (each configuration re-planned and verified; deltas against the dense best, per request):")
            for (row, outcome) in zip(rows, r.pruned) {
                var line = "  \(row.configuration.padding(toLength: 20, withPad: " ", startingAt: 0)) "
                if let b = row.best, let f = b.figures {
                    line += "\(b.gpus) GPUs, \(n(outcome.verified?.whPerRequest ?? f.whPerRequest, 3)) Wh/req"
                    line += " · \(row.verdict), \(pct(row.carbonDelta ?? 0)) carbon"
                } else {
                    line += row.verdict
                }
                s.append(line)
                if let fid = outcome.fidelity {
                    s.append("      fidelity proxy (reference layer, not model quality): relative error \(n(fid.relativeError, 3)), router mass removed \(n(100 * fid.routerMassRemoved, 1)) %")
                }
                let q = r.quality[row.configuration] ?? []
                if q.isEmpty { s.append("      published quality: none recorded in Data/planning/quality.yaml for this configuration") }
                for f in q { s.append("      published (\(f.model), \(f.setting)): \(f.finding) [\(f.citation)]") }
            }
        }
        s.append("")
        s.append("Limits:")
        for x in r.limits { s.append("  - \(x)") }
        return s.joined(separator: "\n")
    }

    static func summaryLine(_ o: SearchOutcome, _ r: PlanResult) -> String {
        let screened = o.candidates.count - o.simulated
        let why = rejectionCounts(o).map { "\($0.0) \($0.1)" }.joined(separator: ", ")
        return "Searched    \(o.candidates.count) candidates in \(n(o.wallSeconds, 1)) s: \(o.simulated) simulated (\(n(r.prewarmSeconds)) s pre-warm + \(n(r.warmupSeconds)) s warm-up + \(n(r.windowSeconds)) s window), \(screened) stopped by the analytic screen; lost: \(why.isEmpty ? "none" : why)"
    }

    // MARK: HTML

    public static func html(_ r: PlanResult) -> String {
        let e = SVG.esc
        let o = r.dense
        let title = "Deployment plan: \(r.workload)"
        var s = Render.pageHead(title: title, style: """
        td { text-align: right; } td.l, th.l { text-align: left; } tr.best td { background: #eef7e9; font-weight: 600; }
        """)
        s += "<h1>\(e(title))</h1>\n"
        s += "<p class=\"note\">\(e(r.model)) on \(e(r.hardware)); targets \(e(r.slo.text)); objective <b>\(e(r.objective.rawValue))</b>. Each candidate simulated over a \(n(r.windowSeconds)) s window after \(n(r.warmupSeconds)) s at full load, preceded by \(n(r.prewarmSeconds)) s in which only the requests still decoding at the window's start arrive; the best re-simulated over the whole workload. GPU price $\(n(r.gpuHourUSD, 2)) per GPU-hour (Data/planning/prices.yaml).</p>\n"
        s += "<p>\(e(summaryLine(o, r)))</p>\n"
        if let b = o.best.map({ o.candidates[$0] }), let f = b.figures {
            s += "<h2>Best plan</h2>\n<p><b>#\(b.id) \(e(b.label))</b>: \(plural(b.gpus, "GPU")) on \(plural(b.nodes, "node")); \(n(f.whPerRequest, 3)) Wh and \(n(f.carbonGramsPerRequest, 3)) gCO2e per request in the window; TTFT p99 \(sec(f.ttft99)), TPOT p99 \(ms(f.tpot99)).</p>\n"
            if let v = o.verified {
                s += "<p>Whole run (\(n(v.simulatedSeconds)) s, \(v.requests.formatted()) requests): \(n(v.whPerRequest, 3)) Wh and \(n(v.carbonGramsPerRequest, 3)) gCO2e per request, TTFT p99 \(sec(v.ttftP99 ?? .infinity)), TPOT p99 \(ms(v.tpotP99 ?? .infinity)).</p>\n"
            }
        } else {
            s += "<h2>Best plan</h2>\n<p>No candidate meets the targets.</p>\n"
        }
        if o.verifications.count > 1 || o.verifications.first?.missed != nil {
            s += "<p>Verified over the whole workload, best first:</p><ul>"
            s += o.verifications.map { "<li>#\($0.candidate) \(e($0.label)): \(e($0.missed.map { "missed: \($0)" } ?? "held every target"))</li>" }.joined()
            s += "</ul>\n"
        }
        s += "<h2>Pareto front</h2>\n<div class=\"charts\">\n"
        let simulated = o.candidates.filter { $0.figures != nil }
        func pts(_ cs: [CandidateResult]) -> [(Double, Double)] { cs.map { (Double($0.gpus), $0.figures!.whPerRequest) } }
        let front = front(o)
        // Drawn from the back: missed, dominated, the front, the best on top.
        let missed = "#b9b9b9", dominated = "#e07a2e", onFront = "#1f6f8b", chosen = "#4c9a2a"
        let series: [(name: String, points: [(Double, Double)], connected: Bool, color: String?)] = [
            ("missed a target", pts(simulated.filter { !$0.feasible && $0.figures!.whPerRequest.isFinite }), false, missed),
            ("feasible, dominated", pts(simulated.filter { $0.feasible && !$0.onFront }), false, dominated),
            ("Pareto front", pts(front), false, onFront),
            ("best", pts(o.best.map { [o.candidates[$0]] } ?? []), false, chosen),
        ]
        s += SVG.scatter(title: "Energy per request against GPUs (each simulated candidate)", xLabel: "GPUs", yLabel: "Wh per request", series: series.filter { !$0.points.isEmpty })
        func latency(_ cs: [CandidateResult]) -> [(Double, Double)] { cs.map { ($0.figures!.tpot99 * 1e3, $0.figures!.ttft99) } }
        s += SVG.scatter(
            title: "Latency of the feasible candidates", xLabel: "TPOT p99 (ms)", yLabel: "TTFT p99 (s)",
            series: [("feasible, dominated", latency(simulated.filter { $0.feasible && !$0.onFront }), false, dominated),
                     ("Pareto front", latency(front), false, onFront),
                     ("best", latency(o.best.map { [o.candidates[$0]] } ?? []), false, chosen)].filter { !$0.1.isEmpty }
        )
        s += "\n</div>\n<table><thead><tr><th>#</th><th class=\"l\">plan</th><th>GPUs</th><th>nodes</th><th>Wh/request</th><th>Wh/1k tokens</th><th>gCO2e/request</th><th>$/1k requests</th><th>TTFT p99</th><th>TPOT p99</th></tr></thead><tbody>\n"
        for (c, same) in distinctFront(o) {
            let f = c.figures!
            let twins = same > 1 ? " <span class=\"note\">(and \(same - 1) with the same figures)</span>" : ""
            s += "<tr\(c.id == o.best ? " class=\"best\"" : "")><td>\(c.id)</td><td class=\"l\">\(e(c.label))\(twins)</td><td>\(c.gpus)</td><td>\(c.nodes)</td><td>\(n(f.whPerRequest, 3))</td><td>\(n(f.whPer1kTokens, 2))</td><td>\(n(f.carbonGramsPerRequest, 3))</td><td>\(n(f.costPer1kRequests, 2))</td><td>\(sec(f.ttft99))</td><td>\(ms(f.tpot99))</td></tr>\n"
        }
        s += "</tbody></table>\n"
        let rows = pruningRows(r)
        if !rows.isEmpty {
            s += "<h2>Pruning at equal SLO</h2>\n<p class=\"note\">Each configuration is searched again over the same space; deltas are against the dense best. The fidelity proxy is a reference layer's output error, not model quality; quality figures are the papers' own, for the models they measured.</p>\n"
            s += "<table><thead><tr><th class=\"l\">configuration</th><th class=\"l\">best plan</th><th>GPUs</th><th>Wh/request</th><th>energy</th><th>carbon</th><th>TTFT p99</th><th>TPOT p99</th><th class=\"l\">verdict</th><th class=\"l\">fidelity proxy</th><th class=\"l\">published quality</th></tr></thead><tbody>\n"
            for (row, outcome) in zip(rows, r.pruned) {
                let q = (r.quality[row.configuration] ?? []).map { "\($0.model), \($0.setting): \($0.finding) (\($0.citation))" }
                let fid = outcome.fidelity.map { "relative error \(n($0.relativeError, 3)), router mass removed \(n(100 * $0.routerMassRemoved, 1)) %" } ?? "–"
                if let b = row.best, let f = b.figures {
                    s += "<tr><td class=\"l\">\(e(row.configuration))</td><td class=\"l\">\(e(b.label))</td><td>\(b.gpus)</td><td>\(n(outcome.verified?.whPerRequest ?? f.whPerRequest, 3))</td><td>\(row.energyDelta.map(pct) ?? "–")</td><td>\(row.carbonDelta.map(pct) ?? "–")</td><td>\(sec(f.ttft99))</td><td>\(ms(f.tpot99))</td>"
                } else {
                    s += "<tr><td class=\"l\">\(e(row.configuration))</td><td class=\"l\">none</td><td>–</td><td>–</td><td>–</td><td>–</td><td>–</td><td>–</td>"
                }
                s += "<td class=\"l\">\(e(row.verdict))</td><td class=\"l\">\(e(fid))</td><td class=\"l\">\(e(q.isEmpty ? "none recorded" : q.joined(separator: "; ")))</td></tr>\n"
            }
            s += "</tbody></table>\n"
        }
        s += "<h2>Why the others lost</h2>\n<table><thead><tr><th class=\"l\">reason</th><th>candidates</th><th class=\"l\">example</th></tr></thead><tbody>\n"
        for kind in ["memory", "step-cost bound", "saturated", "SLO missed", "invalid"] {
            let lost = o.candidates.filter { $0.rejection?.kind == kind }
            guard let first = lost.first else { continue }
            s += "<tr><td class=\"l\">\(e(kind))</td><td>\(lost.count)</td><td class=\"l\">#\(first.id) \(e(first.label)): \(e(first.rejection!.reason))</td></tr>\n"
        }
        s += "</tbody></table>\n<h2>Limits</h2><ul>" + r.limits.map { "<li>\(e($0))</li>" }.joined() + "</ul>\n"
        return s + "</body></html>\n"
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
