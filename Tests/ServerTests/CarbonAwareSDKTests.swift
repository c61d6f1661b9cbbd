import Accounting
import Foundation
import Testing

@testable import Server

/// The Carbon Aware SDK's Web API, route by route, on the SDK's own test vectors (its
/// `EmissionsDataExtensions` unit tests: 5-minute points 10, 20, 30, 40) and the behaviours its
/// integration tests and handlers define: 204 on empty results, RFC 7807 validation problems,
/// `time` alone as one instant, forecasts only from forecast series.
@Suite("Carbon Aware SDK Web API over loopback")
struct CarbonAwareSDKTests {
    /// The fixture's series start here (2023-11-14T22:13:20Z), 5-minute points.
    static let t0 = 1_700_000_000.0
    static func at(_ minutes: Double) -> String { WallClock.string(t0 + minutes * 60) }

    func object(_ data: Data) throws -> [String: Any] { try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any]) }
    func array(_ data: Data) throws -> [[String: Any]] { try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]]) }

    /// A 400 in the SDK's problem shape, with an error under `field`.
    func expectProblem(_ path: String, field: String, status expected: Int = 400, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let f = try await shared.value
        let (status, data, type) = try await f.getWithType(path)
        #expect(status == expected, "\(path): \(status)", sourceLocation: sourceLocation)
        #expect(type?.hasPrefix("application/problem+json") == true, "\(path): \(type ?? "no type")", sourceLocation: sourceLocation)
        let problem = try object(data)
        #expect(problem["status"] as? Int == expected && problem["title"] is String && problem["type"] is String, sourceLocation: sourceLocation)
        let errors = problem["errors"] as? [String: [String]] ?? [:]
        #expect(errors[field]?.isEmpty == false, "\(path): errors \(errors)", sourceLocation: sourceLocation)
    }

    @Test("forecasts/current: the SDK's rolling-average vectors, windowSize an integer, bounds echoed or defaulted as its DTO does")
    func currentForecast() async throws {
        let f = try await shared.value
        // window 10 → 15, 25, 35; optimal 15.
        var (status, data) = try await f.get("/emissions/forecasts/current?location=sdk&windowSize=10")
        #expect(status == 200)
        var forecast = try array(data)[0]
        #expect((forecast["forecastData"] as! [[String: Any]]).map { $0["value"] as! Double } == [15, 25, 35])
        #expect((forecast["optimalDataPoints"] as! [[String: Any]]).map { $0["value"] as! Double } == [15])
        #expect(forecast["windowSize"] as? Int == 10 && (forecast["optimalDataPoints"] as! [[String: Any]])[0]["duration"] as? Int == 10)
        // Unbounded: dataStartAt is the first window's time, dataEndAt the last window's time (the SDK's DTO).
        #expect(forecast["dataStartAt"] as? String == Self.at(0) && forecast["dataEndAt"] as? String == Self.at(10))
        #expect(forecast["generatedAt"] as? String == Self.at(0) && forecast["location"] as? String == "sdk")
        // Bounds [00:02, 00:20], window 5 → 14, 24, 34 from 00:02; the bounds are echoed.
        (status, data) = try await f.get("/emissions/forecasts/current?location=sdk&windowSize=5&dataStartAt=\(Self.at(2))&dataEndAt=\(Self.at(20))")
        #expect(status == 200)
        forecast = try array(data)[0]
        let windows = forecast["forecastData"] as! [[String: Any]]
        #expect(windows.map { $0["value"] as! Double } == [14, 24, 34])
        #expect(windows.map { $0["timestamp"] as! String } == [Self.at(2), Self.at(7), Self.at(12)])
        #expect(forecast["dataStartAt"] as? String == Self.at(2) && forecast["dataEndAt"] as? String == Self.at(20))
        // No window: the points themselves; every lowest one is optimal.
        (status, data) = try await f.get("/emissions/forecasts/current?location=sdk")
        forecast = try array(data)[0]
        #expect((forecast["forecastData"] as! [[String: Any]]).map { $0["value"] as! Double } == [10, 20, 30, 40])
        #expect(forecast["windowSize"] as? Int == 0 && (forecast["optimalDataPoints"] as! [[String: Any]]).count == 1)
        // Several locations: one forecast each, in order.
        (status, data) = try await f.get("/emissions/forecasts/current?location=sdk&location=sdk&windowSize=10")
        #expect(try status == 200 && array(data).count == 2)
    }

    @Test("forecasts/current refuses what the SDK refuses, in its problem shape", arguments: [
        ("/emissions/forecasts/current", "location"),
        ("/emissions/forecasts/current?location=", "location"),
        ("/emissions/forecasts/current?location=sdk&windowSize=1.5", "windowSize"),
        ("/emissions/forecasts/current?location=sdk&windowSize=-5", "windowSize"),
        ("/emissions/forecasts/current?location=sdk&windowSize=abc", "windowSize"),
        ("/emissions/forecasts/current?location=sdk&dataStartAt=1999-01-01T00:00:00Z&dataEndAt=1999-01-02T00:00:00Z", "dataStartAt"),
        ("/emissions/forecasts/current?location=sdk&dataStartAt=2023-11-14T22:20:00Z&dataEndAt=2023-11-14T22:15:00Z", "dataStartAt"),
        ("/emissions/forecasts/current?location=sdk&dataStartAt=2021-9-1T08:30:00Z", "dataStartAt"),
    ])
    func currentForecastErrors(_ path: String, _ field: String) async throws {
        try await expectProblem(path, field: field)
    }

    @Test("No series answers: 404 in the problem shape, never actuals served as a forecast nor a 0 average", arguments: [
        // A region with actuals only.
        ("/emissions/forecasts/current?location=eastus", "location"),
        // No data at all: the SDK would answer 0 g/kWh; Joule will not report a number no data supports.
        ("/emissions/average-carbon-intensity?location=nowhere&startTime=2023-11-14T22:13:20Z&endTime=2023-11-14T22:20:00Z", "location"),
    ])
    func notFound(_ path: String, _ field: String) async throws {
        try await expectProblem(path, field: field, status: 404)
    }

    @Test("bylocations, bylocation and best: time alone is one instant; a range keeps points with t + d > time and t ≤ toTime")
    func emissions() async throws {
        let f = try await shared.value
        // One instant (00:07): the point covering it, per location.
        var (status, data) = try await f.get("/emissions/bylocations?location=eastus&location=westus&time=\(Self.at(7))")
        #expect(status == 200)
        var points = try array(data)
        #expect(points.map { $0["rating"] as! Double } == [30, 30] && points.allSatisfy { $0["time"] as? String == Self.at(5) })
        #expect(points.allSatisfy { $0["duration"] as? String == "00:05:00" })
        // A range [00:03, 00:10]: points starting at 00:00, 00:05 and 00:10 (t ≤ toTime).
        (status, data) = try await f.get("/emissions/bylocation?location=eastus&time=\(Self.at(3))&toTime=\(Self.at(10))")
        points = try array(data)
        #expect(status == 200 && points.map { $0["rating"] as! Double } == [50, 30, 70])
        // Best over the range: every lowest rating across the locations (eastus and westus both 30).
        (status, data) = try await f.get("/emissions/bylocations/best?location=eastus&location=westus&time=\(Self.at(0))&toTime=\(Self.at(14))")
        points = try array(data)
        #expect(status == 200 && Set(points.map { $0["location"] as! String }) == ["eastus", "westus"] && points.allSatisfy { $0["rating"] as? Double == 30 })
        // Best at one instant (00:12): eastus 70 against westus 90.
        (status, data) = try await f.get("/emissions/bylocations/best?location=eastus&location=westus&time=\(Self.at(12))")
        points = try array(data)
        #expect(points.map { $0["location"] as! String } == ["eastus"] && points.map { $0["rating"] as! Double } == [70])
    }

    @Test("An empty result is 204 with no body: no time means now, and the data ended in 2023", arguments: [
        "/emissions/bylocations/best?location=eastus", "/emissions/bylocations?location=eastus", "/emissions/bylocation?location=eastus",
        "/emissions/bylocations?location=nowhere&time=2023-11-14T22:20:00Z",
    ])
    func emptyIsNoContent(_ path: String) async throws {
        let f = try await shared.value
        let (status, data) = try await f.get(path)
        #expect(status == 204 && data.isEmpty, "\(path): \(status)")
    }

    @Test("The emissions routes refuse what the SDK refuses", arguments: [
        ("/emissions/bylocations", "location"), ("/emissions/bylocation?location=", "location"), ("/emissions/bylocations/best?non-location-param=", "location"),
        ("/emissions/bylocations?location=eastus&toTime=2023-11-14T22:20:00Z", "time"),
        ("/emissions/bylocations/best?location=eastus&time=2023-11-14T22:20:00Z&toTime=2023-11-14T22:20:00Z", "time"),
        ("/emissions/bylocations?location=eastus&time=yesterday", "time"),
        // An empty value is not a time (schemathesis found it once answered 204).
        ("/emissions/bylocations?location=eastus&time=2023-11-14T22:20:00Z&toTime=", "toTime"),
        ("/emissions/forecasts/current?location=sdk&windowSize=", "windowSize"),
    ])
    func emissionsErrors(_ path: String, _ field: String) async throws {
        try await expectProblem(path, field: field)
    }

    @Test("average-carbon-intensity: the SDK's vector (28.75 over [00:04, 00:20]); times with offsets come back in UTC")
    func average() async throws {
        let f = try await shared.value
        var (status, data) = try await f.get("/emissions/average-carbon-intensity?location=sdk-actuals&startTime=\(Self.at(4))&endTime=\(Self.at(20))")
        #expect(status == 200)
        var value = try object(data)
        #expect(value["carbonIntensity"] as? Double == 28.75 && value["location"] as? String == "sdk-actuals")
        #expect(value["startTime"] as? String == Self.at(4) && value["endTime"] as? String == Self.at(20))
        // 2023-11-15T04:18:20+06:00 is 00:05 in UTC: the mean of [00:05, 00:15) is 25.
        let offset = "2023-11-15T04:18:20%2B06:00"
        (status, data) = try await f.get("/emissions/average-carbon-intensity?location=sdk-actuals&startTime=\(offset)&endTime=\(Self.at(15))")
        value = try object(data)
        #expect(status == 200 && value["carbonIntensity"] as? Double == 25 && value["startTime"] as? String == Self.at(5))
    }

    @Test("average-carbon-intensity refuses missing parameters and periods the data does not cover", arguments: [
        ("/emissions/average-carbon-intensity", "location"), ("/emissions/average-carbon-intensity?location=sdk-actuals", "startTime"),
        ("/emissions/average-carbon-intensity?location=sdk-actuals&startTime=2023-11-14T22:13:20Z", "endTime"),
        // Past the data's end (00:20): the SDK's "Period out of range".
        ("/emissions/average-carbon-intensity?location=sdk-actuals&startTime=2023-11-14T22:13:20Z&endTime=2023-11-14T23:00:00Z", "startTime"),
    ])
    func averageErrors(_ path: String, _ field: String) async throws {
        try await expectProblem(path, field: field)
    }

    @Test("The batch routes: one answer per item, in order; a missing or malformed field refuses the batch")
    func batches() async throws {
        let f = try await shared.value
        let item = #"{"location":"sdk-actuals","startTime":"\#(Self.at(4))","endTime":"\#(Self.at(20))"}"#
        var (status, data) = try await f.post("/emissions/average-carbon-intensity/batch", "[\(item),\(item),\(item)]", token: nil)
        #expect(status == 200)
        let values = try array(data)
        #expect(values.count == 3 && values.allSatisfy { $0["carbonIntensity"] as? Double == 28.75 })
        for bad in [#"[{"location":"sdk-actuals"}]"#, #"[{"startTime":"\#(Self.at(4))","endTime":"\#(Self.at(20))"}]"#,
                    #"[{"location":"sdk-actuals","startTime":"2022-3-1T15:30:00Z","endTime":"2022-3-1T18:00:00Z"}]"#, "{}", "not json"] {
            let (status, _) = try await f.post("/emissions/average-carbon-intensity/batch", bad, token: nil)
            #expect(status == 400, "\(bad)")
        }
        // Forecast batch: the newest forecast generated at or before requestedAt, which is echoed.
        let request = #"{"location":"sdk","requestedAt":"\#(Self.at(1))","dataStartAt":"\#(Self.at(2))","dataEndAt":"\#(Self.at(20))","windowSize":5}"#
        (status, data) = try await f.post("/emissions/forecasts/batch", "[\(request),\(request)]", token: nil)
        #expect(status == 200, "\(String(decoding: data, as: UTF8.self))")
        let forecasts = try array(data)
        #expect(forecasts.count == 2 && forecasts.allSatisfy { $0["requestedAt"] as? String == Self.at(1) })
        #expect((forecasts[0]["forecastData"] as! [[String: Any]]).map { $0["value"] as! Double } == [14, 24, 34])
        for bad in [#"[{"location":"sdk"}]"#, #"[{"requestedAt":"\#(Self.at(1))"}]"#, #"[{"location":"sdk","requestedAt":"2021-9-1T08:30:00Z"}]"#,
                    #"[{"location":"sdk","requestedAt":"\#(Self.at(1))","windowSize":2.5}]"#] {
            let (status, _) = try await f.post("/emissions/forecasts/batch", bad, token: nil)
            #expect(status == 400, "\(bad)")
        }
        // Before the forecast was generated there was no forecast: 404.
        #expect(try await f.post("/emissions/forecasts/batch", #"[{"location":"sdk","requestedAt":"2020-01-01T00:00:00Z"}]"#, token: nil).0 == 404)
    }

    @Test("/locations names every region the ledger holds series for, with its series; /health answers")
    func locations() async throws {
        let f = try await shared.value
        let (status, data) = try await f.get("/locations")
        #expect(status == 200)
        let all = try object(data)
        #expect(Set(["sdk", "eastus", "westus", "sdk-actuals"]).isSubset(of: Set(all.keys)))
        let sdk = try #require(all["sdk"] as? [String: Any])
        #expect(sdk["name"] as? String == "sdk")
        #expect((sdk["series"] as? [[String: Any]])?.first?["kind"] as? String == "forecast")
        #expect(try await f.get("/health").0 == 200)
    }
}
