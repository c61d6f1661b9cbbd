import ArgumentParser
import Catalog
import Foundation
import Ledger
import Accounting
import Serving

struct Simulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Simulate serving a workload on a cluster, with every request's energy and carbon.",
        discussion: """
        Runs a scenario (a file, or a name from Data/scenarios) through the discrete-event serving \
        simulator and prints what was served and what it cost. Every request's energy is its share \
        of the steps it was in plus its share of idle and host energy; the shares add up to the \
        cluster's energy (conservationResidual). Flags override the scenario's fields. Latencies are \
        in seconds.

        Examples:
          joule simulate --scenario deepseek-v3-day --duration 600
          joule simulate --scenario deepseek-v3-day --duration 600 --db joule.sqlite
          joule simulate --scenario mixtral-single-node --json
          joule simulate --scenario azure-conversation-deepseek --trace ../shared/data/traces/AzureLLMInferenceTrace_conv.csv --requests-out requests.csv
          joule simulate --scenario my-scenario.yaml --seed 7 --requests-out requests.jsonl
          joule simulate --scenario deepseek-v3-day --size-fleet --tpot-slo-ms 50

        --size-fleet does not simulate: it sizes each pool of a disaggregated scenario to the offered \
        load of its generated workload, stretch by stretch of its daily profile, at the largest decode \
        batch that meets --tpot-slo-ms and the largest prefill budget whose step meets --prefill-step-slo-ms, \
        and prints the units, nodes and node-hours that needs.
        """
    )

    @OptionGroup var data: DataOptions
    @Option(help: "Scenario file, or the name of one in Data/scenarios.") var scenario: String
    @Option(help: "Replay this trace instead of the scenario's workload.") var trace: String?
    @Option(name: .customLong("trace-format"), help: "The trace's layout: azure, mooncake, joule-csv or joule-jsonl (default: from the file name).")
    var traceFormat: TraceFormat?
    @Option(help: "Simulated seconds to run (default: the scenario's; a trace runs until its last request finishes).") var duration: Double?
    @Option(help: "Random seed for generated workloads.") var seed: UInt64?
    @Flag(help: "Print the summary as JSON.") var json = false
    @Option(name: .customLong("requests-out"), help: "Write every request's record to FILE.csv or FILE.jsonl.") var requestsOut: String?
    @Option(help: "Record the run (every request, every unit interval, the audit chain) in this ledger.") var db: String?
    @Flag(name: .customLong("skip-bad-lines"), help: "Count and skip malformed trace lines instead of stopping at the first.") var skipBadLines = false
    @Flag(name: .customLong("size-fleet"), help: "Size the pools to the workload at the SLO instead of simulating (capacity mode).") var sizeFleet = false
    @Option(name: .customLong("tpot-slo-ms"), help: "With --size-fleet: the decode time per output token, in ms.") var tpotSLOMilliseconds: Double = 50
    @Option(name: .customLong("prefill-step-slo-ms"), help: "With --size-fleet: the longest prefill step, in ms.") var prefillStepSLOMilliseconds: Double = 2000

    /// Opens the ledger and records the start of this run.
    private func startRecording(_ loaded: LoadedScenario, _ prepared: PreparedRun, ledgerPath: String) throws -> RunRecorder {
        let ledger = try LedgerLocation(ledgerPath).open()
        var fields: [String: String] = [:]
        fields["trace"] = trace
        fields["traceFormat"] = traceFormat?.rawValue
        fields["duration"] = duration.map { String($0) }
        fields["seed"] = seed.map { String($0) }
        let spec = RunSpec(
            name: prepared.scenario.name, source: "simulate", scenarioFile: loaded.file, scenarioText: loaded.text,
            overrides: RunSpec.canonicalOverrides(fields), seed: prepared.scenario.seed,
            startEpochSeconds: prepared.scenario.startEpochSeconds, intervalSeconds: prepared.scenario.intervalSeconds
        )
        for lease in try ledger.failAbandonedRuns(at: Date().timeIntervalSince1970) {
            FileHandle.standardError.write(Data("warning: run \(lease.run) was left running by \(lease), which is gone: marked failed\n".utf8))
        }
        let run = try ledger.beginRun(spec, at: Date().timeIntervalSince1970)
        return RunRecorder(ledger: ledger, run: run, startEpochSeconds: prepared.scenario.startEpochSeconds)
    }

    /// Commits the rest and marks the run finished (or failed, keeping what was committed).
    private func finishRecording(_ recorder: RunRecorder, outcome: RunOutcome, writeError: Error?) throws {
        let now = Date().timeIntervalSince1970
        if let writeError {
            try? recorder.ledger.setStatus(.failed, run: recorder.run, at: now, message: "\(writeError)")
            throw writeError
        }
        do {
            try recorder.commit(at: now)
        } catch {
            try? recorder.ledger.setStatus(.failed, run: recorder.run, at: now, message: "\(error)")
            throw error
        }
        if case .finished(let summary) = outcome {
            try recorder.ledger.setStatus(.finished, run: recorder.run, at: now, summary: try jsonText(summary))
        }
        FileHandle.standardError.write(Data("recorded as run \(recorder.run) in \(LedgerLocation.redacted(db ?? "")): \(recorder.committedRequests.formatted()) requests in \(recorder.batches) audited batch\(recorder.batches == 1 ? "" : "es")\n".utf8))
    }

    func run() throws {
        for (flag, value) in [("--tpot-slo-ms", tpotSLOMilliseconds), ("--prefill-step-slo-ms", prefillStepSLOMilliseconds)]
        where !(value.isFinite && value > 0 && value <= 3_600_000) {
            throw CLIError(message: "\(flag): expected a positive number of milliseconds up to 3600000, got \(value)")
        }
        if sizeFleet { return try runSizing() }
        let clock = ContinuousClock()
        let started = clock.now
        let (summary, skipped) = try failing {
            let (library, directory) = try Composition.library(data)
            let path = try Catalog.scenarioPath(scenario, dataDirectory: directory)
            let loaded = try Catalog.loadScenario(at: path, library: library, dataDirectory: directory)
            let prepared = try Catalog.prepare(loaded, overrides: RunOverrides(
                trace: trace, traceFormat: traceFormat, duration: duration, seed: seed, skipBadLines: skipBadLines
            ))
            let writer = try requestsOut.map { try RecordWriter(path: $0) }
            let bar = ProgressBar(label: "simulating \(prepared.scenario.name)")
            let recorder = try db.map { try startRecording(loaded, prepared, ledgerPath: $0) }
            var writeError: Error?
            let hooks = RunHooks(
                pace: recorder == nil ? nil : { _ in writeError == nil ? .proceed : .stop },
                onCheckpoint: recorder.map { recorder in
                    { checkpoint in
                        recorder.set(checkpoint)
                        guard writeError == nil, recorder.pendingRequests >= 20_000 else { return }
                        do { try recorder.commit(at: Date().timeIntervalSince1970, background: true) } catch { writeError = error }
                    }
                },
                progress: bar.update, expectedRequests: prepared.traceRequests?.count
            )
            let outcome = try prepared.run(
                onRecord: { r in
                    writer?.write(r)
                    recorder?.add(r)
                },
                onInterval: { recorder?.add($0) },
                hooks: hooks
            )
            bar.finish()
            writer?.close()
            if let recorder {
                try finishRecording(recorder, outcome: outcome, writeError: writeError)
            }
            guard case .finished(var result) = outcome else { throw writeError ?? CLIError(message: "the run stopped early") }
            result.wallSeconds = (clock.now - started).seconds
            return (result, (prepared.skippedLines, prepared.skippedExamples))
        }
        if skipped.0 > 0 {
            let examples = skipped.1.map { "  \($0.description)" }.joined(separator: "\n")
            FileHandle.standardError.write(Data("warning: skipped \(skipped.0) malformed trace line(s); first:\n\(examples)\n".utf8))
        }
        print(json ? try jsonText(summary) : summary.text)
    }
}

extension Simulate {
    /// Capacity mode: the units, nodes and node-hours the scenario's workload needs at the SLO.
    func runSizing() throws {
        if trace != nil || requestsOut != nil || db != nil {
            throw CLIError(message: "--size-fleet: sizes a generated workload without simulating; drop --trace, --requests-out and --db")
        }
        let sizing = try failing {
            let (library, directory) = try Composition.library(data)
            return try Catalog.sizeFleet(
                scenario: scenario, overrides: RunOverrides(duration: duration, seed: seed),
                slo: FleetSLO(timePerOutputToken: .milliseconds(tpotSLOMilliseconds), prefillStep: .milliseconds(prefillStepSLOMilliseconds)),
                library: library, dataDirectory: directory
            )
        }
        if json {
            print(try jsonText(sizing))
            return
        }
        func f(_ v: Double, _ digits: Int = 0) -> String { v.formatted(.number.precision(.fractionLength(digits)).grouping(.automatic)) }
        let iso = Date.ISO8601FormatStyle()
        var lines = [
            "Fleet sized for \(scenario) at TPOT ≤ \(f(tpotSLOMilliseconds, 1)) ms and prefill steps ≤ \(f(prefillStepSLOMilliseconds)) ms",
            "  prefill unit  \(sizing.prefill.nodesPerUnit) nodes at \(f(sizing.prefill.operatingPoint)) tokens per rank per step: \(f(sizing.prefill.stepSeconds, 2)) s steps, \(f(sizing.prefill.tokensPerSecondPerNode)) input tokens/s per node",
            "  decode unit   \(sizing.decode.nodesPerUnit) nodes at \(f(sizing.decode.operatingPoint)) sequences per rank (mean context \(f(sizing.decodeContextTokens))): \(f(sizing.decode.stepSeconds * 1e3, 1)) ms per token, \(f(sizing.decode.tokensPerSecondPerNode)) output tokens/s per node",
            "  from                     hours   input tok/s    output tok/s  prefill  decode  nodes",
        ]
        for seg in sizing.segments {
            let start = iso.format(Date(timeIntervalSince1970: seg.startEpochSeconds))
            lines.append("  \(start.padding(toLength: 22, withPad: " ", startingAt: 0)) \(f(seg.seconds / 3600, 2).leftPad(7)) \(f(seg.inputTokensPerSecond).leftPad(13)) \(f(seg.outputTokensPerSecond).leftPad(15)) \(String(seg.prefillUnits).leftPad(8)) \(String(seg.decodeUnits).leftPad(7)) \(String(seg.nodes).leftPad(6))")
        }
        lines.append("  node-hours \(f(sizing.nodeHours)) (mean \(f(sizing.meanNodes, 2)) nodes, peak \(sizing.peakNodes))")
        print(lines.joined(separator: "\n"))
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

extension RunSummary {
    /// The summary as a short human-readable report.
    var text: String {
        func f(_ v: Double, _ digits: Int = 1) -> String { v.formatted(.number.precision(.fractionLength(digits)).grouping(.automatic)) }
        func ms(_ v: Double?) -> String { v.map { f($0 * 1000, 1) + " ms" } ?? "–" }
        func s(_ v: Double?) -> String { v.map { f($0, 2) + " s" } ?? "–" }
        return """
        Scenario \(scenario) (seed \(seed)): \(f(simulatedSeconds, 0)) s simulated in \(f(wallSeconds, 2)) s
        Requests     \(requests.formatted()) finished, \(inFlightRequests.formatted()) in flight at the end
        Tokens       \(inputTokens.formatted()) input (\(cachedTokens.formatted()) cached), \(outputTokens.formatted()) output
        Throughput   prefill \(f(prefillTokensPerSecondPerNode, 0)) input tokens/s per node · decode \(f(decodeTokensPerSecondPerNode, 0)) output tokens/s per node
        Latency      TTFT p50 \(s(ttftP50)), p99 \(s(ttftP99)) · TPOT p50 \(ms(tpotP50)), p99 \(ms(tpotP99)) · end-to-end p50 \(s(e2eP50)), p99 \(s(e2eP99))
        Cluster      \(f(meanNodes, 1)) nodes on average, \(f(gpuHours, 1)) GPU-hours
        Energy       \(f(energyKWh, 2)) kWh at the facility = GPU active \(f(gpuActiveKWh, 2)) + GPU idle \(f(gpuIdleKWh, 2)) + host \(f(hostKWh, 2)) + PUE overhead \(f(facilityOverheadKWh, 2))
        Per request  \(f(whPerRequest, 3)) Wh, \(f(carbonGramsPerRequest, 3)) gCO2e · \(f(joulesPerOutputToken, 3)) J per output token
        Carbon       \(f(carbonKg, 2)) kgCO2e = operational \(f(operationalCarbonKg, 2)) (\(carbonRegion), \(carbonSignal), \(f(meanIntensityGramsPerKWh, 1)) g/kWh) + embodied \(f(embodiedCarbonKg, 2))
        Accounting   \(attributionPolicy); requests + in flight + unattributed = cluster energy to \(conservationResidual.formatted(.number.precision(.significantDigits(2)))) (relative)
        """ + (experts.map { e in
            let pools = e.pools.map { "\($0.role) EP\($0.expertParallel) +\($0.redundantExperts) redundant, imbalance \(f($0.expertLoadImbalance, 3))" }.joined(separator: "; ")
            let pruned = e.routedExperts < e.denseRoutedExperts || e.pruning.expertsPerToken != nil || e.pruning.skipBelowFractionOfTop != nil
            return "\nExperts      \(e.routedExperts) of \(e.denseRoutedExperts) routed experts, \(f(e.activeExpertsPerToken, 2)) per token (Zipf skew \(e.skew)); \(pools)"
                + (pruned ? "\nFidelity     proxy (reference layer, not model quality): relative error \(f(e.fidelity.relativeError, 4)), cosine \(f(e.fidelity.cosineSimilarity, 4)), router mass removed \(f(100 * e.fidelity.routerMassRemoved, 2)) %" : "")
        } ?? "") + (training.map { t in
            let life = t.lifeMonths.map { " over \(f($0, 0)) months" } ?? ""
            return "\nTraining     \(t.plan)'s footprint over \(t.servedTokensOverLife.formatted(.number.notation(.scientific))) tokens\(life): this run's \(t.tokensCharged.formatted(.number.precision(.fractionLength(0)))) tokens carry "
                + "\(f(t.carbonKg, 3)) kgCO2e (\(t.grid)), \(f(t.facilityKWh, 3)) kWh, \(f(t.gpuHours, 3)) GPU-hours, \(f(t.carbonGramsPerRequest, 3)) g per request (not in the carbon above)"
        } ?? "")
    }
}
extension TraceFormat: ExpressibleByArgument {}
