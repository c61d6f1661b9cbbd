import Accounting
import CarbonData
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// The live carbon-intensity services Joule can ask.
public enum LiveSource: String, CaseIterable, Sendable {
    case electricityMaps = "electricitymaps"
    case wattTime = "watttime"
    case ukci

    /// The public base URL; `JOULE_<NAME>_URL` in the environment replaces it (a proxy, or a
    /// test server).
    public var defaultBaseURL: String {
        switch self {
        case .electricityMaps: return "https://api.electricitymap.org"
        case .wattTime: return "https://api.watttime.org"
        case .ukci: return "https://api.carbonintensity.org.uk"
        }
    }

    public var baseURLVariable: String {
        switch self {
        case .electricityMaps: return "JOULE_ELECTRICITYMAPS_URL"
        case .wattTime: return "JOULE_WATTTIME_URL"
        case .ukci: return "JOULE_UKCI_URL"
        }
    }

    /// The environment variables holding credentials.
    public var credentialVariables: [String] {
        switch self {
        case .electricityMaps: return ["ELECTRICITYMAPS_API_KEY"]
        case .wattTime: return ["WATTTIME_USERNAME", "WATTTIME_PASSWORD"]
        case .ukci: return []
        }
    }

    /// The format of its answers.
    public var format: CarbonFormat {
        switch self {
        case .electricityMaps: return .electricityMaps
        case .wattTime: return .wattTime
        case .ukci: return .ukci
        }
    }
}

/// What to ask for: the latest point, the recent past, or the forecast.
public enum LiveQuery: String, CaseIterable, Sendable {
    case latest, history, forecast
}

/// Asks a live source for a zone's intensity and reads the answer with the same readers as
/// `joule carbon import`. Credentials come from `environment` only.
public struct LiveCarbonClient: Sendable {
    public var source: LiveSource
    public var baseURL: URL
    public var environment: [String: String]
    public var fetcher: HTTPFetcher
    /// The current time (for the UK API's paths and WattTime's history range).
    public var now: @Sendable () -> Double

    public init(
        source: LiveSource, environment: [String: String] = ProcessInfo.processInfo.environment, fetcher: HTTPFetcher = HTTPFetcher(),
        now: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 }
    ) throws {
        self.source = source
        self.environment = environment
        self.fetcher = fetcher
        self.now = now
        let text = environment[source.baseURLVariable] ?? source.defaultBaseURL
        guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https" else {
            throw LiveSourceError.malformed(url: text, reason: "\(source.baseURLVariable) is not an http(s) URL")
        }
        baseURL = url
    }

    func credential(_ name: String) throws -> String {
        guard let v = environment[name], !v.isEmpty else {
            throw LiveSourceError.missingCredential(source: source.rawValue, variables: source.credentialVariables)
        }
        return v
    }

    func url(_ path: String, _ query: [String: String] = [:]) -> URL {
        var c = URLComponents(url: baseURL.appendingPathComponent(path), resolvingAgainstBaseURL: false)!
        if !query.isEmpty { c.queryItems = query.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) } }
        return c.url!
    }

    static func iso(_ t: Double, fractional: Bool = false) -> String {
        WallClock.string(t)
    }

    /// What an answer to `query` is: the UK API's current half-hour has only a forecast.
    public func kind(of query: LiveQuery) -> SeriesKind {
        query == .forecast || (source == .ukci && query == .latest) ? .forecast : .actual
    }

    /// The zone's series for `query`; a malformed or partial answer throws and yields nothing.
    public func fetch(zone: String, query: LiveQuery, signal: CarbonSignal = .marginal) async throws -> CarbonImport {
        let target: URL
        var headers: [String: String] = [:]
        var options = CarbonImportOptions()
        switch source {
        case .electricityMaps:
            headers["auth-token"] = try credential("ELECTRICITYMAPS_API_KEY")
            target = url("v3/carbon-intensity/\(query.rawValue)", ["zone": zone])
            options.region = zone
        case .wattTime:
            let user = try credential("WATTTIME_USERNAME"), password = try credential("WATTTIME_PASSWORD")
            let login = try await fetcher.get(url("login"), headers: ["Authorization": "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()])
            struct Token: Decodable { var token: String }
            guard let token = try? JSONDecoder().decode(Token.self, from: login).token, !token.isEmpty else {
                throw LiveSourceError.malformed(url: HTTPFetcher.shown(url("login")), reason: "expected {\"token\": …} from the login")
            }
            headers["Authorization"] = "Bearer \(token)"
            let signalType = signal == .marginal ? "co2_moer" : "co2_aoer"
            switch query {
            case .forecast:
                target = url("v3/forecast", ["region": zone, "signal_type": signalType])
            case .history, .latest:
                let end = now()
                target = url("v3/historical", ["region": zone, "signal_type": signalType, "start": Self.iso(end - (query == .latest ? 900 : 86_400)), "end": Self.iso(end)])
            }
            options.region = zone
        case .ukci:
            guard zone == "GB" else {
                throw LiveSourceError.malformed(url: baseURL.absoluteString, reason: "the UK Carbon Intensity API's national series is zone GB, not \(zone)")
            }
            let t = floor(now() / 1800) * 1800
            let stamp = Self.iso(t).replacingOccurrences(of: ":00Z", with: "Z")
            switch query {
            case .forecast: target = url("intensity/\(stamp)/fw48h")
            case .history: target = url("intensity/\(stamp)/pt24h")
            case .latest: target = url("intensity")
            }
            // The current half-hour has no actual yet: `latest` is its forecast.
            options.ukFigure = kind(of: query) == .forecast ? .forecast : .actual
            options.issuedAt = kind(of: query) == .forecast ? now() : nil
        }
        let data = try await fetcher.get(target, headers: headers)
        do {
            var result = try source.format.read(data, file: HTTPFetcher.shown(target), options: options)
            if query == .latest {
                result.series = result.series.map { s in
                    CarbonSeries(metadata: s.metadata, checkedPoints: [s.points[s.points.count - 1]])
                }
            }
            return result
        } catch let error as CarbonDataError {
            throw LiveSourceError.malformed(url: HTTPFetcher.shown(target), reason: error.description)
        }
    }
}
