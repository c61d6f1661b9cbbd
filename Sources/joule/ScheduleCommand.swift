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

    struct Plan: Encodable {
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
        let points: [TimedValue]
        do {
            switch format {
            case .ukci: points = try UKCarbonIntensity.parse(try Data(contentsOf: URL(fileURLWithPath: forecast)), file: forecast)
            case .letsWaitAwhile: points = try LetsWaitAwhileCSV.parse(try String(contentsOfFile: forecast, encoding: .utf8), file: forecast)
            }
        } catch let error as CarbonDataError {
            throw CLIError(message: error.description)
        } catch {
            throw CLIError(message: "cannot read the forecast \(forecast): \((error as NSError).localizedDescription)")
        }
        func time(_ text: String?, _ flag: String) throws -> Double? {
            guard let text else { return nil }
            guard let t = WallClock.iso8601(text) else { throw CLIError(message: "\(flag): expected an ISO 8601 time such as 2023-03-15T12:00Z, got '\(text)'") }
            return t
        }
        guard windowMinutes > 0 else { throw CLIError(message: "--window-minutes: expected minutes above 0, got \(windowMinutes)") }
        let s = try time(start, "--start"), e = try time(end, "--end")
        let window = windowMinutes * 60
        let plan: Plan
        do {
            let windows = try WindowSearch.rollingAverages(points, window: window, start: s, end: e)
            let best = try WindowSearch.best(points, window: window, start: s, end: e)
            let now = windows[0]
            let iso = ISO8601DateFormatter()
            func w(_ v: TimedValue) -> Window {
                Window(start: iso.string(from: Date(timeIntervalSince1970: v.start)), end: iso.string(from: Date(timeIntervalSince1970: v.end)), intensityGramsPerKWh: v.value)
            }
            let bounds = (s ?? points[0].start, e ?? points.map(\.end).max()!)
            plan = Plan(
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
