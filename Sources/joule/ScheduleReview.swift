import Accounting
import ArgumentParser
import CarbonData
import CarbonLive
import Catalog
import Foundation
import Ledger
import Scheduling
import Serving

struct Review: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare stored plans with what the grid actually did: forecast against realised emissions.",
        discussion: """
        For each job stored by `joule schedule --store`, the realised intensity is the \
        time-weighted mean, over the job's slices, of the newest actual series of its region \
        that covers them fully (import or fetch actuals first); the baseline is the same for \
        starting at the earliest start in the baseline region. Jobs without actuals yet are \
        listed as waiting.

        Example:
          joule carbon import national_pt24h.json --format ukci --figure actual --db joule.sqlite
          joule schedule review --db joule.sqlite
        """
    )
    @OptionGroup var ledger: LedgerOptions
    @Flag(help: "Print as JSON.") var json = false

    struct Line: Encodable {
        var id: Int64
        var name: String
        var region: String
        var start: String
        var slices: Int
        var energyKWh: Double
        var forecastGramsPerKWh: Double
        var realisedGramsPerKWh: Double?
        var forecastKg: Double
        var realisedKg: Double?
        var forecastErrorPercent: Double?
        var forecastSavingPercent: Double
        var realisedBaselineGramsPerKWh: Double?
        var realisedSavingPercent: Double?
        var actualsFrom: String?
        var status: String
    }

    func run() throws {
        let lines = try failing { () -> [Line] in
            let l = try ledger.open(mustExist: true)
            return try l.scheduledJobs().map { job in
                let spans = job.slices.map { (start: $0.start, end: $0.end) }
                let realised = try l.realisedIntensity(region: job.region, signal: job.signal, spans: spans)
                let baseline = try l.realisedIntensity(
                    region: job.baselineRegion, signal: job.signal, spans: [(job.earliestStart, job.earliestStart + job.durationSeconds)]
                )
                let forecastKg = job.energyKWh * job.forecastGramsPerKWh / 1000
                return Line(
                    id: job.id!, name: job.name, region: job.region, start: isoString(job.slices.first?.start ?? job.earliestStart), slices: job.slices.count,
                    energyKWh: job.energyKWh, forecastGramsPerKWh: job.forecastGramsPerKWh, realisedGramsPerKWh: realised?.gramsPerKWh,
                    forecastKg: forecastKg, realisedKg: realised.map { job.energyKWh * $0.gramsPerKWh / 1000 },
                    forecastErrorPercent: realised.map { -CarbonPlan.percentBelow(job.forecastGramsPerKWh, $0.gramsPerKWh) },
                    forecastSavingPercent: CarbonPlan.percentBelow(job.forecastGramsPerKWh, job.startNowGramsPerKWh),
                    realisedBaselineGramsPerKWh: baseline?.gramsPerKWh,
                    realisedSavingPercent: realised.flatMap { r in baseline.map { CarbonPlan.percentBelow(r.gramsPerKWh, $0.gramsPerKWh) } },
                    actualsFrom: realised.map { "series \($0.series.id) (\($0.series.metadata.source))" },
                    status: realised == nil ? "waiting for actuals" : "realised"
                )
            }
        }
        if json {
            print(try jsonText(lines))
            return
        }
        guard !lines.isEmpty else {
            print("No scheduled jobs in \(ledger.db) (plan one with `joule schedule … --store`).")
            return
        }
        func g(_ v: Double?) -> String { v.map { $0.formatted(.number.precision(.fractionLength(1))) } ?? "—" }
        print("  id  job               region  start                  forecast g/kWh  realised g/kWh  forecast kg  realised kg  saving forecast/realised")
        for x in lines {
            print(String(x.id).leftPad(4) + "  " + x.name.padding(toLength: 18, withPad: " ", startingAt: 0) + x.region.padding(toLength: 8, withPad: " ", startingAt: 0)
                + x.start.padding(toLength: 22, withPad: " ", startingAt: 0) + g(x.forecastGramsPerKWh).leftPad(15) + g(x.realisedGramsPerKWh).leftPad(16)
                + g(x.forecastKg).leftPad(13) + g(x.realisedKg).leftPad(13) + "  \(g(x.forecastSavingPercent)) % / \(x.realisedSavingPercent.map { g($0) + " %" } ?? "—")"
                + (x.realisedGramsPerKWh == nil ? "  (waiting for actuals)" : ""))
        }
    }
}

struct Study: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay a daily job over a recorded series with growing flexibility (the Let's Wait Awhile study).",
        discussion: """
        Every day of the year the job may start anywhere within ± the flexibility of its usual \
        time and takes the earliest window with the lowest mean intensity. Prints the saving \
        against always starting at the usual time, per series and flexibility.

        Example:
          joule schedule study --series ger_ci.csv --series gb_ci.csv --series fr_ci.csv --at 01:00 --job-minutes 30 --year 2020
        """
    )

    @Option(help: "A recorded series (repeat for several regions); the file name names the column.") var series: [String]
    @Option(help: "The series' format (joule and lets-wait-awhile need no region here: the file name names the column).") var format: CarbonFormat = .letsWaitAwhile
    @Option(help: "The job's usual start, UTC (HH:MM).") var at = "01:00"
    @Option(name: .customLong("job-minutes"), help: "How long the job runs.") var jobMinutes = 30.0
    @Option(help: "The year to replay, every day of it.") var year = 2020
    @Option(name: .customLong("max-flex-hours"), help: "The largest ± flexibility.") var maxFlexHours = 8.0
    @Option(name: .customLong("step-minutes"), help: "Flexibility step.") var stepMinutes = 30.0
    @Flag(help: "Print the table as JSON.") var json = false

    struct Column: Encodable {
        var series: String
        var rows: [ShiftingStudy.Row]
    }

    func run() throws {
        guard let usual = WallClock.secondOfDay(at) else { throw CLIError(message: "--at: expected a time of day such as 01:00, got '\(at)'") }
        guard (1970...2199).contains(year) else { throw CLIError(message: "--year: expected 1970 to 2199, got \(year)") }
        guard jobMinutes.isFinite, (1...1440).contains(jobMinutes) else {
            throw CLIError(message: "--job-minutes: expected 1 to 1440 minutes, got \(jobMinutes)")
        }
        guard maxFlexHours.isFinite, (0...24).contains(maxFlexHours) else {
            throw CLIError(message: "--max-flex-hours: expected 0 to 24 hours, got \(maxFlexHours)")
        }
        guard stepMinutes.isFinite, (1...1440).contains(stepMinutes) else {
            throw CLIError(message: "--step-minutes: expected 1 to 1440 minutes, got \(stepMinutes)")
        }
        let first = Double(WallClock.daysFromCivil(year, 1, 1) * 86_400)
        let last = Double(WallClock.daysFromCivil(year + 1, 1, 1) * 86_400)
        let days = Array(stride(from: first, to: last, by: 86_400))
        let flexibilities = Array(stride(from: 0.0, through: maxFlexHours * 3600 + 1e-6, by: stepMinutes * 60))
        let columns = try series.map { path -> Column in
            let points: [TimedValue]
            if format == .letsWaitAwhile {
                // Each point lasts until the next, as in the Let's Wait Awhile study itself.
                do {
                    points = try LetsWaitAwhileCSV.parse(try String(contentsOfFile: path, encoding: .utf8), file: path)
                } catch let error as CarbonDataError {
                    throw CLIError(message: error.description)
                } catch {
                    throw CLIError(message: "cannot read \(path): \((error as NSError).localizedDescription)")
                }
            } else {
                points = try Schedule.readSeries(path, format: format, options: { var o = CarbonImportOptions(region: "study"); o.relabelRegion = true; return o }()).0.points
            }
            do {
                let rows = try ShiftingStudy.run(points, days: days, usualStart: usual, jobSeconds: jobMinutes * 60, flexibilities: flexibilities)
                return Column(series: URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent, rows: rows)
            } catch let error as WindowSearchError {
                throw CLIError(message: "\(path): \(error)")
            }
        }
        if json {
            print(try jsonText(columns))
            return
        }
        print("Saving against starting at \(at) UTC, a \(jobMinutes.formatted()) min job every day of \(year) (days with data: \(columns.map { "\($0.series) \($0.rows.first?.days ?? 0)" }.joined(separator: ", ")))")
        print("flexibility " + columns.map { $0.series.leftPad(10) }.joined(separator: " "))
        for (i, flex) in flexibilities.enumerated() {
            let label = "±" + (flex / 3600).formatted(.number.precision(.fractionLength(1))) + " h"
            print(label.padding(toLength: 11, withPad: " ", startingAt: 0) + " " + columns.map {
                (($0.rows[i].savingFraction * 100).formatted(.number.precision(.fractionLength(1))) + " %").leftPad(10)
            }.joined(separator: " "))
        }
    }
}
