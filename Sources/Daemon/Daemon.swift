import Accounting
import Catalog
import CarbonLive
import Foundation
import Ledger
import Logging
import MoE
import ServiceLifecycle

/// The measurement daemon: one `SimulationDriver` per job and a `CarbonRefresher`, as a service
/// group that stops gracefully on SIGINT and SIGTERM. The composition root the CLI and the tests
/// share.
public struct Daemon: Sendable {
    public let ledger: any LedgerStore
    public let drivers: [SimulationDriver]
    /// The measured jobs: each records its fleet window by window.
    public let measuredDrivers: [MeasuredDriver]
    public let refresher: CarbonRefresher
    let logger: Logger
    /// Where the configuration asks the daemon to serve the ledger (nil: no server).
    public let server: (host: String, port: Int, spansOut: String?)?

    /// Reads every job's scenario (all errors surface here, before anything runs) and opens the ledger.
    public init(
        configuration c: DaemonConfiguration, library: SpecLibrary, dataDirectory: String, logger: Logger, clock: DaemonClock = .system
    ) throws {
        let plans = try c.jobs.filter { $0.measure == nil }.map { try JobPlan.make($0, library: library, dataDirectory: dataDirectory) }
        ledger = try LedgerLocation(c.database).open(maximumBytes: c.maximumDatabaseMB.map { Int($0 * 1_048_576) })
        // Runs a killed `simulate --db` left `running` end as failed (the daemon's own resume).
        for lease in try ledger.failAbandonedRuns(at: clock.now()) {
            logger.warning("marked an abandoned run failed", metadata: ["run": "\(lease.run)", "writer": "\(lease)"])
        }
        let measuredJobs = c.jobs.filter { $0.measure != nil }
        let tracker = JobTracker(jobs: plans.count + measuredJobs.count)
        var drivers: [SimulationDriver] = []
        var subscriptions: [CarbonRefresher.Subscription] = []
        for plan in plans {
            let feed = CarbonFeed()
            drivers.append(SimulationDriver(
                plan: plan, ledger: ledger, feed: feed, jobs: tracker, commitSeconds: c.commitSeconds,
                progressSeconds: c.progressSeconds, retainRequestDays: c.retainRequestDays, clock: clock, logger: logger
            ))
            let carbon = plan.prepared.scenario.carbon
            subscriptions.append(.init(job: plan.name, region: carbon.region, signal: carbon.signal, feed: feed, fallback: carbon))
        }
        let source: any CarbonSource
        switch c.carbonSource {
        case "ledger": source = LedgerCarbonSource(ledger: ledger)
        case let name where LiveSource(rawValue: name) != nil:
            let client = try LiveCarbonClient(source: LiveSource(rawValue: name)!, fetcher: HTTPFetcher(policy: RetryPolicy(attempts: 3, timeout: 20)))
            source = LiveCarbonSource(client: client, query: LiveQuery(rawValue: c.carbonQuery) ?? .forecast, zone: c.carbonZone)
        default: source = ScenarioCarbonSource(plans: plans)
        }
        refresher = CarbonRefresher(
            source: source,
            subscriptions: subscriptions, ledger: ledger, intervalSeconds: c.carbonRefreshSeconds, jobs: tracker, logger: logger
        )
        self.drivers = drivers
        let store = ledger
        measuredDrivers = measuredJobs.map {
            MeasuredDriver(name: $0.name!, spec: $0.measure!, ledger: store, library: library, dataDirectory: dataDirectory, clock: clock, logger: logger)
        }
        self.logger = logger
        server = c.serverPort.map { (c.serverHost, $0, c.serverSpansOut) }
    }

    /// Runs until every job has ended or a signal stops them. Throws the first job's error.
    ///
    /// `serving` is a service that serves the ledger alongside the jobs (the HTTP server, built
    /// by the composition root from `server`): when it ends, the daemon ends.
    public func run(signals: Bool = true, serving: (any Service)? = nil) async throws {
        var services = drivers.map {
            ServiceGroupConfiguration.ServiceConfiguration(service: $0, successTerminationBehavior: .ignore, failureTerminationBehavior: .gracefullyShutdownGroup)
        }
        services += measuredDrivers.map {
            ServiceGroupConfiguration.ServiceConfiguration(service: $0, successTerminationBehavior: .ignore, failureTerminationBehavior: .gracefullyShutdownGroup)
        }
        services.append(.init(service: refresher, successTerminationBehavior: .ignore, failureTerminationBehavior: .ignore))
        if let serving {
            services.append(.init(service: serving, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup))
        }
        var configuration = ServiceGroupConfiguration(services: services, logger: logger)
        if signals {
            configuration.gracefulShutdownSignals = [.sigterm, .sigint]
        }
        try await ServiceGroup(configuration: configuration).run()
    }
}

