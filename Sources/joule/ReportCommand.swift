import ArgumentParser
import Foundation
import Ledger
import Reports

extension ReportFormat: ExpressibleByArgument {}

struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write reports from the ledger: pruned against dense configurations.",
        discussion: """
        Examples:
          joule simulate --scenario deepseek-v3-dense-hour --db joule.sqlite
          joule simulate --scenario deepseek-v3-pruned-hour --db joule.sqlite
          joule report compare --db joule.sqlite --baseline 1 --candidate 2 --format html --out compare.html
        """,
        subcommands: [Compare.self]
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
            let l = try Ledger(path: ledger.db, mustExist: true)
            var metrics: [RunMetrics] = []
            for id in [baseline] + candidate {
                FileHandle.standardError.write(Data("reading run \(id)…\n".utf8))
                let m = try RunMetrics.load(l, run: id)
                guard m.requests > 0 else { throw CLIError(message: "run \(id) (\(m.run.name)) has no finished requests to compare") }
                metrics.append(m)
            }
            FileHandle.standardError.write(Data("bootstrapping \(Comparison.resamples) resamples…\n".utf8))
            return Comparison.build(baseline: metrics[0], candidates: Array(metrics.dropFirst()), ledger: ledger.db)
        }
        let text: String
        switch format {
        case .md: text = Render.markdown(report)
        case .html: text = Render.html(report)
        case .csv: text = Render.csv(report)
        case .json: text = try jsonText(report) + "\n"
        }
        if let out {
            do {
                try text.write(toFile: out, atomically: true, encoding: .utf8)
            } catch {
                throw CLIError(message: "cannot write \(out): \((error as NSError).localizedDescription)")
            }
            FileHandle.standardError.write(Data("wrote \(out)\n".utf8))
        } else {
            print(text, terminator: "")
        }
    }
}
