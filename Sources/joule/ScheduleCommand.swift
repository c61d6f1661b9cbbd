import Accounting
import ArgumentParser
import CarbonData
import CarbonLive
import Catalog
import Foundation
import Ledger
import Scheduling
import Serving

struct Schedule: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Plan batch jobs into low-carbon windows and regions, and review them once actual intensities are known.",
        discussion: """
        Examples:
          joule schedule --forecast national_fw48h.json --format ukci --window-minutes 120 --start 2023-03-15T12:00Z --json
          joule schedule --region GB --region DE --window-minutes 240 --energy-kwh 900 --deadline 2024-05-02T06:00Z --db joule.sqlite
          joule schedule --region DE --source profile --window-minutes 180 --start 2026-12-01T00:00Z --end 2026-12-02T00:00Z
          joule schedule --forecast fw48h.json --format ukci --scenario mixtral-single-node --interruptible --min-slice-minutes 60 --store --db joule.sqlite
          joule schedule review --db joule.sqlite
          joule schedule study --series gb_ci.csv --series fr_ci.csv --at 01:00 --job-minutes 30 --year 2020
        """,
        subcommands: [Plan.self, Review.self, Study.self],
        defaultSubcommand: Plan.self
    )
}

extension Schedule {
    /// Reads a series file in `format`, translating its errors for the command line (the Let's
    /// Wait Awhile CSV keeps its own reading: each point lasts until the next).
    static func readSeries(_ path: String, format: CarbonFormat, options: CarbonImportOptions = .init()) throws -> (CarbonSeries, [CarbonDataWarning]) {
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            let result = try format.read(data, file: path, options: options)
            guard let last = result.series.last else { throw CarbonDataError.empty(file: path) }
            if result.series.count > 1 {
                return (last, result.warnings + [CarbonDataWarning(file: path, message: "\(result.series.count) forecasts in the file; using the last issued")])
            }
            return (last, result.warnings)
        } catch let error as CarbonDataError {
            throw CLIError(message: error.description)
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError(message: "cannot read \(path): \((error as NSError).localizedDescription)")
        }
    }
}

/// Where `joule schedule --region` takes its forecast from.
enum ForecastSource: String, ExpressibleByArgument, CaseIterable {
    case ledger, electricitymaps, watttime, ukci, profile
}

struct Plan: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Find the lowest-carbon time (and region) to run a batch job, from carbon-intensity forecasts.",
        discussion: """
        Slides a window as long as the job over each region's forecast, with the Carbon Aware \
        SDK's semantics: time-weighted means, windows stepping by the data's resolution from the \
        start, only windows the data covers fully, every window with the lowest mean returned in \
        time order (the first is the plan). An --interruptible job instead takes the lowest slots \
        before the deadline, no slice shorter than --min-slice-minutes. The saving is against \
        starting at the earliest start in the first region given.

        Forecasts: --forecast FILE (any `joule carbon import` format; repeat for several \
        regions), or --region with --source: ledger (the newest stored forecast, else actuals), a \
        live source (fetched and stored; credentials from the environment, see `joule carbon \
        fetch`), or profile (the typical day shipped in Data/grids: a climatology, not a forecast).

        The job: --window-minutes and --energy-kwh, or --scenario, whose duration and facility \
        energy Joule simulates, or --from-run, a stored run's (a measured run's metered energy, or \
        a simulated one's; the plan says which). --store keeps the plan in the ledger for `joule schedule review`.

        Examples:
          joule schedule --forecast national_fw48h.json --format ukci --window-minutes 120 --start 2023-03-15T12:00Z --json
          joule schedule --region GB --region DE --window-minutes 240 --energy-kwh 900 --db joule.sqlite
          joule schedule --region DE --source profile --window-minutes 180 --start 2026-12-01T00:00Z --end 2026-12-02T00:00Z
          joule schedule --forecast fw48h.json --format ukci --window-minutes 300 --interruptible --min-slice-minutes 60
          joule schedule --region DE --source profile --from-run 3 --db joule.sqlite
        """
    )

    @Option(help: "A forecast file (repeat for several regions).") var forecast: [String] = []
    @Option(help: "The forecast files' format: \(CarbonFormat.allCases.map(\.rawValue).joined(separator: ", ")).") var format: CarbonFormat = .ukci
    @Option(help: "A region: names the forecast files' regions in order, or, without --forecast, the regions to plan across (repeat).") var region: [String] = []
    @Option(help: "Without --forecast: ledger, electricitymaps, watttime, ukci or profile.") var source: ForecastSource = .ledger
    @Flag(name: .customLong("relabel-region"), help: "Plan a forecast file that names its region (a UK API response) as the --region given.")
    var relabelRegion = false
    @Option(help: "The signal to plan on (ledger and WattTime).") var signal: CarbonSignal = .average
    @Option(name: [.customLong("window-minutes"), .customLong("duration-minutes")], help: "How long the job runs.") var windowMinutes: Double?
    @Option(name: .customLong("energy-kwh"), help: "The job's energy, for its emissions.") var energyKWh: Double?
    @Option(help: "A scenario (file or name in Data/scenarios) whose simulated duration and facility energy are the job's.") var scenario: String?
    @Option(name: .customLong("from-run"), help: "A stored run (measured or simulated) whose duration and facility energy are the job's.")
    var fromRun: Int64?
    @Option(name: .customLong("scenario-duration"), help: "Simulated seconds of the scenario (default: its own).") var scenarioDuration: Double?
    @Option(help: "Earliest start (ISO 8601; default: the forecast's first point).") var start: String?
    @Option(name: [.customLong("end"), .customLong("deadline")], help: "When the job must have finished (ISO 8601; default: the forecast's end).") var end: String?
    @Flag(help: "The job may pause and resume: plan the lowest slots before the deadline.") var interruptible = false
    @Option(name: .customLong("min-slice-minutes"), help: "Interruptible jobs: the shortest stretch worth running.") var minSliceMinutes = 30.0
    @Flag(help: "Store the plan in the ledger (see `joule schedule review`).") var store = false
    @Option(help: "A name for the stored job.") var name: String?
    @Flag(help: "Print the plan as JSON.") var json = false
    @OptionGroup var ledger: LedgerOptions
    @OptionGroup var data: DataOptions

    typealias Window = PlanWindow

    struct RegionPlan: Encodable {
        var region: String
        var forecast: String
        var factor: String
        var signal: String
        var best: Window
        var allBest: [Window]
        var slices: [Window]?
        var startingNow: Window
        var windowsCompared: Int
        var savingPercent: Double
    }

    struct Result: Encodable {
        var forecast: String
        var region: String
        var windowMinutes: Double
        var energyKWh: Double?
        /// Where the job's energy comes from: given, a scenario simulated now, or a stored run (measured or simulated).
        var energySource: String?
        var interruptible: Bool
        var searchStart: String
        var searchEnd: String
        var best: Window
        var allBest: [Window]
        var slices: [Window]?
        var startingNow: Window
        var baselineRegion: String
        var savingPercent: Double
        var emissionsKg: Double?
        var emissionsStartingNowKg: Double?
        var windowsCompared: Int
        var regions: [RegionPlan]
        var storedJobId: Int64?
    }

    /// One region's forecast and where it came from.
    struct Candidate {
        var series: CarbonSeries
        var storedId: Int64?
    }

    func window(_ v: TimedValue) -> Window { PlanWindow(v) }

    func run() async throws {
        let s = try parseTime(start, "--start"), e = try parseTime(end, "--end")
        if let s, let e, e <= s { throw CLIError(message: "--end (the deadline) \(isoString(e)) is not after --start \(isoString(s))") }
        guard minSliceMinutes.isFinite, minSliceMinutes >= 0, minSliceMinutes <= 527_040 else {
            throw CLIError(message: "--min-slice-minutes: expected 0 to 527040 minutes (366 days), got \(minSliceMinutes)")
        }
        let (duration, energy, energySource) = try job()
        let candidates = try await forecasts(from: s, to: e, duration: duration)
        let plan: CarbonPlan
        do {
            plan = try CarbonPlanner.plan(candidates.map(\.series), duration: duration, start: s, end: e, interruptible: interruptible,
                                          minimumSlice: minSliceMinutes * 60)
        } catch let error as CarbonPlanError {
            throw CLIError(message: error.description)
        }
        let factors = Set(candidates.map { "\($0.series.metadata.signal.rawValue) \($0.series.metadata.factor.rawValue)" })
        if factors.count > 1 {
            FileHandle.standardError.write(Data("warning: the regions' forecasts differ in signal or factor type (\(factors.sorted().joined(separator: "; "))): their intensities are not strictly comparable\n".utf8))
        }
        let regions = plan.regions.map { r in
            RegionPlan(
                region: r.metadata.region, forecast: r.metadata.origin, factor: r.metadata.factor.rawValue, signal: r.metadata.signal.rawValue,
                best: window(r.chosen), allBest: r.best.map(window), slices: r.slices?.map(window), startingNow: window(r.startingNow),
                windowsCompared: r.windowsCompared, savingPercent: r.savingPercent
            )
        }
        let chosen = regions[plan.winner]
        let emissions = energy.map { plan.emissionsKg(energyKWh: $0) }
        var result = Result(
            forecast: chosen.forecast, region: chosen.region, windowMinutes: duration / 60, energyKWh: energy, energySource: energySource, interruptible: interruptible,
            searchStart: isoString(plan.searchStart), searchEnd: isoString(plan.searchEnd), best: chosen.best, allBest: chosen.allBest,
            slices: chosen.slices, startingNow: window(plan.baseline), baselineRegion: regions[0].region, savingPercent: plan.savingPercent,
            emissionsKg: emissions?.planned, emissionsStartingNowKg: emissions?.startingNow, windowsCompared: plan.windowsCompared,
            regions: regions, storedJobId: nil
        )
        if store {
            guard let energy else { throw CLIError(message: "--store needs the job's energy: --energy-kwh, --scenario or --from-run") }
            let c = candidates[plan.winner]
            let w = plan.chosen
            result.storedJobId = try failing {
                let l = try ledger.open()
                let now = Date().timeIntervalSince1970
                let seriesId = try c.storedId ?? l.store(c.series, at: now)
                return try l.store(ScheduledJob(
                    name: name ?? scenario ?? "job", createdAt: now, region: w.metadata.region, signal: c.series.metadata.signal, forecastSeriesId: seriesId,
                    forecastOrigin: c.series.metadata.origin, earliestStart: plan.searchStart, deadline: plan.searchEnd, durationSeconds: duration,
                    energyKWh: energy, interruptible: interruptible, slices: w.slices ?? [w.chosen], forecastGramsPerKWh: w.chosen.value,
                    baselineRegion: regions[0].region, startNowGramsPerKWh: plan.baseline.value
                ))
            }
        }
        if json {
            print(try jsonText(result))
            return
        }
        printPlan(result)
    }

    /// The job's duration (seconds), energy (kWh, if known) and where the energy comes from: given,
    /// simulated from --scenario, or a stored run's (--from-run, labelled measured or simulated).
    func job() throws -> (Double, Double?, String?) {
        if let windowMinutes, !(windowMinutes.isFinite && windowMinutes >= 1.0 / 60 && windowMinutes <= 366 * 1440) {
            throw CLIError(message: "--window-minutes: expected 0.0167 (one second) to 527040 minutes (366 days), got \(windowMinutes)")
        }
        if let energyKWh, !(energyKWh.isFinite && energyKWh >= 0 && energyKWh <= 1e12) {
            throw CLIError(message: "--energy-kwh: expected 0 to 1e12 kWh, got \(energyKWh)")
        }
        if let fromRun {
            guard scenario == nil else { throw CLIError(message: "--from-run: give a stored run or a --scenario to simulate, not both") }
            let run = try failing { try ledger.open(mustExist: true).run(fromRun) }
            guard let text = run.summary, let summary = try? JSONDecoder().decode(RunSummary.self, from: Data(text.utf8)) else {
                throw CLIError(message: "--from-run: run \(fromRun) has no summary (it has not finished): its energy is not known yet")
            }
            let source = "\(run.mode.rawValue): run \(fromRun) (\(run.name))"
            return (windowMinutes.map { $0 * 60 } ?? summary.simulatedSeconds, energyKWh ?? summary.energyKWh, energyKWh == nil ? source : "given (--energy-kwh)")
        }
        guard let scenario else {
            guard let windowMinutes else { throw CLIError(message: "give the job's length (--window-minutes), a --scenario to simulate or a stored run (--from-run)") }
            return (windowMinutes * 60, energyKWh, energyKWh.map { _ in "given (--energy-kwh)" })
        }
        let (duration, joules) = try failing { () -> (Double, Double) in
            let (library, directory) = try Composition.library(data)
            let path = try Catalog.scenarioPath(scenario, dataDirectory: directory)
            let loaded = try Catalog.loadScenario(at: path, library: library, dataDirectory: directory)
            let prepared = try Catalog.prepare(loaded, overrides: RunOverrides(duration: scenarioDuration))
            var joules = 0.0, first = Double.infinity, last = -Double.infinity
            FileHandle.standardError.write(Data("simulating \(prepared.scenario.name) for the job's energy…\n".utf8))
            _ = try prepared.run(onRecord: { _ in }, onInterval: { i in
                joules += i.facilityJoules
                first = min(first, i.start)
                last = max(last, i.end)
            })
            return (last - first, joules)
        }
        return (windowMinutes.map { $0 * 60 } ?? duration, energyKWh ?? joules / 3.6e6, energyKWh == nil ? "simulated: scenario \(scenario)" : "given (--energy-kwh)")
    }

    /// Each region's forecast.
    func forecasts(from s: Double?, to e: Double?, duration: Double) async throws -> [Candidate] {
        if !forecast.isEmpty {
            guard region.isEmpty || region.count == forecast.count || region.count == 1 else {
                throw CLIError(message: "--region: give one region per --forecast file (\(forecast.count)), or one for all")
            }
            return try forecast.enumerated().map { i, path in
                let r = region.isEmpty ? nil : region[region.count == 1 ? 0 : i]
                var options = CarbonImportOptions(region: r)
                options.relabelRegion = relabelRegion
                let (series, warnings) = try Schedule.readSeries(path, format: format, options: options)
                printWarnings(warnings)
                return Candidate(series: series)
            }
        }
        guard !region.isEmpty else { throw CLIError(message: "give a --forecast file, or --region (with --source) to plan across") }
        var out: [Candidate] = []
        for r in region {
            switch source {
            case .ledger:
                let l = try failing { try ledger.open(mustExist: true) }
                let found = try failing { try l.planningSeries(region: r, signal: signal) }
                guard let (stored, series) = found else {
                    throw CLIError(message: "no \(signal.rawValue) series for region \(r) in \(ledger.db): `joule carbon fetch` or `joule carbon import` one, or use --source profile")
                }
                out.append(Candidate(series: series, storedId: stored.id))
            case .profile:
                let (_, directory) = try failing { try Composition.library(data) }
                let grids = try failing { try Catalog.loadGridDefaults(dataDirectory: directory) }
                guard let profile = grids.profile(region: r) else {
                    throw CLIError(message: "no daily profile for \(r) in Data/grids (profiles: \(Set(grids.profiles.map(\.region)).sorted().joined(separator: ", ")))")
                }
                let from = s ?? (Date().timeIntervalSince1970 / 3600).rounded(.down) * 3600
                let to = e ?? from + max(86_400, 2 * duration)
                FileHandle.standardError.write(Data("note: \(r) planned on its typical 2023 day (\(profile.source)), not a forecast\n".utf8))
                out.append(Candidate(series: CarbonSeries(metadata: profile.series, checkedPoints: profile.points(from: from, to: to))))
            case .electricitymaps, .watttime, .ukci:
                let live = LiveSource(rawValue: source.rawValue)!
                do {
                    let client = try LiveCarbonClient(source: live, fetcher: HTTPFetcher(onRetry: reportRetry))
                    let result = try await client.fetch(zone: r, query: .forecast, signal: signal)
                    printWarnings(result.warnings)
                    let series = result.series.last!
                    let id = try failing { try ledger.open().store(series, at: Date().timeIntervalSince1970) }
                    out.append(Candidate(series: series, storedId: id))
                } catch let error as LiveSourceError {
                    throw CLIError(message: error.description)
                }
            }
        }
        return out
    }

    func printPlan(_ plan: Result) {
        func g(_ v: Double) -> String { v.formatted(.number.precision(.fractionLength(1))) }
        if plan.regions.count > 1 {
            print("Region      best start              gCO2/kWh   starting at the earliest   saving")
            for r in plan.regions {
                print(r.region.padding(toLength: 12, withPad: " ", startingAt: 0) + r.best.start.padding(toLength: 24, withPad: " ", startingAt: 0)
                    + g(r.best.intensityGramsPerKWh).leftPad(8) + g(r.startingNow.intensityGramsPerKWh).leftPad(27) + (g(r.savingPercent) + " %").leftPad(9))
            }
            print("")
        }
        let whereText = plan.regions.count > 1 ? " in \(plan.region)" : ""
        if let slices = plan.slices {
            print("Run\(whereText) in \(slices.count) slice(s), \(g(plan.best.intensityGramsPerKWh)) gCO2/kWh on average over \(plan.windowMinutes.formatted()) min:")
            for s in slices { print("  \(s.start) to \(s.end)  \(g(s.intensityGramsPerKWh)) gCO2/kWh") }
        } else {
            print("Best start\(whereText) \(plan.best.start) (until \(plan.best.end)): \(g(plan.best.intensityGramsPerKWh)) gCO2/kWh on average over \(plan.windowMinutes.formatted()) min")
        }
        print("Starting at \(plan.startingNow.start)\(plan.regions.count > 1 ? " in \(plan.baselineRegion)" : "") instead: \(g(plan.startingNow.intensityGramsPerKWh)) gCO2/kWh; saving \(g(plan.savingPercent)) %")
        if plan.slices == nil {
            print("\(plan.allBest.count) window(s) share the minimum; \(plan.windowsCompared) compared between \(plan.searchStart) and \(plan.searchEnd)")
        }
        if let kg = plan.emissionsKg, let now = plan.emissionsStartingNowKg {
            print("Emissions \(g(kg)) kgCO2 for \(g(plan.energyKWh ?? 0)) kWh (instead of \(g(now)) kg)\(plan.energySource.map { "; the job's energy: \($0)" } ?? "")")
        }
        if let id = plan.storedJobId { print("Stored as scheduled job \(id): `joule schedule review --db \(ledger.db)` compares it with actual intensities once known") }
    }
}
