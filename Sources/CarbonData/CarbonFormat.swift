import Accounting
import Foundation

/// The carbon-intensity formats Joule reads.
public enum CarbonFormat: String, CaseIterable, Sendable {
    /// Joule's own CSV: `timestamp,gco2_per_kwh`.
    case joule
    /// A raw UK Carbon Intensity API response.
    case ukci
    /// The Let's Wait Awhile data set's CSV: `Time,Carbon Intensity`.
    case letsWaitAwhile = "lets-wait-awhile"
    /// An Electricity Maps API response (latest, history, past-range or forecast).
    case electricityMaps = "electricitymaps"
    /// An Electricity Maps data-portal CSV export.
    case electricityMapsCSV = "electricitymaps-csv"
    /// A WattTime v3 response (forecast, historical, or historical forecasts).
    case wattTime = "watttime"
}

/// What the file does not say, from the command line.
public struct CarbonImportOptions: Sendable {
    /// The region: required where the format does not name one; checked where it does.
    public var region: String?
    /// Overrides the format's signal where it does not say (Joule CSV, Let's Wait Awhile).
    public var signal: CarbonSignal?
    /// The factor type: picks the Electricity Maps CSV column; labels formats that do not say.
    public var factor: EmissionFactorType?
    /// UK responses: read the forecast or the actual figure.
    public var ukFigure: UKCarbonIntensity.Figure
    /// For forecasts that do not carry their issue time (UK, Joule CSV).
    public var issuedAt: Double?
    /// Store a series whose data names its region under `region` instead (recorded in its origin,
    /// with a warning). Without it, a `region` that differs from the data's is an error.
    public var relabelRegion = false

    public init(region: String? = nil, signal: CarbonSignal? = nil, factor: EmissionFactorType? = nil, ukFigure: UKCarbonIntensity.Figure = .forecast, issuedAt: Double? = nil) {
        self.region = region
        self.signal = signal
        self.factor = factor
        self.ukFigure = ukFigure
        self.issuedAt = issuedAt
    }
}

/// Series read from one file, with what was repaired or noticed on the way.
public struct CarbonImport: Sendable {
    public var series: [CarbonSeries]
    public var warnings: [CarbonDataWarning]
}

extension CarbonFormat {
    /// Reads `data` (the file's bytes) as this format. Every problem is a `CarbonDataError`
    /// naming `file` and the point; nothing is returned from a file with an error in it.
    public func read(_ data: Data, file: String, options: CarbonImportOptions = .init()) throws -> CarbonImport {
        func text() throws -> String {
            guard let t = String(data: data, encoding: .utf8) else { throw CarbonDataError.syntax(file: file, message: "not UTF-8 text") }
            return t
        }
        func needRegion() throws -> String {
            guard let r = options.region else { throw CarbonDataError.syntax(file: file, message: "this format does not name its region; pass --region") }
            return r
        }
        switch self {
        case .joule, .letsWaitAwhile:
            let region = try needRegion()
            let header = self == .joule ? ("timestamp", "gco2_per_kwh") : ("Time", "Carbon Intensity")
            let rows = try TimeSeriesCSV.parse(try text(), file: file, header: header, requireOrder: false)
            let raw = PointChecker.durationsFromStarts(rows.map { ($0.line, $0.epochSeconds, $0.value) }, fallback: 3600)
            let (points, warnings) = try PointChecker.check(raw, file: file)
            let metadata = SeriesMetadata(
                region: region, signal: options.signal ?? .average,
                factor: options.factor ?? (self == .letsWaitAwhile ? .lifecycle : .unspecified),
                kind: options.issuedAt == nil ? .actual : .forecast, source: self == .joule ? "joule-csv" : "lets-wait-awhile",
                issuedAt: options.issuedAt, origin: file
            )
            return CarbonImport(series: [CarbonSeries(metadata: metadata, checkedPoints: points)], warnings: warnings)
        case .ukci:
            let points = try UKCarbonIntensity.parse(data, file: file, figure: options.ukFigure)
            var (checked, warnings) = try PointChecker.check(points.enumerated().map { .init(place: $0.offset + 1, point: $0.element) }, file: file)
            let forecast = options.ukFigure == .forecast
            // The API's national figures are GB's; another region is a relabelling, said aloud.
            var region = "GB", origin = file
            if let r = options.region, r != "GB" {
                guard options.relabelRegion else {
                    throw CarbonDataError.syntax(
                        file: file, message: "the UK Carbon Intensity API's figures are for GB, not \(r); pass --relabel-region to store them as \(r)"
                    )
                }
                region = r
                origin = "\(file) (GB relabelled \(r))"
                warnings.append(CarbonDataWarning(file: file, message: "GB figures stored as region \(r) (--relabel-region)", kind: .repaired))
            }
            let metadata = SeriesMetadata(
                region: region, signal: .average, factor: .direct, kind: forecast ? .forecast : .actual,
                source: "ukci", issuedAt: forecast ? options.issuedAt : nil, origin: origin
            )
            return CarbonImport(series: [CarbonSeries(metadata: metadata, checkedPoints: checked)], warnings: warnings)
        case .electricityMaps:
            let (s, w) = try ElectricityMaps.parseAPI(data, file: file, region: options.region, issuedAt: options.issuedAt)
            return CarbonImport(series: [s], warnings: w)
        case .electricityMapsCSV:
            let (s, w) = try ElectricityMaps.parsePortalCSV(try text(), file: file, factor: options.factor ?? .lifecycle, region: options.region)
            return CarbonImport(series: [s], warnings: w)
        case .wattTime:
            let (s, w) = try WattTime.parse(data, file: file, region: options.region)
            return CarbonImport(series: s, warnings: w)
        }
    }
}
