import Accounting
import CarbonData
import Foundation
import Hummingbird
import Ledger
import Scheduling

// The Carbon Aware SDK's Web API (Green Software Foundation, carbon-aware-sdk, CarbonAware.WebApi),
// route for route, over the ledger's carbon series: a location is a Joule region. Forecast routes
// read only forecast series; emissions routes read only actuals. Shapes, defaults and errors are
// the SDK's; where the SDK would answer a number no data supports (an average over a period with
// no data is 0 there), Joule answers 400 instead, and says so in docs/openapi.yaml.

/// The SDK's `EmissionsDataDTO`: a forecast point or window; `duration` in whole minutes.
struct SDKEmissionsData: Encodable, Sendable {
    var location: String
    var timestamp: String
    var duration: Int
    var value: Double
}

/// The SDK's `EmissionsForecastDTO`.
struct SDKForecast: Encodable, Sendable {
    var generatedAt: String
    var requestedAt: String
    var location: String
    var dataStartAt: String
    var dataEndAt: String
    var windowSize: Int
    var optimalDataPoints: [SDKEmissionsData]
    var forecastData: [SDKEmissionsData]
}

/// The SDK's `EmissionsData` (actuals; `duration` a TimeSpan, "hh:mm:ss").
struct SDKActual: Encodable, Sendable {
    var location: String
    var time: String
    var rating: Double
    var duration: String
}

/// The SDK's `CarbonIntensityDTO`.
struct SDKCarbonIntensity: Encodable, Sendable {
    var location: String
    var startTime: String
    var endTime: String
    var carbonIntensity: Double
}

/// The SDK's `Location`, with the series Joule holds for it.
struct SDKLocation: Encodable, Sendable {
    struct Series: Encodable, Sendable {
        var id: Int64
        var kind: String
        var signal: String
        var factor: String
        var source: String
        var points: Int
        var firstStart: String
        var lastEnd: String
    }
    var name: String
    var latitude: Double?
    var longitude: Double?
    var series: [Series]
}

/// An RFC 7807 validation problem (`application/problem+json`), as the SDK's Web API answers a bad
/// request: `title`, `status`, `detail`, and `errors` by parameter name.
struct ValidationProblem: HTTPResponseError, CustomStringConvertible {
    var status: HTTPResponse.Status = .badRequest
    var title: String
    var detail: String?
    var errors: [String: [String]]

    /// A value that does not bind to its parameter's type (the SDK's model-binding answer).
    static func binding(_ errors: [String: [String]]) -> ValidationProblem {
        ValidationProblem(title: "One or more validation errors occurred.", detail: nil, errors: errors)
    }

    /// Parameters that bind but are not valid together (the SDK's `ArgumentException`).
    static func invalid(_ detail: String, _ errors: [String: [String]]) -> ValidationProblem {
        ValidationProblem(title: "ArgumentException", detail: detail, errors: errors)
    }

    /// No series answers (a location Joule holds no forecast or actuals for): 404, where the SDK's
    /// data sources fail in their own ways; never a number no data supports.
    static func notFound(_ errors: [String: [String]]) -> ValidationProblem {
        ValidationProblem(status: .notFound, title: "Not Found", detail: "No carbon-intensity data for the request in the ledger", errors: errors)
    }

    var description: String { "\(title) \(errors)" }

    private struct Body: Encodable {
        var type: String
        var title: String
        var status: Int
        var detail: String?
        var errors: [String: [String]]
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = Body(type: "https://tools.ietf.org/html/rfc9110#section-15.5.1", title: title, status: Int(status.code), detail: detail, errors: errors)
        return Response(
            status: status, headers: [.contentType: "application/problem+json; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(body)))
        )
    }
}

/// The SDK's parameters, read and checked as its model binding and validators do.
struct SDKParameters {
    let request: Request

    func strings(_ name: String) -> [String] {
        request.uri.queryParameters[values: name[...]].map(String.init).filter { !$0.isEmpty }
    }

    func string(_ name: String) -> String? { strings(name).first }

    /// An ISO 8601 time (with a zone), or a binding error naming the parameter (an empty value too).
    static func time(_ text: String?, _ name: String) throws -> Double? {
        guard let text else { return nil }
        guard let t = WallClock.iso8601(text) else {
            throw ValidationProblem.binding([name: ["The value '\(text)' is not valid for \(name)."]])
        }
        return t
    }

    func time(_ name: String) throws -> Double? { try Self.time(request.uri.queryParameters.get(name), name) }

    /// A whole number of minutes, 0 or more (the SDK's `int? windowSize`).
    static func minutes(_ text: String?, _ name: String) throws -> Int? {
        guard let text else { return nil }
        guard let v = Int(text), v >= 0, v <= 366 * 1440 else {
            throw ValidationProblem.binding([name: ["The value '\(text)' is not valid for \(name): expected a whole number of minutes from 0 to 527040."]])
        }
        return v
    }

    func locations() throws -> [String] {
        let all = strings("location")
        guard !all.isEmpty else { throw ValidationProblem.invalid("Invalid parameters", ["location": ["location is not set"]]) }
        return all
    }
}

extension JouleServer {
    /// Every route of the Carbon Aware SDK's Web API (and its `/health`).
    func addCarbonAwareRoutes(to router: Router<BasicRequestContext>) {
        let ledger = self.ledger
        router.get("health") { _, _ in TextBody(text: "Healthy", contentType: "text/plain; charset=utf-8") }
        router.get("emissions/bylocations") { request, _ in
            let p = SDKParameters(request: request)
            return try Self.actuals(ledger, locations: try p.locations(), p).map { SDKResponse.ok($0) } ?? .noContent
        }
        router.get("emissions/bylocation") { request, _ in
            let p = SDKParameters(request: request)
            return try Self.actuals(ledger, locations: [try p.locations()[0]], p).map { SDKResponse.ok($0) } ?? .noContent
        }
        router.get("emissions/bylocations/best") { request, _ in
            let p = SDKParameters(request: request)
            guard let all = try Self.actuals(ledger, locations: try p.locations(), p), let low = all.map(\.rating).min() else { return SDKResponse<[SDKActual]>.noContent }
            return SDKResponse.ok(all.filter { $0.rating == low })
        }
        router.get("emissions/forecasts/current") { request, _ in
            let p = SDKParameters(request: request)
            let locations = try p.locations()
            let start = try p.time("dataStartAt"), end = try p.time("dataEndAt")
            let window = try SDKParameters.minutes(request.uri.queryParameters.get("windowSize"), "windowSize")
            let now = Date().timeIntervalSince1970
            return JSONBody(value: try locations.map { location in
                guard let found = try Self.forecast(ledger, location: location, asOf: nil) else {
                    throw ValidationProblem.notFound(["location": ["no forecast for location '\(location)' in the ledger (forecast routes read forecast series only)"]])
                }
                return try Self.forecastDTO(found, location: location, requestedAt: now, start: start, end: end, window: window)
            })
        }
        router.post("emissions/forecasts/batch") { request, _ in
            let items = try await Self.batch(request)
            var out: [SDKForecast] = []
            for (i, item) in items.enumerated() {
                var errors: [String: [String]] = [:]
                let location = item["location"] as? String
                if location?.isEmpty ?? true { errors["[\(i)].location", default: []].append("location is not set") }
                let requested = try Self.bodyTime(item["requestedAt"], "[\(i)].requestedAt")
                if requested == nil { errors["[\(i)].requestedAt", default: []].append("requestedAt is not set") }
                let start = try Self.bodyTime(item["dataStartAt"], "[\(i)].dataStartAt"), end = try Self.bodyTime(item["dataEndAt"], "[\(i)].dataEndAt")
                let window = try Self.bodyMinutes(item["windowSize"], "[\(i)].windowSize")
                guard errors.isEmpty, let location, let requested else { throw ValidationProblem.invalid("Invalid parameters", errors) }
                guard let found = try Self.forecast(ledger, location: location, asOf: requested) else {
                    throw ValidationProblem.notFound(["[\(i)].requestedAt": ["no forecast for location '\(location)' generated at or before \(iso(requested)) in the ledger"]])
                }
                out.append(try Self.forecastDTO(found, location: location, requestedAt: requested, start: start, end: end, window: window))
            }
            return JSONBody(value: out)
        }
        router.get("emissions/average-carbon-intensity") { request, _ in
            let p = SDKParameters(request: request)
            var errors: [String: [String]] = [:]
            let location = p.string("location")
            let start = try p.time("startTime"), end = try p.time("endTime")
            for (name, missing) in [("location", location == nil), ("startTime", start == nil), ("endTime", end == nil)] where missing {
                errors[name] = ["\(name) is not set"]
            }
            guard errors.isEmpty, let location, let start, let end else { throw ValidationProblem.invalid("Invalid parameters", errors) }
            return JSONBody(value: try Self.average(ledger, location: location, start: start, end: end, field: ""))
        }
        router.post("emissions/average-carbon-intensity/batch") { request, _ in
            let items = try await Self.batch(request)
            var out: [SDKCarbonIntensity] = []
            for (i, item) in items.enumerated() {
                var errors: [String: [String]] = [:]
                let location = item["location"] as? String
                let start = try Self.bodyTime(item["startTime"], "[\(i)].startTime"), end = try Self.bodyTime(item["endTime"], "[\(i)].endTime")
                for (name, missing) in [("location", location?.isEmpty ?? true), ("startTime", start == nil), ("endTime", end == nil)] where missing {
                    errors["[\(i)].\(name)"] = ["\(name) is not set"]
                }
                guard errors.isEmpty, let location, let start, let end else { throw ValidationProblem.invalid("Invalid parameters", errors) }
                out.append(try Self.average(ledger, location: location, start: start, end: end, field: "[\(i)]."))
            }
            return JSONBody(value: out)
        }
        router.get("locations") { _, _ in
            var byRegion: [String: [SDKLocation.Series]] = [:]
            for s in try ledger.storedSeries() {
                let m = s.metadata
                byRegion[m.region, default: []].append(SDKLocation.Series(
                    id: s.id, kind: m.kind.rawValue, signal: m.signal.rawValue, factor: m.factor.rawValue, source: m.source,
                    points: s.pointCount, firstStart: iso(s.firstStart), lastEnd: iso(s.lastEnd)
                ))
            }
            guard !byRegion.isEmpty else { return SDKResponse<[String: SDKLocation]>.noContent }
            var out: [String: SDKLocation] = [:]
            for (region, series) in byRegion { out[region] = SDKLocation(name: region, latitude: nil, longitude: nil, series: series) }
            return SDKResponse.ok(out)
        }
    }

    /// The SDK's emissions query: `time` defaults to now and `toTime` to `time` (one instant);
    /// `toTime` without `time` and `time` not before `toTime` are refused. Points are those with
    /// t + d > time and t ≤ toTime, from each location's newest actual series; nil when none.
    static func actuals(_ ledger: any LedgerQueries, locations: [String], _ p: SDKParameters) throws -> [SDKActual]? {
        let from = try p.time("time"), to = try p.time("toTime")
        if to != nil && from == nil {
            throw ValidationProblem.invalid("Invalid parameters", ["time": ["time must be defined if toTime is defined"]])
        }
        if let from, let to, from >= to { throw ValidationProblem.invalid("Invalid parameters", ["time": ["time must be before toTime"]]) }
        let start = from ?? Date().timeIntervalSince1970
        let end = to ?? start
        var out: [SDKActual] = []
        for location in locations {
            guard let found = try series(ledger, location: location, kind: .actual, from: start, to: end.nextUp) else { continue }
            for v in found.series.points where v.start + v.duration > start && v.start <= end {
                out.append(SDKActual(location: location, time: iso(v.start), rating: v.value, duration: sdkDuration(v.duration)))
            }
        }
        return out.isEmpty ? nil : out
    }

    /// The newest series of `kind` for a location: of the average signal when there is one, else any.
    static func series(_ ledger: any LedgerQueries, location: String, kind: SeriesKind, from: Double?, to: Double?) throws -> (stored: StoredSeries, series: CarbonSeries)? {
        try ledger.newestSeries(SeriesFilter(region: location, signal: .average, kind: kind), from: from, to: to)
            ?? ledger.newestSeries(SeriesFilter(region: location, kind: kind), from: from, to: to)
    }

    /// The newest forecast for a location, or the newest generated at or before `asOf`.
    static func forecast(_ ledger: any LedgerQueries, location: String, asOf: Double?) throws -> (stored: StoredSeries, series: CarbonSeries)? {
        guard let asOf else { return try series(ledger, location: location, kind: .forecast, from: nil, to: nil) }
        let candidates = try ledger.matchingSeries(SeriesFilter(region: location, signal: .average, kind: .forecast))
            + ledger.matchingSeries(SeriesFilter(region: location, kind: .forecast))
        for stored in candidates where (stored.metadata.issuedAt ?? stored.storedAt) <= asOf {
            if let s = try ledger.series(id: stored.id, from: nil, to: nil) { return (stored, s) }
        }
        return nil
    }

    /// The SDK's forecast processing: bounds default to the data's (first start, last end) and must
    /// lie within it, start before end; the rolling average of `window` minutes (the points
    /// themselves for 0); every window with the lowest mean. `dataStartAt`/`dataEndAt` echo the
    /// request, else the first and last emitted point's timestamp, as the SDK's DTO does.
    static func forecastDTO(
        _ found: (stored: StoredSeries, series: CarbonSeries), location: String, requestedAt: Double, start: Double?, end: Double?, window: Int?
    ) throws -> SDKForecast {
        let points = found.series.points
        let minTime = points[0].start, maxTime = found.series.end
        let s = start ?? minTime, e = end ?? maxTime
        var errors: [String: [String]] = [:]
        if s >= e { errors["dataStartAt", default: []].append("dataStartAt must be earlier than dataEndAt") }
        if s < minTime || s > maxTime {
            errors["dataStartAt", default: []].append("dataStartAt must be within time range of the forecasted data, '\(iso(minTime))' through '\(iso(maxTime))'")
        }
        if e < minTime || e > maxTime {
            errors["dataEndAt", default: []].append("dataEndAt must be within time range of the forecasted data, '\(iso(minTime))' through '\(iso(maxTime))'")
        }
        guard errors.isEmpty else { throw ValidationProblem.invalid("Invalid EmissionsForecast", errors) }
        let minutes = window ?? 0
        let windows: [TimedValue]
        do {
            windows = try WindowSearch.rollingAverages(points, window: Double(minutes) * 60, start: s, end: e)
        } catch let error as WindowSearchError {
            throw ValidationProblem.invalid("Invalid EmissionsForecast", ["windowSize": ["\(error)"]])
        }
        let low = windows.map(\.value).min()
        func dto(_ v: TimedValue) -> SDKEmissionsData {
            SDKEmissionsData(location: location, timestamp: iso(v.start), duration: Int((v.duration / 60).rounded(.towardZero)), value: v.value)
        }
        return SDKForecast(
            generatedAt: iso(found.stored.metadata.issuedAt ?? found.stored.storedAt), requestedAt: iso(requestedAt), location: location,
            dataStartAt: iso(start ?? windows.first?.start ?? s), dataEndAt: iso(end ?? windows.last?.start ?? e), windowSize: minutes,
            optimalDataPoints: windows.filter { $0.value == low }.map(dto), forecastData: windows.map(dto)
        )
    }

    /// The SDK's average over a period: the time-weighted mean of the actual points over
    /// [start, end), which the data must cover from end to end without a gap.
    static func average(_ ledger: any LedgerQueries, location: String, start: Double, end: Double, field: String) throws -> SDKCarbonIntensity {
        guard start < end else { throw ValidationProblem.invalid("Invalid parameters", ["\(field)startTime": ["startTime must be before endTime"]]) }
        guard let found = try series(ledger, location: location, kind: .actual, from: start, to: end) else {
            throw ValidationProblem.notFound(["\(field)location": ["no actual intensity for '\(location)' between \(iso(start)) and \(iso(end)) in the ledger"]])
        }
        let (mean, covered) = WindowSearch.coveredMean(found.series.points, from: start, to: end)
        guard covered >= (end - start) * (1 - 1e-12) else {
            throw ValidationProblem.invalid("Period out of range", [
                "\(field)startTime": ["Data points did not cover the requested average period: \(iso(start)) through \(iso(end)) (\(String(format: "%.0f", covered)) of \(String(format: "%.0f", end - start)) s covered)"],
            ])
        }
        return SDKCarbonIntensity(location: location, startTime: iso(start), endTime: iso(end), carbonIntensity: mean)
    }

    /// A batch body: a JSON array of objects, at most 1,000.
    static func batch(_ request: Request) async throws -> [[String: Any]] {
        let body = try await request.body.collect(upTo: 1 << 20)
        guard let items = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [Any], let objects = items as? [[String: Any]] else {
            throw ValidationProblem.binding(["$": ["expected a JSON array of objects"]])
        }
        guard objects.count <= 1000 else { throw ValidationProblem.binding(["$": ["at most 1000 items per batch, got \(objects.count)"]]) }
        return objects
    }

    static func bodyTime(_ value: Any?, _ name: String) throws -> Double? {
        guard let value, !(value is NSNull) else { return nil }
        guard let text = value as? String else { throw ValidationProblem.binding([name: ["expected an ISO 8601 time string"]]) }
        return try SDKParameters.time(text, name)
    }

    static func bodyMinutes(_ value: Any?, _ name: String) throws -> Int? {
        guard let value, !(value is NSNull) else { return nil }
        guard !(value is Bool), let n = value as? NSNumber, n.doubleValue == n.doubleValue.rounded(),
              n.doubleValue >= 0, n.doubleValue <= 366 * 1440 else {
            throw ValidationProblem.binding([name: ["The JSON value could not be converted to a whole number of minutes from 0 to 527040."]])
        }
        return n.intValue
    }

    /// A duration as the SDK writes it, `HH:MM:SS`. Whatever a ledger holds, this never traps: a
    /// value outside 0 s … 100,000 h (which imports refuse) is shown clamped.
    static func sdkDuration(_ seconds: Double) -> String {
        let clamped = seconds.isFinite ? min(max(seconds.rounded(), 0), 359_999_999) : 0
        let s = Int(clamped)
        return String(format: "%02d:%02d:%02d", s / 3600, s / 60 % 60, s % 60)
    }
}

/// 200 with a JSON body, or 204 with none (the SDK's answer to an empty result).
enum SDKResponse<T: Encodable & Sendable>: ResponseGenerator, Sendable {
    case ok(T)
    case noContent

    func response(from request: Request, context: some RequestContext) throws -> Response {
        switch self {
        case .ok(let value): return try JSONBody(value: value).response(from: request, context: context)
        case .noContent: return Response(status: .noContent)
        }
    }
}
