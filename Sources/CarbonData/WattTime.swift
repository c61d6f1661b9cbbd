import Accounting
import Foundation

/// WattTime's API v3 JSON: `/v3/forecast` and `/v3/historical` (`{"data":[{"point_time",
/// "value"}], "meta":{…}}`) and `/v3/forecast/historical` (`{"data":[{"generated_at",
/// "forecast":[…]}], "meta":{…}}`). `co2_moer` is the marginal signal, `co2_aoer` the average;
/// both count combustion (direct) emissions. Values in lbs/MWh are converted to g/kWh.
public enum WattTime {
    /// Grams per kWh in one lb/MWh: 453.59237 g per lb over 1,000 kWh per MWh.
    public static let gramsPerKWhPerPoundPerMWh = 0.45359237

    struct Point: Decodable {
        var point_time: String?
        var value: Double?
    }

    struct Issued: Decodable {
        var generated_at: String?
        var forecast: [Point]?
    }

    struct Meta: Decodable {
        var region: String?
        var signal_type: String?
        var units: String?
        var data_point_period_seconds: Double?
        var generated_at: String?
    }

    struct Response: Decodable {
        var meta: Meta?
    }

    struct PointsResponse: Decodable {
        var data: [Point]
    }

    struct IssuedResponse: Decodable {
        var data: [Issued]
    }

    /// Multiplier from the response's `units` to g/kWh; other units (a `percent` signal index,
    /// say) are an error: they are not an intensity.
    static func conversion(_ units: String?, file: String) throws -> Double {
        switch units {
        case "lbs_co2_per_mwh": return gramsPerKWhPerPoundPerMWh
        case "kg_co2_per_mwh", "g_co2_per_kwh": return 1
        case nil: throw CarbonDataError.syntax(file: file, message: "meta.units is missing: cannot tell lbs/MWh from other units")
        case let other?: throw CarbonDataError.syntax(file: file, message: "meta.units is '\(other)', not an emission rate (expected lbs_co2_per_mwh)")
        }
    }

    /// Reads a response into one series (forecast or historical), or one per issued forecast
    /// (`/v3/forecast/historical`).
    public static func parse(_ data: Data, file: String, region: String? = nil) throws -> (series: [CarbonSeries], warnings: [CarbonDataWarning]) {
        let top: Response
        do {
            top = try JSONDecoder().decode(Response.self, from: data)
        } catch {
            throw CarbonDataError.syntax(file: file, message: "not a WattTime v3 response (\(error))")
        }
        guard let meta = top.meta else { throw CarbonDataError.syntax(file: file, message: "expected a 'meta' object (a WattTime v3 response)") }
        guard let zone = meta.region ?? region else { throw CarbonDataError.syntax(file: file, message: "meta.region is missing; pass --region") }
        if let region, region != zone { throw CarbonDataError.syntax(file: file, message: "the response is for region \(zone), not \(region)") }
        let signal: CarbonSignal
        switch meta.signal_type ?? "co2_moer" {
        case "co2_moer": signal = .marginal
        case "co2_aoer": signal = .average
        case let other: throw CarbonDataError.syntax(file: file, message: "meta.signal_type '\(other)' is not a CO2 rate (expected co2_moer or co2_aoer)")
        }
        let factor = try conversion(meta.units, file: file)
        let step = meta.data_point_period_seconds ?? 300
        guard step.isFinite, PointChecker.Limits.duration.contains(step) else {
            throw CarbonDataError.syntax(file: file, message: "meta.data_point_period_seconds: expected 1 s to 366 days (31622400 s), got \(step)")
        }

        func series(_ points: [Point], field: String, issued: Double?) throws -> (CarbonSeries, [CarbonDataWarning]) {
            var starts: [(place: Int, start: Double, value: Double)] = []
            for (i, p) in points.enumerated() {
                guard let text = p.point_time, let t = WallClock.iso8601(text) else {
                    throw CarbonDataError.invalidPoint(file: file, index: i + 1, field: "\(field).point_time", message: "expected a time like 2023-08-30T00:05:00+00:00, got \(p.point_time.map { "'\($0)'" } ?? "nothing")")
                }
                guard let v = p.value else {
                    throw CarbonDataError.invalidPoint(file: file, index: i + 1, field: "\(field).value", message: "missing (a partial response stores nothing)")
                }
                starts.append((i + 1, t, v * factor))
            }
            let raw = starts.map { PointChecker.RawPoint(place: $0.place, point: TimedValue(start: $0.start, duration: step, value: $0.value)) }
            let (checked, warnings) = try PointChecker.check(raw, file: file)
            let metadata = SeriesMetadata(
                region: zone, signal: signal, factor: .direct, kind: issued == nil ? .actual : .forecast, source: "watttime",
                issuedAt: issued, resolutionSeconds: step, origin: file
            )
            return (CarbonSeries(metadata: metadata, checkedPoints: checked), warnings)
        }

        if let issuedList = try? JSONDecoder().decode(IssuedResponse.self, from: data), issuedList.data.contains(where: { $0.forecast != nil }) {
            var out: [CarbonSeries] = []
            var warnings: [CarbonDataWarning] = []
            for (i, issued) in issuedList.data.enumerated() {
                guard let g = issued.generated_at, let at = WallClock.iso8601(g) else {
                    throw CarbonDataError.invalidPoint(file: file, index: i + 1, field: "data.generated_at", message: "expected the time the forecast was issued")
                }
                guard let points = issued.forecast else {
                    throw CarbonDataError.invalidPoint(file: file, index: i + 1, field: "data.forecast", message: "missing")
                }
                let (s, w) = try series(points, field: "data[\(i + 1)].forecast", issued: at)
                out.append(s)
                warnings += w
            }
            return (out, warnings)
        }
        let points: PointsResponse
        do {
            points = try JSONDecoder().decode(PointsResponse.self, from: data)
        } catch {
            throw CarbonDataError.syntax(file: file, message: "expected 'data' to be a list of {point_time, value} (\(error))")
        }
        let issued = meta.generated_at.flatMap { WallClock.iso8601($0) }
        if meta.generated_at != nil && issued == nil {
            throw CarbonDataError.syntax(file: file, message: "meta.generated_at '\(meta.generated_at!)' is not a time")
        }
        let (s, w) = try series(points.data, field: "data", issued: issued)
        return ([s], w)
    }
}
