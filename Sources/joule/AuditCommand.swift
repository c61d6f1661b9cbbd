import ArgumentParser
import Foundation
import Ledger
import Accounting
import Serving

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the ledger: tampering, one request's cost, and whether a run's books balance.",
        discussion: """
        Examples:
          joule audit verify --db joule.sqlite
          joule audit request 1042 --db joule.sqlite
          joule audit reconcile --run 1 --db joule.sqlite --json
        """,
        subcommands: [Verify.self, Request.self, Reconcile.self]
    )

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute the audit chain and every row's digest; report what was changed outside Joule.",
            discussion: """
            Every committed batch of rows is hashed (SHA-256 over a canonical encoding of each row) \
            together with the previous batch's hash. This recomputes the chain and reports the first \
            rows or batches changed, removed or inserted outside Joule, and exits non-zero if any. \
            Keep the printed head hash elsewhere to detect a ledger cut short.

            Example:
              joule audit verify --db joule.sqlite
            """
        )
        @OptionGroup var ledger: LedgerOptions
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            let result = try failing { try Ledger(path: ledger.db, mustExist: true).verify() }
            if json {
                print(try jsonText(result))
            } else if result.ok {
                print("ok: \(result.batches.formatted()) batches, \(result.requestRows.formatted()) request rows and \(result.intervalRows.formatted()) interval rows verify")
                if let head = result.headHash { print("head hash \(head)") }
            } else {
                print("TAMPERED: \(result.problems.count)\(result.truncated ? "+" : "") problem(s), earliest first:")
                for p in result.problems { print("  \(p)") }
            }
            if !result.ok { throw ExitCode(1) }
        }
    }

    struct Request: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Explain what one request cost: its shares, overheads, intensity and totals.",
            discussion: """
            Example:
              joule audit request 1042 --db joule.sqlite --run 1
            """
        )
        @OptionGroup var ledger: LedgerOptions
        @Argument(help: "The request id (as the workload numbered it).") var id: Int
        @Option(name: .customLong("run"), help: "The run (needed when several runs have this request id).") var runID: Int64?
        @Flag(help: "Print the breakdown as JSON.") var json = false

        func run() throws {
            let b = try failing { try Ledger(path: ledger.db, mustExist: true).breakdown(request: id, run: runID) }
            print(json ? try jsonText(b) : b.text)
        }
    }

    struct Reconcile: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Σ request energy against the cluster intervals' energy for a run; non-zero exit past 1e-9.",
            discussion: """
            For a run still going (or stopped), the energy already drawn by requests not yet finished \
            and the idle energy not yet attributed are taken from its last checkpoint.

            Example:
              joule audit reconcile --run 1 --db joule.sqlite
            """
        )
        @OptionGroup var ledger: LedgerOptions
        @Option(name: .customLong("run"), help: "The run to reconcile.") var runID: Int64
        @Option(help: "The largest relative residual that passes.") var tolerance = 1e-9
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            let r = try failing { try Ledger(path: ledger.db, mustExist: true).reconcile(run: runID, tolerance: tolerance) }
            if json {
                print(try jsonText(r))
            } else {
                func kwh(_ v: Double) -> String { v.formatted(.number.precision(.fractionLength(6))) + " kWh" }
                print("""
                Run \(r.run) (\(r.status.rawValue)): \(r.requestRows.formatted()) request rows (\(r.inFlightRows.formatted()) flagged in flight), \(r.intervalRows.formatted()) interval rows
                  requests stored                  \(kwh(r.requestsKWh))
                + drawn by requests not finished   \(kwh(r.pendingKWh))  (\(r.pendingRequests.formatted()) requests at the last checkpoint)
                + idle energy not yet attributed   \(kwh(r.unattributedKWh))
                = cluster intervals                \(kwh(r.intervalsKWh))
                relative residual \(r.relativeResidual.formatted(.number.precision(.significantDigits(2)))) (tolerance \(r.tolerance)); rows match the last checkpoint: \(r.checkpointRecords == r.requestRows && r.checkpointIntervals == r.intervalRows ? "yes" : "NO (\(r.checkpointRecords) requests, \(r.checkpointIntervals) intervals expected)")
                \(r.balances ? "balanced" : "NOT BALANCED")
                """)
            }
            if !r.balances { throw ExitCode(1) }
        }
    }
}

extension RequestBreakdown {
    var text: String {
        let r = record
        func j(_ v: Double) -> String { v.formatted(.number.precision(.fractionLength(3)).grouping(.automatic)) }
        func g(_ v: Double) -> String { v.formatted(.number.precision(.significantDigits(4))) }
        func pct(_ v: Double) -> String { r.facilityJoules > 0 ? (100 * v / r.facilityJoules).formatted(.number.precision(.fractionLength(1))) + " %" : "–" }
        func s(_ v: Double?) -> String { v.map { $0.formatted(.number.precision(.fractionLength(3))) + " s" } ?? "–" }
        let kWh = r.facilityJoules / 3.6e6
        let arrivedAt = WallClock.string(startEpochSeconds + r.arrival)
        let rows: [(String, Double)] = [
            ("GPU: its share of its steps", r.gpuActiveJoules),
            ("GPU idle: its share", r.gpuIdleJoules),
            ("host: in steps and idle", r.hostJoules),
            ("PUE overhead (×\(pue.formatted(.number.precision(.fractionLength(3)))))", r.facilityOverheadJoules),
        ]
        let table = rows.map { "  \($0.0.padding(toLength: 34, withPad: " ", startingAt: 0))\(j($0.1).leftPad(14)) J  \(pct($0.1).leftPad(7))" }
        return """
        Request \(r.id) of run \(run) (\(scenario)), committed in audit batch \(batch)\(r.inFlight ? "; still in flight when the run ended" : "")
          arrived \(arrivedAt) (+\(s(r.arrival)) into the run) · prefill unit \(r.prefillUnit.map(String.init) ?? "–") · decode unit \(r.decodeUnit.map(String.init) ?? "–")
          tokens: \(r.promptTokens.formatted()) prompt (\(r.cachedTokens.formatted()) cached) · \(r.outputTokens.formatted()) output
          queue wait \(s(r.queueWait)) · TTFT \(s(r.ttft)) · TPOT \(s(r.tpot)) · end-to-end \(s(r.endToEnd))
        Energy
        \(table.joined(separator: "\n"))
          \("facility total".padding(toLength: 34, withPad: " ", startingAt: 0))\(j(r.facilityJoules).leftPad(14)) J  = \(kWh.formatted(.number.precision(.significantDigits(4)))) kWh; mean power \(j(r.meanPowerWatts)) W
          (parts add up to the total to \(partsResidual.formatted(.number.precision(.significantDigits(2)))) relative)
        Carbon
          grid intensity used      \(r.intensityGramsPerKWh.formatted(.number.precision(.fractionLength(1)))) gCO2e/kWh (time-weighted over its steps)
          operational              \(g(r.operationalCarbonGrams)) g = energy × intensity at the time each part was drawn
          embodied                 \(g(r.embodiedCarbonGrams)) g = \(j(r.gpuSeconds)) GPU-seconds × \(embodiedGramsPerGPUSecond.formatted(.number.precision(.significantDigits(4)))) g per GPU-second
          total                    \(g(r.totalCarbonGrams)) gCO2e
        \(trainingLines)
        """
    }

    /// The request's share of its model's training, beside (not inside) its operational and embodied carbon.
    private var trainingLines: String {
        guard let t = record.training else { return "Training share\n  none charged (the scenario names no training plan)" }
        let tokens = t.tokens.formatted(.number.precision(.fractionLength(0)))
        return """
        Training share (amortised by tokens served; not part of SCI's operational or embodied terms)
          tokens charged           \(tokens) (prompt and output)
          energy                   \(t.facilityJoules.formatted(.number.precision(.significantDigits(4)))) J at the training facility
          carbon                   \(t.carbonGrams.formatted(.number.precision(.significantDigits(4)))) gCO2e
          GPU time                 \(t.gpuSeconds.formatted(.number.precision(.significantDigits(4)))) GPU-seconds
        """
    }
}

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
