import ArgumentParser
import CarbonData
import Foundation
import Scheduling
import Serving

/// Forecast file formats `joule schedule` reads.
enum ForecastFormat: String, ExpressibleByArgument, CaseIterable {
    case ukci
    case letsWaitAwhile = "lets-wait-awhile"
}

struct Schedule: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Plan batch jobs into low-carbon windows.",
        discussion: """
        Examples:
          joule schedule --forecast national_fw48h.json --format ukci --window-minutes 120 --start 2023-03-15T12:00Z --json
          joule schedule study --series gb_ci.csv --series fr_ci.csv --at 01:00 --job-minutes 30 --year 2020
        """,
        subcommands: [Plan.self, Study.self],
        defaultSubcommand: Plan.self
    )
}

extension Schedule {
    /// Reads a forecast or series file in `format`, translating its errors for the command line.
    static func readSeries(_ path: String, format: ForecastFormat) throws -> [TimedValue] {
        do {
            switch format {
            case .ukci: return try UKCarbonIntensity.parse(try Data(contentsOf: URL(fileURLWithPath: path)), file: path)
            case .letsWaitAwhile: return try LetsWaitAwhileCSV.parse(try String(contentsOfFile: path, encoding: .utf8), file: path)
            }
        } catch let error as CarbonDataError {
            throw CLIError(message: error.description)
        } catch {
            throw CLIError(message: "cannot read \(path): \((error as NSError).localizedDescription)")
        }
    }
}

struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find the lowest-carbon time to run a batch job, from a carbon-intensity forecast.",
        discussion: """
        Slides a window as long as the job over the forecast, with the Carbon Aware SDK's \
        semantics: time-weighted means, windows stepping by the data's resolution from the \
        start, only windows the data covers fully. Prints every window with the lowest mean (the \
        first is the plan) and the saving against starting at the start of the search.

        Examples:
          joule schedule --forecast national_fw48h.json --format ukci --window-minutes 120 --start 2023-03-15T12:00Z --json
          joule schedule --forecast gb_ci.csv --format lets-wait-awhile --window-minutes 30 --start 2020-06-01T00:00Z --end 2020-06-02T00:00Z --energy-kwh 120
        """
    )

    @Option(help: "A forecast file.") var forecast: String
    @Option(help: "Its format: ukci (a raw UK Carbon Intensity API response) or lets-wait-awhile (CSV).") var format: ForecastFormat
    @Option(name: .customLong("window-minutes"), help: "How long the job runs.") var windowMinutes: Double
    @Option(help: "Earliest start (ISO 8601; default: the forecast's first point).") var start: String?
    @Option(help: "Latest end (ISO 8601; default: the forecast's end).") var end: String?
    @Option(name: .customLong("energy-kwh"), help: "The job's energy, for its emissions.") var energyKWh: Double?
    @Flag(help: "Print the plan as JSON.") var json = false

    struct Window: Encodable {
        var start: String
        var end: String
        var intensityGramsPerKWh: Double
    }

    struct Result: Encodable {
        var forecast: String
        var windowMinutes: Double
        var searchStart: String
        var searchEnd: String
        var best: Window
        var allBest: [Window]
        var startingNow: Window
        var savingPercent: Double
        var emissionsKg: Double?
        var emissionsStartingNowKg: Double?
        var windowsCompared: Int
    }

    func run() throws {
        let points = try Schedule.readSeries(forecast, format: format)
        func time(_ text: String?, _ flag: String) throws -> Double? {
            guard let text else { return nil }
            guard let t = WallClock.iso8601(text) else { throw CLIError(message: "\(flag): expected an ISO 8601 time such as 2023-03-15T12:00Z, got '\(text)'") }
            return t
        }
        guard windowMinutes > 0 else { throw CLIError(message: "--window-minutes: expected minutes above 0, got \(windowMinutes)") }
        let s = try time(start, "--start"), e = try time(end, "--end")
        let window = windowMinutes * 60
        let plan: Result
        do {
            let windows = try WindowSearch.rollingAverages(points, window: window, start: s, end: e)
            let best = try WindowSearch.best(points, window: window, start: s, end: e)
            let now = windows[0]
            let iso = ISO8601DateFormatter()
            func w(_ v: TimedValue) -> Window {
                Window(start: iso.string(from: Date(timeIntervalSince1970: v.start)), end: iso.string(from: Date(timeIntervalSince1970: v.end)), intensityGramsPerKWh: v.value)
            }
            let bounds = (s ?? points[0].start, e ?? points.map(\.end).max()!)
            plan = Result(
                forecast: forecast, windowMinutes: windowMinutes,
                searchStart: iso.string(from: Date(timeIntervalSince1970: bounds.0)), searchEnd: iso.string(from: Date(timeIntervalSince1970: bounds.1)),
                best: w(best[0]), allBest: best.map(w), startingNow: w(now),
                savingPercent: now.value > 0 ? 100 * (now.value - best[0].value) / now.value : 0,
                emissionsKg: energyKWh.map { $0 * best[0].value / 1000 }, emissionsStartingNowKg: energyKWh.map { $0 * now.value / 1000 },
                windowsCompared: windows.count
            )
        } catch let error as WindowSearchError {
            throw CLIError(message: "\(forecast): \(error)")
        }
        if json {
            print(try jsonText(plan))
            return
        }
        func g(_ v: Double) -> String { v.formatted(.number.precision(.fractionLength(1))) }
        print("""
        Best start \(plan.best.start) (until \(plan.best.end)): \(g(plan.best.intensityGramsPerKWh)) gCO2/kWh on average over \(windowMinutes.formatted()) min
        Starting at \(plan.startingNow.start) instead: \(g(plan.startingNow.intensityGramsPerKWh)) gCO2/kWh; saving \(g(plan.savingPercent)) %
        \(plan.allBest.count) window(s) share the minimum; \(plan.windowsCompared) compared between \(plan.searchStart) and \(plan.searchEnd)
        """ + (plan.emissionsKg.map { "\nEmissions \(g($0)) kgCO2 (instead of \(g(plan.emissionsStartingNowKg!)) kg)" } ?? ""))
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
    @Option(help: "The series' format.") var format: ForecastFormat = .letsWaitAwhile
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
        guard jobMinutes > 0, maxFlexHours >= 0, stepMinutes > 0 else {
            throw CLIError(message: "--job-minutes and --step-minutes must be above 0, --max-flex-hours at least 0")
        }
        let first = Double(WallClock.daysFromCivil(year, 1, 1) * 86_400)
        let last = Double(WallClock.daysFromCivil(year + 1, 1, 1) * 86_400)
        let days = Array(stride(from: first, to: last, by: 86_400))
        let flexibilities = Array(stride(from: 0.0, through: maxFlexHours * 3600 + 1e-6, by: stepMinutes * 60))
        let columns = try series.map { path -> Column in
            let points = try Schedule.readSeries(path, format: format)
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
