import Accounting
import CarbonData
import CarbonLive
import Foundation
import Ledger
import Synchronization

/// Where a daemon job's grid carbon intensity comes from when it is refreshed. Live sources
/// (Electricity Maps, WattTime, the UK Carbon Intensity API) conform to it in their own files.
public protocol CarbonSource: Sendable {
    /// A short name for logs.
    var name: String { get }
    /// The current series for `region` and `signal`; throws when the source cannot answer.
    func series(region: String, signal: CarbonSignal) async throws -> CarbonSeries
}

/// The series each job's scenario names (a constant, or a CSV it points at): it never changes.
public struct ScenarioCarbonSource: CarbonSource {
    let series: [String: CarbonSeries]
    public var name: String { "scenario" }

    public init(plans: [JobPlan]) {
        var map: [String: CarbonSeries] = [:]
        for p in plans {
            let s = p.prepared.scenario.carbon
            map["\(s.region)|\(s.signal.rawValue)"] = s
        }
        series = map
    }

    public func series(region: String, signal: CarbonSignal) async throws -> CarbonSeries {
        guard let s = series["\(region)|\(signal.rawValue)"] else { throw LedgerCarbonSource.NoPoints(region: region, signal: signal) }
        return s
    }
}

/// Points stored in the ledger for the region and signal (by `joule carbon import` or a live
/// fetch), newest source first.
public struct LedgerCarbonSource: CarbonSource {
    public let ledger: any LedgerStore
    public var name: String { "ledger (\(ledger.location))" }

    public init(ledger: any LedgerStore) { self.ledger = ledger }

    public struct NoPoints: Error, CustomStringConvertible {
        public var region: String
        public var signal: CarbonSignal
        public var description: String { "no carbon-intensity points for region \(region) (\(signal.rawValue)) in the ledger" }
    }

    public func series(region: String, signal: CarbonSignal) async throws -> CarbonSeries {
        guard let newest = try ledger.newestSeries(SeriesFilter(region: region, signal: signal)) else {
            throw NoPoints(region: region, signal: signal)
        }
        return newest.series
    }
}

/// A live service (Electricity Maps, WattTime, the UK Carbon Intensity API) asked on every
/// refresh; credentials from the daemon's environment.
public struct LiveCarbonSource: CarbonSource {
    public let client: LiveCarbonClient
    public let query: LiveQuery
    /// Asks for this zone instead of the job's region (the series is stored under the zone).
    public let zone: String?
    public var name: String { "\(client.source.rawValue) (\(client.baseURL.host ?? ""))" }

    public init(client: LiveCarbonClient, query: LiveQuery, zone: String?) {
        self.client = client
        self.query = query
        self.zone = zone
    }

    public func series(region: String, signal: CarbonSignal) async throws -> CarbonSeries {
        let result = try await client.fetch(zone: zone ?? region, query: query, signal: signal)
        guard var s = result.series.last else { throw LedgerCarbonSource.NoPoints(region: region, signal: signal) }
        // The job accounts under its own region; the zone stays in the origin.
        if s.metadata.region != region { s.metadata.origin += " (zone \(s.metadata.region))"; s.metadata.region = region }
        return s
    }
}

/// The latest series for one job, handed from the carbon refresher to the simulation thread.
public final class CarbonFeed: Sendable {
    private let state = Mutex<(version: Int, series: CarbonSeries?)>((0, nil))

    public init() {}

    /// Publishes a newer series.
    public func publish(_ series: CarbonSeries) {
        state.withLock { $0 = ($0.version + 1, series) }
    }

    /// The series published after `version`, if any, with its version.
    public func newer(than version: Int) -> (version: Int, series: CarbonSeries)? {
        state.withLock { s in
            guard s.version > version, let series = s.series else { return nil }
            return (s.version, series)
        }
    }
}
