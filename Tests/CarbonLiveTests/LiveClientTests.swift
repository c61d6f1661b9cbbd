import Accounting
import CarbonData
import CarbonLive
import Foundation
import Synchronization
import TestHTTPServer
import Testing

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/carbon").path

func fixture(_ name: String) -> Data {
    (try? Data(contentsOf: URL(fileURLWithPath: "\(fixtures)/\(name)"))) ?? Data()
}

/// Records the waits a fetcher asked for instead of sleeping.
final class Waits: Sendable {
    let values = Mutex<[Double]>([])
    var all: [Double] { values.withLock { $0 } }
    func record(_ d: Double) { values.withLock { $0.append(d) } }
}

func client(_ source: LiveSource, _ server: LoopbackHTTPServer, env: [String: String] = [:], policy: RetryPolicy = RetryPolicy(attempts: 4, initialDelay: 1, maximumDelay: 8, timeout: 5), waits: Waits = Waits()) throws -> LiveCarbonClient {
    var environment = env
    environment[source.baseURLVariable] = server.baseURL
    let fetcher = HTTPFetcher(policy: policy, sleep: { waits.record($0) })
    return try LiveCarbonClient(source: source, environment: environment, fetcher: fetcher, now: { 1_693_353_700 })
}

@Suite("Live carbon sources over a loopback server")
struct LiveClientTests {
    @Test("Electricity Maps: the key goes in the auth-token header and the forecast reads as a forecast series")
    func electricityMaps() async throws {
        let server = try LoopbackHTTPServer { r in
            guard r.headers["auth-token"] == "secret-key" else { return .json(#"{"message":"unauthorized"}"#, status: 401) }
            switch r.path {
            case "/v3/carbon-intensity/forecast": return .init(body: fixture("electricitymaps-forecast.json"))
            case "/v3/carbon-intensity/history": return .init(body: fixture("electricitymaps-history.json"))
            default: return .json("{}", status: 404)
            }
        }
        let c = try client(.electricityMaps, server, env: ["ELECTRICITYMAPS_API_KEY": "secret-key"])
        let forecast = try await c.fetch(zone: "DE", query: .forecast).series[0]
        #expect(forecast.metadata.kind == .forecast)
        #expect(forecast.points.count == 24)
        #expect(forecast.metadata.issuedAt == 1_714_520_830)  // updatedAt 2024-04-30T23:47:10Z
        let latest = try await c.fetch(zone: "DE", query: .history).series[0]
        #expect(latest.metadata.kind == .actual)
        #expect(server.requests.map(\.query["zone"]) == ["DE", "DE"])
        #expect(server.requests.allSatisfy { !$0.target.contains("secret-key") })
    }

    @Test("A missing key stops before any request; a rejected key is one request and names no secret")
    func credentials() async throws {
        let server = try LoopbackHTTPServer { _ in .json(#"{"message":"bad key"}"#, status: 401) }
        let none = try client(.electricityMaps, server)
        await #expect { try await none.fetch(zone: "DE", query: .forecast) } throws: { "\($0)".contains("ELECTRICITYMAPS_API_KEY") }
        #expect(server.requests.isEmpty)
        let wrong = try client(.electricityMaps, server, env: ["ELECTRICITYMAPS_API_KEY": "wrong-key-123"])
        await #expect { try await wrong.fetch(zone: "DE", query: .forecast) } throws: { e in
            "\(e)".contains("HTTP 401") && !"\(e)".contains("wrong-key-123")
        }
        #expect(server.requests.count == 1)
    }

    @Test("WattTime: logs in with basic auth, asks with the bearer token, converts lbs/MWh")
    func wattTime() async throws {
        let server = try LoopbackHTTPServer { r in
            switch r.path {
            case "/login":
                let expected = "Basic " + Data("ada:pw".utf8).base64EncodedString()
                return r.headers["authorization"] == expected ? .json(#"{"token":"tok-1"}"#) : .json("{}", status: 403)
            case "/v3/forecast":
                guard r.headers["authorization"] == "Bearer tok-1", r.query["signal_type"] == "co2_moer", r.query["region"] == "CAISO_NORTH" else {
                    return .json("{}", status: 400)
                }
                return .init(body: fixture("watttime-forecast.json"))
            case "/v3/historical":
                return r.query["start"] != nil && r.query["end"] != nil ? .init(body: fixture("watttime-historical.json")) : .json("{}", status: 400)
            default: return .json("{}", status: 404)
            }
        }
        let c = try client(.wattTime, server, env: ["WATTTIME_USERNAME": "ada", "WATTTIME_PASSWORD": "pw"])
        let s = try await c.fetch(zone: "CAISO_NORTH", query: .forecast).series[0]
        #expect(s.metadata.signal == .marginal)
        #expect(abs(s.points[0].value - 900 * 0.45359237) < 1e-9)
        let h = try await c.fetch(zone: "CAISO_NORTH", query: .history).series[0]
        #expect(h.metadata.kind == .actual)
        #expect(server.requests.map(\.path) == ["/login", "/v3/forecast", "/login", "/v3/historical"])
    }

    @Test("UK: the forecast path starts at the current half-hour; history keeps only known actuals")
    func ukci() async throws {
        let pt24h = #"{"data":[{"from":"2023-08-29T23:00Z","to":"2023-08-29T23:30Z","intensity":{"forecast":100,"actual":98,"index":"low"}},{"from":"2023-08-29T23:30Z","to":"2023-08-30T00:00Z","intensity":{"forecast":101,"actual":null,"index":"low"}}]}"#
        let server = try LoopbackHTTPServer { r in
            if r.path == "/intensity/2023-08-30T00:00Z/fw48h" { return .init(body: fixture("ukci-small.json")) }
            if r.path == "/intensity/2023-08-30T00:00Z/pt24h" { return .json(pt24h) }
            return .json("{}", status: 404)
        }
        let c = try client(.ukci, server)
        let f = try await c.fetch(zone: "GB", query: .forecast).series[0]
        #expect(f.points.count == 5)
        let h = try await c.fetch(zone: "GB", query: .history).series[0]
        #expect(h.points.map(\.value) == [98])
        await #expect { try await c.fetch(zone: "FR", query: .forecast) } throws: { "\($0)".contains("zone GB") }
    }

    @Test("429 and 5xx are retried with backoff (Retry-After honoured) until an answer comes")
    func retries() async throws {
        let count = Atomic<Int>(0)
        let server = try LoopbackHTTPServer { _ in
            switch count.add(1, ordering: .relaxed).newValue {
            case 1: return .json("{}", status: 503)
            case 2: return .init(status: 429, headers: ["Retry-After": "3"], body: Data())
            case 3: return .json("{}", status: 502)
            default: return .init(body: fixture("electricitymaps-history.json"))
            }
        }
        let waits = Waits()
        let c = try client(.electricityMaps, server, env: ["ELECTRICITYMAPS_API_KEY": "k"], waits: waits)
        let s = try await c.fetch(zone: "DE", query: .history).series[0]
        #expect(s.points.count == 24)
        #expect(waits.all == [1, 3, 4])
        #expect(server.requests.count == 4)
    }

    @Test("A source that keeps failing gives up after the set attempts and says why")
    func exhausted() async throws {
        let server = try LoopbackHTTPServer { _ in .json("{}", status: 500) }
        let waits = Waits()
        let c = try client(.ukci, server, policy: RetryPolicy(attempts: 3, initialDelay: 0.5, maximumDelay: 1, timeout: 5), waits: waits)
        await #expect { try await c.fetch(zone: "GB", query: .forecast) } throws: { "\($0)".contains("after 3 attempt(s); last: HTTP 500") }
        #expect(waits.all == [0.5, 1])
        #expect(server.requests.count == 3)
    }

    @Test("A slow server times out, and the timeout counts as a failed attempt")
    func timeout() async throws {
        let server = try LoopbackHTTPServer { _ in .init(body: fixture("ukci-small.json"), delay: 3) }
        let c = try client(.ukci, server, policy: RetryPolicy(attempts: 2, initialDelay: 0, maximumDelay: 0, timeout: 1))
        await #expect { try await c.fetch(zone: "GB", query: .forecast) } throws: { "\($0)".contains("after 2 attempt(s)") && "\($0)".contains("timed out") }
    }

    @Test("A malformed or partial answer is an error naming the URL and the point", arguments: [
        ("not json at all", "not an Electricity Maps API response"),
        (#"{"zone":"DE","forecast":[{"datetime":"2024-05-01T00:00:00Z","carbonIntensity":300},{"datetime":"2024-05-01T01:00:00Z","carbonIntensity":null}]}"#, "point 2, field 'forecast.carbonIntensity'"),
        (#"{"zone":"FR","forecast":[{"datetime":"2024-05-01T00:00:00Z","carbonIntensity":300}]}"#, "for zone FR, not DE"),
    ])
    func malformed(_ body: String, _ expected: String) async throws {
        let server = try LoopbackHTTPServer { _ in .json(body) }
        let c = try client(.electricityMaps, server, env: ["ELECTRICITYMAPS_API_KEY": "k"])
        await #expect { try await c.fetch(zone: "DE", query: .forecast) } throws: { e in
            "\(e)".contains(expected) && "\(e)".contains("/v3/carbon-intensity/forecast") && "\(e)".contains("nothing was stored")
        }
    }
}

@Suite("Retry policy")
struct RetryPolicyTests {
    @Test("Backoff doubles from the first delay and never passes the maximum", arguments: [(0.5, 8.0), (1, 30), (2, 5)])
    func doubling(_ first: Double, _ maximum: Double) {
        let p = RetryPolicy(attempts: 10, initialDelay: first, maximumDelay: maximum, timeout: 1)
        let delays = (1...9).map { p.delay(afterAttempt: $0, retryAfter: nil) }
        #expect(delays[0] == min(first, maximum))
        for (a, b) in zip(delays, delays.dropFirst()) { #expect(b == min(2 * a, maximum)) }
        #expect(p.delay(afterAttempt: 1, retryAfter: 1_000) == maximum)
    }
}
