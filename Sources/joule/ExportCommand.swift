import Accounting
import ArgumentParser
import Foundation
import Ledger
import Reports

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Export a run's rows: every request as CSV or JSON Lines, or the run as CodeCarbon's emissions.csv.",
        discussion: """
        Examples:
          joule export requests --run 3 --format csv --out run3.csv
          joule export requests --run 3 --from 2025-02-27T04:00Z --to 2025-02-27T05:00Z --format jsonl | head
          joule export codecarbon --run 3 --out emissions.csv
          joule export codecarbon --run 3 --per hour
        """,
        subcommands: [ExportRequests.self, ExportCodeCarbon.self]
    )
}

/// Where an export writes: a file (created, or replaced), else standard output.
struct ExportTarget {
    let handle: FileHandle
    let isFile: Bool

    init(_ path: String?) throws {
        guard let path, path != "-" else {
            handle = .standardOutput
            isFile = false
            return
        }
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
            throw CLIError(message: "--out: cannot create '\(path)' (does its folder exist, and may it be written?)")
        }
        handle = h
        isFile = true
    }

    func write(_ text: String) throws {
        do {
            try handle.write(contentsOf: Data(text.utf8))
        } catch {
            throw CLIError(message: "--out: writing failed: \(error.localizedDescription)")
        }
    }

    func close() { if isFile { try? handle.close() } }
}

struct ExportRequests: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "requests",
        abstract: "Stream a run's requests (optionally those arriving in [--from, --to)) as CSV or JSON Lines.",
        discussion: """
        One line per request, in row order: its run, its arrival (ISO 8601 and seconds since 1970), \
        then the record's fields with their units in their names (seconds, joules, grams; times \
        without "Epoch" are seconds after the run's start). Requests still in flight at the run's \
        end have inFlight 1 and no finish. A progress bar is drawn on standard error when it is a terminal.

        Examples:
          joule export requests --run 3 --format csv --out run3.csv
          joule export requests --run 3 --from 2025-02-27T04:00Z --to 2025-02-27T05:00Z --format jsonl
        """
    )
    @OptionGroup var ledger: LedgerOptions
    @Option(name: .customLong("run"), help: "The run (see `joule runs`).") var runID: Int64
    @Option(help: ArgumentHelp("Only requests arriving at or after this time (ISO 8601).", valueName: "time")) var from: String?
    @Option(help: ArgumentHelp("Only requests arriving before this time (ISO 8601).", valueName: "time")) var to: String?
    @Option(help: "csv or jsonl.") var format: String = "csv"
    @Option(help: ArgumentHelp("The file to write (default: standard output).", valueName: "file")) var out: String?

    func run() throws {
        guard let format = RequestExport.Format(rawValue: format) else {
            throw CLIError(message: "--format: expected csv or jsonl, got '\(format)'")
        }
        let f = try parseTime(from, "--from"), t = try parseTime(to, "--to")
        if let f, let t, t <= f { throw CLIError(message: "--to must be after --from") }
        let store = try failing { try ledger.open(mustExist: true) }
        _ = try failing { try store.run(runID) }
        let target = try ExportTarget(out)
        defer { target.close() }
        let bar = ProgressBar(label: "run \(runID)")
        let count = try failing {
            try RequestExport(format: format).stream(store, run: runID, from: f, to: t, write: target.write, progress: bar.update)
        }
        bar.finish()
        if target.isFile { FileHandle.standardError.write(Data("exported \(count.formatted()) requests of run \(runID) to \(out!)\n".utf8)) }
    }
}

struct ExportCodeCarbon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codecarbon",
        abstract: "Write a run as CodeCarbon's emissions.csv: its column names, order and units.",
        discussion: """
        One row for the run, or one per wall-clock hour or accounting interval (--per). CodeCarbon's \
        dashboard and notebooks written for its emissions.csv load it as is. Energies are kWh with \
        PUE applied to each component (as CodeCarbon does), emissions kg CO2e location-based \
        (operational only: embodied carbon has no CodeCarbon column), duration seconds of the \
        run's time. Columns Joule has no figure for are empty or 0; docs/carbon.md lists the mapping.

        Examples:
          joule export codecarbon --run 3 --out emissions.csv
          joule export codecarbon --run 3 --per hour --project my-llm-service
        """
    )
    @OptionGroup var ledger: LedgerOptions
    @Option(name: .customLong("run"), help: "The run (see `joule runs`).") var runID: Int64
    @Option(help: "One row per run, hour or interval.") var per: String = "run"
    @Option(help: "CodeCarbon's project_name.") var project: String = "joule"
    @Option(help: ArgumentHelp("The file to write (default: standard output).", valueName: "file")) var out: String?

    func run() throws {
        guard let period = CodeCarbonExport.Period(rawValue: per) else {
            throw CLIError(message: "--per: expected run, hour or interval, got '\(per)'")
        }
        let store = try failing { try ledger.open(mustExist: true) }
        guard let export = try failing({ try CodeCarbonExport.build(store, run: runID, per: period, project: project) }) else {
            throw CLIError(message: "run \(runID) has no accounting intervals yet: nothing to export")
        }
        let target = try ExportTarget(out)
        defer { target.close() }
        try target.write(export.csv)
        if target.isFile { FileHandle.standardError.write(Data("wrote \(export.rows.count) row(s) of run \(runID) to \(out!)\n".utf8)) }
    }
}
