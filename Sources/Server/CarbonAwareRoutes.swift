import CarbonData
import Foundation
import Hummingbird
import Ledger
import Accounting
import Scheduling

/// The Carbon Aware SDK's `EmissionsDataDTO` (forecast points and windows; duration in minutes).
struct SDKEmissionsData: Encodable, Sendable {
    var location: String
    var timestamp: String
    var duration: Double
    var value: Double
}

/// The Carbon Aware SDK's `EmissionsForecastDTO`.
struct SDKForecast: Encodable, Sendable {
    var generatedAt: String
    var requestedAt: String
    var location: String
    var dataStartAt: String
    var dataEndAt: String
    var windowSize: Double
    var optimalDataPoints: [SDKEmissionsData]
    var forecastData: [SDKEmissionsData]
}

/// The Carbon Aware SDK's `EmissionsData` (actuals; duration as a TimeSpan, "hh:mm:ss").
struct SDKActual: Encodable, Sendable {
    var location: String
    var time: String
    var rating: Double
    var duration: String
}

extension JouleServer {
    /// `GET /emissions/forecasts/current` and `GET /emissions/bylocations/best`, answering as the
    /// Carbon Aware SDK's Web API does, from the ledger's series (a location is a Joule region).
    func addCarbonAwareRoutes(to router: Router<BasicRequestContext>) {
        let ledger = self.ledger
        router.get("emissions/forecasts/current") { request, _ in
            let q = Query(request: request)
            let locations = q.strings("location")
            guard !locations.isEmpty else { throw HTTPError(.badRequest, message: "location: at least one is required") }
            let start = try q.time("dataStartAt"), end = try q.time("dataEndAt")
            let windowMinutes = try q.double("windowSize", minimum: 0) ?? 0
            let requested = iso(Date().timeIntervalSince1970)
            return JSONBody(value: try locations.map { location -> SDKForecast in
                guard let found = try ledger.planningSeries(region: location) else {
                    throw HTTPError(.notFound, message: "no forecast for location \(location)")
                }
                let points = found.series.points
                do {
                    let windows = try WindowSearch.rollingAverages(points, window: windowMinutes * 60, start: start, end: end)
                    let best = windowMinutes > 0 || !windows.isEmpty
                        ? try WindowSearch.best(points, window: windowMinutes * 60, start: start, end: end) : []
                    func dto(_ v: TimedValue) -> SDKEmissionsData {
                        SDKEmissionsData(location: location, timestamp: iso(v.start), duration: v.duration / 60, value: v.value)
                    }
                    return SDKForecast(
                        generatedAt: iso(found.stored.metadata.issuedAt ?? found.stored.storedAt), requestedAt: requested, location: location,
                        dataStartAt: iso(start ?? points[0].start), dataEndAt: iso(end ?? found.series.end), windowSize: windowMinutes,
                        optimalDataPoints: best.map(dto), forecastData: windows.map(dto)
                    )
                } catch let error as WindowSearchError {
                    throw HTTPError(.badRequest, message: "\(location): \(error)")
                }
            })
        }
        router.get("emissions/bylocations/best") { request, _ in
            let q = Query(request: request)
            let locations = q.strings("location")
            guard !locations.isEmpty else { throw HTTPError(.badRequest, message: "location: at least one is required") }
            let from = try q.time("time"), to = try q.time("toTime")
            if let from, let to, to <= from { throw HTTPError(.badRequest, message: "toTime must be after time") }
            var candidates: [SDKActual] = []
            for location in locations {
                guard let found = try ledger.newestSeries(SeriesFilter(region: location, kind: .actual), from: from, to: to) else { continue }
                for p in found.series.points {
                    candidates.append(SDKActual(location: location, time: iso(p.start), rating: p.value, duration: Self.sdkDuration(p.duration)))
                }
            }
            guard let low = candidates.map(\.rating).min() else {
                throw HTTPError(.notFound, message: "no actual intensity for \(locations.joined(separator: ", ")) in the time range")
            }
            return JSONBody(value: candidates.filter { $0.rating == low })
        }
    }
}

extension JouleServer {
    /// A duration as the SDK writes it, `HH:MM:SS`. Whatever a ledger holds, this never traps: a
    /// value outside 0 s … 100,000 h (which imports refuse) is shown clamped.
    static func sdkDuration(_ seconds: Double) -> String {
        let clamped = seconds.isFinite ? min(max(seconds.rounded(), 0), 359_999_999) : 0
        let s = Int(clamped)
        return String(format: "%02d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
    }
}
