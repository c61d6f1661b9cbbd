import ArgumentParser
import Foundation
import Accounting
import Ledger

struct LedgerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger",
        abstract: "Look after the ledger: retention of request rows, and copies between SQLite and PostgreSQL.",
        discussion: """
        Examples:
          joule ledger prune --db joule.sqlite --before 2025-03-01T00:00Z
          joule ledger prune --db joule.sqlite --before 2025-03-01T00:00Z --json
          joule ledger copy --from joule.sqlite --to postgres://joule@db.example/joule
        """,
        subcommands: [Prune.self, Copy.self]
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

    struct Copy: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy a whole ledger between SQLite and PostgreSQL with its audit intact.",
            discussion: """
            Every row keeps its id and every batch and entry its hashes and HMAC, so `audit verify` \
            passes on the copy exactly when it passes on the original; the copy is verified before \
            this command returns. The target must be empty: a new SQLite file, or a PostgreSQL \
            database with no runs (`createdb` one). A PostgreSQL ledger several writers committed to \
            cannot be copied to SQLite, which keeps one chain.

            Examples:
              joule ledger copy --from joule.sqlite --to postgres://joule@db.example:5432/joule
              joule ledger copy --from postgres://joule@db.example/joule --to back.sqlite --json
            """
        )
        @Option(help: ArgumentHelp("The ledger to copy: a path or a postgres:// URL.", valueName: "path-or-url")) var from: String
        @Option(help: ArgumentHelp("The empty ledger to fill: a path or a postgres:// URL.", valueName: "path-or-url")) var to: String
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            let (result, verification) = try failing {
                let source = try LedgerLocation(from).open(mustExist: true)
                let targetLocation = try LedgerLocation(to)
                if case .sqlite(let path) = targetLocation, FileManager.default.fileExists(atPath: path) {
                    throw LedgerError.cannotOpen(path: path, reason: "the target of a copy must be a new file; this one exists")
                }
                let target = try targetLocation.open()
                let result = try LedgerCopy.copy(from: source, to: target) { line in
                    if !json { FileHandle.standardError.write(Data("copied \(line)\n".utf8)) }
                }
                return (result, try target.verify(limit: 20, anchor: nil))
            }
            if json {
                print(try jsonText(CopyOutcome(copy: result, verifies: verification.ok, problems: verification.problems.map(\.description))))
            } else {
                print("copied \(result.runs) runs, \(result.requestRows.formatted()) requests, \(result.intervalRows.formatted()) intervals, "
                      + "\(result.batches.formatted()) batches and \(result.entries.formatted()) entries from \(result.from) to \(result.to)")
                print(verification.ok ? "the copy verifies: head hash \(verification.headHash ?? "none")" : "THE COPY DOES NOT VERIFY:")
                for p in verification.problems { print("  \(p)") }
            }
            if !verification.ok { throw ExitCode(1) }
        }
    }
}

private struct CopyOutcome: Encodable {
    var copy: CopyResult
    var verifies: Bool
    var problems: [String]
}

