import ArgumentParser
import Foundation
import Ledger
import Reports

extension ReportFormat: ExpressibleByArgument {}

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write reports from the ledger: pruned against dense configurations, and a period's sustainability report.",
        discussion: """
        Examples:
          joule simulate --scenario deepseek-v3-dense-hour --db joule.sqlite
          joule simulate --scenario deepseek-v3-pruned-hour --db joule.sqlite
          joule report compare --db joule.sqlite --baseline 1 --candidate 2 --format html --out compare.html
          joule report sustainability --db joule.sqlite --from 2025-02-27T04:00Z --to 2025-02-27T05:00Z --format html --out period.html
        """,
        subcommands: [Compare.self, Sustainability.self]
    )
}

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare runs against a baseline: energy, carbon, latency, throughput and fidelity, with bootstrap intervals.",
        discussion: """
        Every figure is a query of the ledger. Formats: md, html (one self-contained file with \
        inline SVG charts), json (every number the other formats show), csv (one row per figure). \
        Without --out the report goes to standard output.

        Examples:
          joule report compare --db joule.sqlite --baseline 1 --candidate 2 --format md
          joule report compare --db joule.sqlite --baseline 1 --candidate 2 --candidate 3 --format html --out compare.html
          joule report compare --db joule.sqlite --baseline 1 --candidate 2 --format json --out compare.json
          joule report compare --db joule.sqlite --baseline 3 --candidate 4 --format html --out model-vs-meters.html   # 3 measured, 4 its replay

        A measured run (`joule measure`) compared with a simulated replay of its request log \
        (`joule simulate --trace requests.csv`) adds where the model and the meters disagree: GPU \
        energy per request, per phase (J per prompt and per output token) and per batch size.
        """
    )

    @OptionGroup var ledger: LedgerOptions
    @Option(help: "The baseline run's id (the dense configuration).") var baseline: Int64
    @Option(help: "A candidate run's id (repeat).") var candidate: [Int64]
    @Option(help: "md, html, json or csv.") var format: ReportFormat = .md
    @Option(help: "Write the report here (default: standard output).") var out: String?

    func run() throws {
        guard !candidate.isEmpty else { throw CLIError(message: "--candidate: give at least one run to compare with the baseline") }
        let report = try failing { () -> ComparisonReport in
            let l = try ledger.open(mustExist: true)
            var metrics: [RunMetrics] = []
            for id in [baseline] + candidate {
                FileHandle.standardError.write(Data("reading run \(id)…\n".utf8))
                let m = try RunMetrics.load(l, run: id)
                guard m.requests > 0 else { throw CLIError(message: "run \(id) (\(m.run.name)) has no finished requests to compare") }
                metrics.append(m)
            }
            FileHandle.standardError.write(Data("bootstrapping \(Comparison.resamples) resamples…\n".utf8))
            // A measured run beside a simulated one adds the model against the meters.
            return try Comparison.build(l, metrics: metrics, location: ledger.db)
        }
        try writeReport(try Render.text(report, as: format), to: out)
    }
}

struct Sustainability: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A period's energy, Scope 2 and embodied emissions, and SCI with its disclosures, for what was served.",
        discussion: """
        By default the report covers what was served: the daemon's runs and measured runs. What-if simulations \
        (`joule simulate --db`) are left out of a disclosure unless named with --run, or all \
        included with --all-runs. Grid emissions are location-based: each cluster interval's \
        energy at the grid intensity it ran under. GHG Protocol Scope 2 location-based takes \
        direct (combustion) factors; runs at life-cycle factors are reported apart, labelled, and \
        runs whose source does not state its factor type are not classed as Scope 2. A \
        market-based figure is added, and labelled separately, only when --market-factor gives a \
        contractual emission factor; it never changes the SCI. SCI = (O + M) / R per finished \
        request (and per 1,000 tokens), with every disclosure the SCI specification asks for.

        Examples:
          joule report sustainability --db joule.sqlite --from 2025-02-27T04:00Z --to 2025-02-28T04:00Z --format html --out period.html
          joule report sustainability --db joule.sqlite --from 2025-02-27T04:00Z --to 2025-02-27T05:00Z --market-factor 0 --market-instrument "100 % wind PPA"
          joule report sustainability --db what-if.sqlite --from 2025-02-27T04:00Z --to 2025-02-27T05:00Z --run 2   # a what-if, named
        """
    )

    @OptionGroup var ledger: LedgerOptions
    @Option(help: "Start of the period (ISO 8601).") var from: String
    @Option(help: "End of the period (ISO 8601).") var to: String
    @Option(help: "md, html, json or csv.") var format: ReportFormat = .md
    @Option(help: "Write the report here (default: standard output).") var out: String?
    @Option(name: .customLong("run"), help: "Only this run (repeat; default: the daemon's runs in the period, what was served).") var runs: [Int64] = []
    @Flag(name: .customLong("all-runs"), help: "Every run in the period, what-if simulations included.") var allRuns = false
    @Option(name: .customLong("market-factor"), help: "A contractual emission factor (gCO2e/kWh) for market-based Scope 2.") var marketFactor: Double?
    @Option(name: .customLong("market-instrument"), help: "What the contractual factor comes from (a PPA, a supplier-specific rate…).") var marketInstrument: String?

    func run() throws {
        guard let f = try parseTime(from, "--from"), let t = try parseTime(to, "--to") else { return }
        guard t > f else { throw CLIError(message: "--to (\(to)) must be after --from (\(from))") }
        if let marketFactor, marketFactor < 0 { throw CLIError(message: "--market-factor: expected gCO2e/kWh ≥ 0, got \(marketFactor)") }
        if marketFactor != nil && marketInstrument == nil {
            throw CLIError(message: "--market-factor needs --market-instrument: a market-based figure must say which contract it comes from")
        }
        let report = try failing { () -> SustainabilityReport in
            let l = try ledger.open(mustExist: true)
            do {
                return try SustainabilityReport.build(
                    ledger: l, path: ledger.db, from: f, to: t, runs: runs, scope: allRuns ? .all : .served, market: marketFactor.map { ($0, marketInstrument!) }
                )
            } catch let error as SustainabilityError {
                throw CLIError(message: error.description)
            }
        }
        try writeReport(try Render.text(report, as: format), to: out)
    }
}

/// Writes a report to `out`, or standard output.
func writeReport(_ text: String, to out: String?) throws {
    guard let out else {
        print(text, terminator: "")
        return
    }
    do {
        try text.write(toFile: out, atomically: true, encoding: .utf8)
    } catch {
        throw CLIError(message: "cannot write \(out): \((error as NSError).localizedDescription)")
    }
    FileHandle.standardError.write(Data("wrote \(out)\n".utf8))
}
