import Foundation
import Accounting

/// The UK Carbon Intensity API's national intensity response (api.carbonintensity.org.uk,
/// `/intensity/...`): `{"data":[{"from","to","intensity":{"forecast","actual","index"}}]}`,
/// times like `2023-03-15T12:00Z`, values in gCO₂/kWh.
public enum UKCarbonIntensity {
    /// Which figure of each half-hour to read.
    public enum Figure: String, Sendable, CaseIterable {
        case forecast, actual
    }

    struct Response: Decodable {
        struct Point: Decodable {
            struct Intensity: Decodable {
                var forecast: Double?
                var actual: Double?
                var index: String?
            }
            var from: String?
            var to: String?
            var intensity: Intensity?
        }
        var data: [Point]?
    }

    /// Reads the points of a response. A point without the asked figure, or with a bad time,
    /// is an error naming it: a partial response yields nothing. Reading actuals, the trailing
    /// half-hours whose actual is not known yet (`null`, as the API answers for the current one)
    /// are left out; a missing actual before a known one is still an error.
    public static func parse(_ data: Data, file: String, figure: Figure = .forecast) throws -> [TimedValue] {
        let response: Response
        do {
            response = try JSONDecoder().decode(Response.self, from: data)
        } catch {
            throw CarbonDataError.syntax(file: file, message: "not a UK Carbon Intensity API response (\(error))")
        }
        guard let allPoints = response.data else {
            throw CarbonDataError.syntax(file: file, message: "expected {\"data\": [...]} at the top level")
        }
        guard !allPoints.isEmpty else { throw CarbonDataError.empty(file: file) }
        var points = allPoints[...]
        if figure == .actual {
            while let last = points.last, last.intensity != nil, last.intensity?.actual == nil { points = points.dropLast() }
            guard !points.isEmpty else { throw CarbonDataError.syntax(file: file, message: "no half-hour has an actual intensity yet") }
        }
        var out: [TimedValue] = []
        for (i, p) in points.enumerated() {
            let n = i + 1
            guard let fromText = p.from, let from = WallClock.iso8601(fromText) else {
                throw CarbonDataError.invalidPoint(file: file, index: n, field: "from", message: "expected a time like 2023-03-15T12:00Z, got \(p.from.map { "'\($0)'" } ?? "nothing")")
            }
            guard let toText = p.to, let to = WallClock.iso8601(toText), to > from else {
                throw CarbonDataError.invalidPoint(file: file, index: n, field: "to", message: "expected a time after 'from', got \(p.to.map { "'\($0)'" } ?? "nothing")")
            }
            let value = figure == .forecast ? p.intensity?.forecast : p.intensity?.actual
            guard let value, value.isFinite, value >= 0 else {
                throw CarbonDataError.invalidPoint(file: file, index: n, field: "intensity.\(figure.rawValue)", message: "expected a number of gCO2/kWh ≥ 0")
            }
            if let last = out.last, from < last.end {
                throw CarbonDataError.unordered(file: file, index: n, message: "starts at \(fromText), before the previous point ends")
            }
            out.append(TimedValue(start: from, duration: to - from, value: value))
        }
        return out
    }
}
