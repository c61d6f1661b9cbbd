import Accounting
import Foundation

/// Electricity Maps' carbon intensity: the API's JSON (v3 `carbon-intensity/latest`, `/history`,
/// `/past-range` and `/forecast`) and the data portal's CSV export. Values are gCO₂eq/kWh of the
/// flow-traced consumption mix; the factor type is each point's `emissionFactorType` (lifecycle
/// when absent, Electricity Maps' default).
public enum ElectricityMaps {
    struct Point: Decodable {
        var zone: String?
        var carbonIntensity: Double?
        var datetime: String?
        var emissionFactorType: String?
        var isEstimated: Bool?
    }

    struct Response: Decodable {
        var zone: String?
        // latest
        var carbonIntensity: Double?
        var datetime: String?
        var emissionFactorType: String?
        var updatedAt: String?
        var temporalGranularity: String?
        // history / past-range / forecast
        var history: [Point]?
        var data: [Point]?
        var forecast: [Point]?
    }

    /// Seconds per point for the API's `temporalGranularity`.
    static func granularitySeconds(_ text: String?) -> Double? {
        switch text {
        case "5_minutes": return 300
        case "15_minutes": return 900
        case "hourly": return 3600
        case "daily": return 86_400
        default: return nil
        }
    }

    /// Reads an API response. Which endpoint it came from is told by its keys. A point without
    /// `carbonIntensity` or `datetime`, or a response mixing factor types or zones, is an error:
    /// nothing of a partial response is used.
    public static func parseAPI(_ data: Data, file: String, region: String? = nil, issuedAt: Double? = nil) throws -> (series: CarbonSeries, warnings: [CarbonDataWarning]) {
        let r: Response
        do {
            r = try JSONDecoder().decode(Response.self, from: data)
        } catch {
            throw CarbonDataError.syntax(file: file, message: "not an Electricity Maps API response (\(error))")
        }
        let kind: SeriesKind
        let points: [Point]
        let listField: String
        if let f = r.forecast {
            (kind, points, listField) = (.forecast, f, "forecast")
        } else if let h = r.history ?? r.data {
            (kind, points, listField) = (.actual, h, r.history != nil ? "history" : "data")
        } else if r.carbonIntensity != nil || r.datetime != nil {
            (kind, listField) = (.actual, "(top level)")
            points = [Point(zone: r.zone, carbonIntensity: r.carbonIntensity, datetime: r.datetime, emissionFactorType: r.emissionFactorType, isEstimated: nil)]
        } else {
            throw CarbonDataError.syntax(file: file, message: "expected an Electricity Maps carbon-intensity response: a 'forecast', 'history' or 'data' list, or 'carbonIntensity' and 'datetime'")
        }
        guard let zone = r.zone ?? points.first?.zone ?? region else {
            throw CarbonDataError.syntax(file: file, message: "the response names no zone; pass --region")
        }
        if let region, region != zone {
            throw CarbonDataError.syntax(file: file, message: "the response is for zone \(zone), not \(region)")
        }
        var starts: [(place: Int, start: Double, value: Double)] = []
        var factors = Set<String>()
        for (i, p) in points.enumerated() {
            let n = i + 1
            guard let text = p.datetime, let t = WallClock.iso8601(text) else {
                throw CarbonDataError.invalidPoint(file: file, index: n, field: "\(listField).datetime", message: "expected a time like 2024-05-01T13:00:00.000Z, got \(p.datetime.map { "'\($0)'" } ?? "nothing")")
            }
            guard let v = p.carbonIntensity else {
                throw CarbonDataError.invalidPoint(file: file, index: n, field: "\(listField).carbonIntensity", message: "missing (a partial response stores nothing)")
            }
            if let z = p.zone, z != zone {
                throw CarbonDataError.invalidPoint(file: file, index: n, field: "\(listField).zone", message: "is \(z), but the response is for \(zone)")
            }
            factors.insert(p.emissionFactorType ?? r.emissionFactorType ?? "lifecycle")
            starts.append((n, t, v))
        }
        guard factors.count <= 1 else {
            throw CarbonDataError.syntax(file: file, message: "the points mix emission factor types (\(factors.sorted().joined(separator: ", "))): import them separately")
        }
        let factorText = factors.first ?? "lifecycle"
        guard let factor = EmissionFactorType(rawValue: factorText), factor != .unspecified else {
            throw CarbonDataError.syntax(file: file, message: "unknown emissionFactorType '\(factorText)'; expected lifecycle or direct")
        }
        let step = granularitySeconds(r.temporalGranularity) ?? 3600
        let (checked, warnings) = try PointChecker.check(PointChecker.durationsFromStarts(starts, fallback: step), file: file)
        var issued = issuedAt
        if kind == .forecast, issued == nil, let u = r.updatedAt { issued = WallClock.iso8601(u) }
        let metadata = SeriesMetadata(
            region: zone, signal: .average, factor: factor, kind: kind, source: "electricitymaps",
            issuedAt: kind == .forecast ? issued : nil, origin: file
        )
        return (CarbonSeries(metadata: metadata, checkedPoints: checked), warnings)
    }

    /// The data portal's CSV export (`Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity
    /// gCO₂eq/kWh (direct),Carbon Intensity gCO₂eq/kWh (LCA),…`): hourly, daily, monthly or yearly
    /// rows; `factor` picks the direct or the LCA column.
    public static func parsePortalCSV(_ text: String, file: String, factor: EmissionFactorType, region: String? = nil) throws -> (series: CarbonSeries, warnings: [CarbonDataWarning]) {
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline)
        guard let headerLine = lines.first else { throw CarbonDataError.empty(file: file) }
        let header = CSVLine.fields(headerLine.hasPrefix("\u{FEFF}") ? headerLine.dropFirst() : headerLine[...])
        func column(_ names: [String]) throws -> Int {
            let normalised = header.map { $0.replacingOccurrences(of: "₂", with: "2") }
            for name in names {
                if let i = normalised.firstIndex(of: name.replacingOccurrences(of: "₂", with: "2")) { return i }
            }
            throw CarbonDataError.invalidPoint(file: file, index: 1, field: "header", message: "expected a column '\(names[0])' (an Electricity Maps portal export)")
        }
        let timeColumn = try column(["Datetime (UTC)"])
        let zoneColumn = try column(["Zone Id"])
        let valueColumn: Int
        switch factor {
        case .direct: valueColumn = try column(["Carbon Intensity gCO₂eq/kWh (direct)"])
        case .lifecycle, .unspecified: valueColumn = try column(["Carbon Intensity gCO₂eq/kWh (LCA)"])
        }
        let valueName = header[valueColumn]
        var zone: String? = nil
        var starts: [(place: Int, start: Double, value: Double)] = []
        for (i, raw) in lines.enumerated().dropFirst() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let n = i + 1
            let fields = CSVLine.fields(line)
            guard fields.count == header.count else {
                throw CarbonDataError.invalidPoint(file: file, index: n, field: "(line)", message: "expected \(header.count) columns, got \(fields.count)")
            }
            guard let t = WallClock.iso8601(fields[timeColumn]) else {
                throw CarbonDataError.invalidPoint(file: file, index: n, field: "Datetime (UTC)", message: "expected a time like 2023-01-01 00:00:00, got '\(fields[timeColumn])'")
            }
            guard let v = Double(fields[valueColumn]) else {
                throw CarbonDataError.invalidPoint(file: file, index: n, field: valueName, message: "expected gCO2eq/kWh, got '\(fields[valueColumn])'")
            }
            let z = fields[zoneColumn]
            if let zone, z != zone {
                throw CarbonDataError.invalidPoint(file: file, index: n, field: "Zone Id", message: "is \(z), but earlier rows are \(zone): one zone per file")
            }
            zone = z
            starts.append((n, t, v))
        }
        guard let zone else { throw CarbonDataError.empty(file: file) }
        if let region, region != zone { throw CarbonDataError.syntax(file: file, message: "the file is for zone \(zone), not \(region)") }
        let (checked, warnings) = try PointChecker.check(PointChecker.durationsFromStarts(starts, fallback: 3600), file: file)
        let metadata = SeriesMetadata(
            region: zone, signal: .average, factor: factor == .direct ? .direct : .lifecycle, kind: .actual, source: "electricitymaps", origin: file
        )
        return (CarbonSeries(metadata: metadata, checkedPoints: checked), warnings)
    }
}
