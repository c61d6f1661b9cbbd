import ArgumentParser
import Foundation
import Accounting
import Ledger

struct LedgerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger",
        abstract: "Look after the ledger file: retention of request rows.",
        discussion: """
        Examples:
          joule ledger prune --db joule.sqlite --before 2025-03-01T00:00Z
          joule ledger prune --db joule.sqlite --before 2025-03-01T00:00Z --json
        """,
        subcommands: [Prune.self]
    )

    struct Prune: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete the request rows of batches that ended before a date; keep their rollups and audit digests.",
            discussion: """
            A batch ended at its run's start plus the simulated time of its checkpoint. Its request \
            rows go; the batch, its per-minute rollups (sums and latency and energy sketches) and its \
            row digests stay, and the pruning itself is recorded in the audit chain. Afterwards \
            `report compare`, `report sustainability`, the API summaries, the dashboard and \
            `/metrics` give the same figures as before (they read the rollups), `audit verify` \
            passes, and `audit reconcile` counts the pruned requests from the rollups. What a pruned \
            period can no longer answer: one request's breakdown (`audit request`), request pages \
            of the API, bootstrap intervals (they resample rows), and a sustainability period that \
            does not start and end on whole minutes. Runs recorded before rollups, and each run's \
            last batch with requests (a resumed run checks itself against it), keep their rows.

            The daemon does the same on its own with `retainRequestDays` (docs/ledger.md).

            Examples:
              joule ledger prune --db joule.sqlite --before 2025-03-01T00:00Z
              joule ledger prune --db joule.sqlite --before 2025-02-27T05:00Z --json
            """
        )
        @OptionGroup var ledger: LedgerOptions
        @Option(help: ArgumentHelp("Prune batches that ended at or before this time (ISO 8601, UTC unless it says otherwise).", valueName: "time"))
        var before: String
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            guard let cutoff = try parseTime(before, "--before") else { throw CLIError(message: "--before: expected a time") }
            let result = try failing { try ledger.open(mustExist: true).prune(before: cutoff, at: Date().timeIntervalSince1970) }
            if json {
                print(try jsonText(result))
                return
            }
            if let id = result.pruning {
                print("pruning \(id): \(result.requestRows.formatted()) request rows of \(result.batches.formatted()) batches that ended by \(WallClock.string(cutoff)) deleted; their rollups and digests are kept")
            } else {
                print("nothing to prune: no batch with request rows ended by \(WallClock.string(cutoff))")
            }
            if result.keptWithoutRollups > 0 {
                print("kept \(result.keptWithoutRollups.formatted()) batches recorded before rollups (nothing else answers for their requests)")
            }
            if result.keptAsResumePoints > 0 {
                print("kept \(result.keptAsResumePoints.formatted()) last batches of their runs (a resumed run checks itself against them)")
            }
        }
    }
}
