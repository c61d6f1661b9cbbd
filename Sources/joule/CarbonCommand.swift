import Accounting
import ArgumentParser
import CarbonData
import CarbonLive
import Catalog
import Foundation
import Ledger
import Scheduling
import Serving

extension CarbonFormat: ExpressibleByArgument {}
extension CarbonSignal: ExpressibleByArgument {}
extension EmissionFactorType: ExpressibleByArgument {}
extension SeriesKind: ExpressibleByArgument {}
extension LiveSource: ExpressibleByArgument {}
extension LiveQuery: ExpressibleByArgument {}
extension UKCarbonIntensity.Figure: ExpressibleByArgument {}

struct Carbon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bring grid carbon intensity into the ledger: import files, fetch live sources, show what is stored.",
        discussion: """
        Examples:
          joule carbon import DE-LU_2023_hourly.csv --format electricitymaps-csv --factor direct --db joule.sqlite
          joule carbon import national_fw48h.json --format ukci --issued-at 2023-03-14T03:31Z
          joule carbon fetch --source ukci --zone GB --query forecast
          ELECTRICITYMAPS_API_KEY=… joule carbon fetch --source electricitymaps --zone DE
          joule carbon show --region GB --from 2023-03-15T00:00Z --to 2023-03-16T00:00Z
        """,
        subcommands: [CarbonImportCommand.self, CarbonShow.self, CarbonFetch.self, CarbonDefaults.self]
    )
}

/// Parses an optional ISO 8601 option, naming the flag on error.
func parseTime(_ text: String?, _ flag: String) throws -> Double? {
    guard let text else { return nil }
    guard let t = WallClock.iso8601(text) else { throw CLIError(message: "\(flag): expected an ISO 8601 time such as 2023-03-15T12:00Z, got '\(text)'") }
    return t
}

func isoString(_ t: Double) -> String {
    WallClock.string(t)
}

/// A progress line on standard error for a live fetch that will try again.
@Sendable func reportRetry(attempt: Int, delay: Double, reason: String) {
    FileHandle.standardError.write(Data("attempt \(attempt) failed (\(reason)); retrying in \(delay.formatted()) s\n".utf8))
}

func printWarnings(_ warnings: [CarbonDataWarning]) {
    for w in warnings { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
}

/// One line describing a series: what, where from, how much.
func describe(_ m: SeriesMetadata, points: Int, start: Double, end: Double) -> String {
    var text = "\(m.region) \(m.signal.rawValue) \(m.factor.rawValue) \(m.kind.rawValue) from \(m.source)"
    if let issued = m.issuedAt { text += " issued \(isoString(issued))" }
    text += ": \(points.formatted()) point(s), \(isoString(start)) to \(isoString(end)), every \((m.resolutionSeconds / 60).formatted()) min"
    return text
}

struct CarbonImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Read carbon-intensity files and store their series in the ledger.",
        discussion: """
        Formats: joule (timestamp,gco2_per_kwh), ukci (a raw UK Carbon Intensity API response), \
        lets-wait-awhile (Time,Carbon Intensity), electricitymaps (an API response: latest, \
        history, past-range or forecast), electricitymaps-csv (a data-portal export), watttime (a \
        v3 response; lbs/MWh become g/kWh). A file with an error stores nothing; repairs (sorting, \
        dropping exact duplicates) and gaps are reported as warnings.

        Examples:
          joule carbon import grid.csv --format joule --region CN-BJ --factor direct
          joule carbon import DE-LU_2023_hourly.csv --format electricitymaps-csv --factor lifecycle
          joule carbon import forecast.json --format watttime
        """
    )

    @Argument(help: "The files.") var files: [String]
    @Option(help: "Their format: \(CarbonFormat.allCases.map(\.rawValue).joined(separator: ", ")).") var format: CarbonFormat
    @Option(help: "The region (required for joule and lets-wait-awhile; checked against the file otherwise).") var region: String?
    @Flag(name: .customLong("relabel-region"), help: "Store a file that names its region (a UK API response) under --region instead; recorded in the series' origin.")
    var relabelRegion = false
    @Option(help: "The signal, where the format does not say: average or marginal.") var signal: CarbonSignal?
    @Option(help: "The factor type: direct or lifecycle (picks the electricitymaps-csv column; labels joule files).") var factor: EmissionFactorType?
    @Option(help: "UK responses: read the forecast or the actual figure.") var figure: UKCarbonIntensity.Figure = .forecast
    @Option(name: .customLong("issued-at"), help: "When the forecast in the file was issued (ISO 8601), where the file does not say.") var issuedAt: String?
    @OptionGroup var ledger: LedgerOptions

    func run() throws {
        var options = CarbonImportOptions(region: region, signal: signal, factor: factor, ukFigure: figure, issuedAt: try parseTime(issuedAt, "--issued-at"))
        options.relabelRegion = relabelRegion
        // Read every file first: one bad file stores nothing.
        var imports: [(String, CarbonImport)] = []
        for file in files {
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: file))
            } catch {
                throw CLIError(message: "cannot read \(file): \((error as NSError).localizedDescription)")
            }
            do {
                imports.append((file, try format.read(data, file: file, options: options)))
            } catch let error as CarbonDataError {
                throw CLIError(message: error.description)
            }
        }
        // Every series of every file in one transaction: a failure (a full disk, a kill) stores none.
        try failing {
            let l = try ledger.open()
            let series = imports.flatMap(\.1.series)
            let ids = try l.store(series, at: Date().timeIntervalSince1970)
            for (_, result) in imports { printWarnings(result.warnings) }
            for (id, s) in zip(ids, series) {
                print("stored series \(id): " + describe(s.metadata, points: s.points.count, start: s.start, end: s.end))
            }
        }
    }
}

struct CarbonShow: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "List the series stored for a region and print the points of the newest one that matches.",
        discussion: """
        Examples:
          joule carbon show --region GB
          joule carbon show --region DE --kind actual --factor direct --from 2023-06-01T00:00Z --to 2023-06-02T00:00Z
          joule carbon show --region GB --series 4 --json
        """
    )

    @Option(help: "The region.") var region: String
    @Option(help: "Only this signal.") var signal: CarbonSignal?
    @Option(help: "Only this factor type.") var factor: EmissionFactorType?
    @Option(help: "Only actual or forecast series.") var kind: SeriesKind?
    @Option(help: "Only this source (electricitymaps, watttime, ukci, joule-csv, …).") var source: String?
    @Option(help: "This stored series (an id from the list).") var series: Int64?
    @Option(help: "From (ISO 8601).") var from: String?
    @Option(help: "To (ISO 8601).") var to: String?
    @Option(help: "Print at most this many points (0: all).") var limit = 48
    @Flag(help: "Print as JSON (all points in range).") var json = false
    @OptionGroup var ledger: LedgerOptions

    struct Output: Encodable {
        var series: [StoredSeries]
        var shown: SeriesMetadata?
        var shownId: Int64?
        var points: [TimedValue]
    }

    func run() throws {
        let f = try parseTime(from, "--from"), t = try parseTime(to, "--to")
        if let f, let t, t <= f { throw CLIError(message: "--to must be after --from") }
        let (all, chosen) = try failing { () -> ([StoredSeries], (StoredSeries, CarbonSeries)?) in
            let l = try ledger.open(mustExist: true)
            let filter = SeriesFilter(region: region, signal: signal, factor: factor, kind: kind, source: source)
            let all = try l.matchingSeries(filter)
            if let id = series {
                guard let stored = all.first(where: { $0.id == id }) else {
                    throw CLIError(message: "--series \(id): no such series for region \(region) (see `joule carbon show --region \(region)`)")
                }
                return (all, try l.series(id: id, from: f, to: t).map { (stored, $0) })
            }
            return (all, try l.newestSeries(filter, from: f, to: t))
        }
        if all.isEmpty {
            throw CLIError(message: "no carbon-intensity series for region \(region) matches in \(ledger.db) (import one: `joule carbon import`, or `joule carbon fetch`)")
        }
        if json {
            print(try jsonText(Output(series: all, shown: chosen?.1.metadata, shownId: chosen?.0.id, points: chosen?.1.points ?? [])))
            return
        }
        print("Series for \(region):")
        for s in all {
            print("  \(String(s.id).leftPad(4))  " + describe(s.metadata, points: s.pointCount, start: s.firstStart, end: s.lastEnd))
        }
        guard let (stored, s) = chosen else {
            print("No points in the range asked.")
            return
        }
        print("\nSeries \(stored.id)\(f != nil || t != nil ? " between \(f.map(isoString) ?? "its start") and \(t.map(isoString) ?? "its end")" : ""), gCO2/kWh:")
        let shown = limit > 0 ? Array(s.points.prefix(limit)) : s.points
        for p in shown {
            print("  \(isoString(p.start))  \((p.duration / 60).formatted().leftPad(5)) min  \(p.value.formatted(.number.precision(.fractionLength(1))).leftPad(8))")
        }
        if shown.count < s.points.count { print("  … \(s.points.count - shown.count) more (--limit 0 for all)") }
        if !s.gaps.isEmpty { print("  \(s.gaps.count) gap(s) in this range") }
    }
}

struct CarbonFetch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Fetch a zone's carbon intensity from a live source and store it in the ledger.",
        discussion: """
        Credentials come from the environment only: ELECTRICITYMAPS_API_KEY for Electricity Maps; \
        WATTTIME_USERNAME and WATTTIME_PASSWORD for WattTime; the UK API needs none. \
        JOULE_<SOURCE>_URL replaces a source's base URL (a proxy or a test server). A series of the \
        same source, zone and query stored less than --max-age-minutes ago is used as is (the \
        cache); --max-age-minutes 0 always asks. Requests time out, and 429, 5xx and broken \
        connections are retried with exponential backoff (the server's Retry-After wins).

        Examples:
          joule carbon fetch --source ukci --zone GB --query forecast
          ELECTRICITYMAPS_API_KEY=… joule carbon fetch --source electricitymaps --zone DE --query history
          WATTTIME_USERNAME=… WATTTIME_PASSWORD=… joule carbon fetch --source watttime --zone CAISO_NORTH --signal marginal
        """
    )

    @Option(help: "The source: electricitymaps, watttime or ukci.") var source: LiveSource
    @Option(help: "The zone or region (DE, GB, US-CAL-CISO, CAISO_NORTH, …).") var zone: String
    @Option(help: "latest, history or forecast.") var query: LiveQuery = .forecast
    @Option(help: "WattTime: marginal (co2_moer) or average (co2_aoer).") var signal: CarbonSignal = .marginal
    @Option(name: .customLong("max-age-minutes"), help: "Use a stored answer younger than this.") var maxAgeMinutes = 15.0
    @Option(name: .customLong("timeout-seconds"), help: "Per request.") var timeoutSeconds = 20.0
    @Option(help: "Attempts in all.") var attempts = 4
    @Flag(help: "Print the series as JSON.") var json = false
    @OptionGroup var ledger: LedgerOptions

    struct Output: Encodable {
        var seriesId: Int64
        var cached: Bool
        var metadata: SeriesMetadata
        var points: [TimedValue]
    }

    func run() async throws {
        guard (1...20).contains(attempts) else { throw CLIError(message: "--attempts: expected 1 to 20, got \(attempts)") }
        guard timeoutSeconds.isFinite, timeoutSeconds > 0, timeoutSeconds <= 3600 else {
            throw CLIError(message: "--timeout-seconds: expected above 0 and up to 3600 seconds, got \(timeoutSeconds)")
        }
        guard maxAgeMinutes.isFinite, maxAgeMinutes >= 0, maxAgeMinutes <= 527_040 else {
            throw CLIError(message: "--max-age-minutes: expected 0 to 527040 minutes (366 days), got \(maxAgeMinutes)")
        }
        let l = try failing { try ledger.open() }
        let now = Date().timeIntervalSince1970
        let sourceName = source.rawValue
        let fetcher = HTTPFetcher(policy: RetryPolicy(attempts: attempts, timeout: timeoutSeconds), onRetry: reportRetry)
        let client: LiveCarbonClient
        do {
            client = try LiveCarbonClient(source: source, fetcher: fetcher)
        } catch let error as LiveSourceError {
            throw CLIError(message: error.description)
        }
        let kind = client.kind(of: query)
        if maxAgeMinutes > 0,
           let cached = try failing({ try l.matchingSeries(SeriesFilter(region: zone, kind: kind, source: sourceName)) })
               .first(where: { now - $0.storedAt < maxAgeMinutes * 60 && $0.metadata.origin.contains("://") }),
           let s = try failing({ try l.series(id: cached.id) }) {
            report(Output(seriesId: cached.id, cached: true, metadata: s.metadata, points: s.points), age: now - cached.storedAt)
            return
        }
        let result: CarbonImport
        do {
            result = try await client.fetch(zone: zone, query: query, signal: signal)
        } catch let error as LiveSourceError {
            throw CLIError(message: error.description)
        }
        printWarnings(result.warnings)
        for s in result.series {
            let id = try failing { try l.store(s, at: now) }
            report(Output(seriesId: id, cached: false, metadata: s.metadata, points: s.points), age: nil)
        }
    }

    func report(_ output: Output, age: Double?) {
        if json {
            print((try? jsonText(output)) ?? "{}")
            return
        }
        let m = output.metadata
        let head = age.map { "cached series \(output.seriesId) (stored \(Int($0)) s ago; --max-age-minutes 0 to ask again)" } ?? "stored series \(output.seriesId)"
        print("\(head): " + describe(m, points: output.points.count, start: output.points.first?.start ?? 0, end: output.points.last?.end ?? 0))
        if let low = output.points.min(by: { $0.value < $1.value }), let high = output.points.max(by: { $0.value < $1.value }) {
            print("  lowest \(low.value.formatted(.number.precision(.fractionLength(1)))) gCO2/kWh at \(isoString(low.start)); highest \(high.value.formatted(.number.precision(.fractionLength(1)))) at \(isoString(high.start))")
        }
    }
}

struct CarbonDefaults: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "defaults",
        abstract: "List the grid defaults shipped in Data/grids: annual averages and typical daily profiles.",
        discussion: """
        A scenario uses an annual average with `carbon: {region: CN-BJ, grid: CN-BJ}`; \
        `joule schedule --profile` plans with a daily profile when no forecast is at hand.

        Examples:
          joule carbon defaults
          joule carbon defaults --region CN-GD
          joule carbon defaults --region DE --json
        """
    )
    @Option(help: "Only this region (case-insensitive; a prefix such as CN- or US- lists a country's regions).") var region: String?
    @Flag(help: "Print as JSON.") var json = false
    @OptionGroup var data: DataOptions

    struct Output: Encodable {
        var annual: [GridAnnualFactor]
        var profiles: [GridProfile]
    }

    func run() throws {
        let (_, directory) = try failing { try Composition.library(data) }
        let grids = try failing { try Catalog.loadGridDefaults(dataDirectory: directory) }
        func matches(_ r: String) -> Bool {
            guard let region else { return true }
            return region.hasSuffix("-") ? r.uppercased().hasPrefix(region.uppercased()) : r.uppercased() == region.uppercased()
        }
        let out = Output(annual: grids.annual.filter { matches($0.region) }, profiles: grids.profiles.filter { matches($0.region) })
        if out.annual.isEmpty && out.profiles.isEmpty {
            throw CLIError(message: "no grid defaults for '\(region ?? "")' in \(directory)/grids (try `joule carbon defaults` for the list)")
        }
        if json {
            print(try jsonText(out))
            return
        }
        print("region        gCO2/kWh  factor     year  source                name")
        for a in out.annual {
            print(a.region.padding(toLength: 12, withPad: " ", startingAt: 0) + a.gramsPerKWh.formatted(.number.precision(.fractionLength(1))).leftPad(10)
                + "  " + a.factor.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0) + " " + (a.year.map(String.init) ?? "—").padding(toLength: 5, withPad: " ", startingAt: 0)
                + " " + a.source.padding(toLength: 21, withPad: " ", startingAt: 0) + " " + a.name)
        }
        if !out.profiles.isEmpty {
            print("\nDaily profiles (mean of each UTC hour, \(out.profiles[0].year)), lowest and highest hour:")
            for p in out.profiles {
                let low = p.hourlyMeanUTC.enumerated().min { $0.element < $1.element }!, high = p.hourlyMeanUTC.enumerated().max { $0.element < $1.element }!
                print("  \(p.region.padding(toLength: 12, withPad: " ", startingAt: 0)) \(p.factor.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0)) "
                    + "low \(low.element.formatted()) at \(String(format: "%02d", low.offset)):00, high \(high.element.formatted()) at \(String(format: "%02d", high.offset)):00 UTC")
            }
        }
    }
}
