import Accounting
import Foundation
import Ledger
import Logging
import ServiceLifecycle

/// Refreshes each job's carbon intensity on a schedule: asks the source, stores the points in the
/// ledger and hands the series to the job. When the source fails it logs a warning and the job
/// keeps the last known series. Ends when every job has ended, or on graceful shutdown.
public struct CarbonRefresher: Service {
    public struct Subscription: Sendable {
        public var job: String
        public var region: String
        public var signal: CarbonSignal
        public var feed: CarbonFeed
        /// Used when the source has nothing (the scenario's own series).
        public var fallback: CarbonSeries

        public init(job: String, region: String, signal: CarbonSignal, feed: CarbonFeed, fallback: CarbonSeries) {
            self.job = job
            self.region = region
            self.signal = signal
            self.feed = feed
            self.fallback = fallback
        }
    }

    let source: any CarbonSource
    let subscriptions: [Subscription]
    let ledger: any LedgerStore
    let intervalSeconds: Double
    let jobs: JobTracker
    let logger: Logger

    public init(source: any CarbonSource, subscriptions: [Subscription], ledger: any LedgerStore, intervalSeconds: Double, jobs: JobTracker, logger: Logger) {
        self.source = source
        self.subscriptions = subscriptions
        self.ledger = ledger
        self.intervalSeconds = intervalSeconds
        self.jobs = jobs
        self.logger = logger
    }

    public func run() async throws {
        var known: [String: Bool] = [:]
        while !Task.isCancelled && !Task.isShuttingDownGracefully && !jobs.allDone {
            for s in subscriptions {
                do {
                    let series = try await source.series(region: s.region, signal: s.signal)
                    try ledger.store(series, at: Date().timeIntervalSince1970)
                    s.feed.publish(series)
                    known[s.job] = true
                    logger.debug("carbon intensity refreshed", metadata: [
                        "job": "\(s.job)", "source": "\(series.metadata.sourceLabel)", "points": "\(series.points.count)",
                    ])
                } catch {
                    if known[s.job] == true {
                        logger.warning("carbon refresh failed; keeping the last known series", metadata: [
                            "job": "\(s.job)", "source": "\(source.name)", "error": "\(error)",
                        ])
                    } else {
                        logger.warning("carbon source has nothing yet; using the scenario's series", metadata: [
                            "job": "\(s.job)", "source": "\(source.name)", "error": "\(error)", "fallback": "\(s.fallback.metadata.sourceLabel)",
                        ])
                        known[s.job] = true
                    }
                }
            }
            // Wake at least every second to notice that the jobs have ended.
            var waited = 0.0
            while waited < intervalSeconds && !jobs.allDone {
                let step = min(1, intervalSeconds - waited)
                do {
                    try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(step)) }
                } catch {
                    return
                }
                if Task.isShuttingDownGracefully { return }
                waited += step
            }
        }
    }
}
