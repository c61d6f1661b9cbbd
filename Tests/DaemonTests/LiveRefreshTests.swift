import Accounting
import CarbonData
import Catalog
import CarbonLive
import Daemon
import Foundation
import Ledger
import Logging
import Synchronization
import TestHTTPServer
import Testing

/// Keeps the messages logged at warning and above.
final class WarningLog: Sendable {
    let messages = Mutex<[String]>([])
    var all: [String] { messages.withLock { $0 } }

    struct Handler: LogHandler {
        let log: WarningLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .debug
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(event: LogEvent) {
            if event.level >= .warning { log.messages.withLock { $0.append("\(event.message) \(event.metadata ?? [:])") } }
        }
    }
}

@Suite("Live carbon refresh in the daemon")
struct LiveRefreshTests {
    @Test("The refresher stores a live answer and hands it over; when the source fails it warns and keeps the last series")
    func fallsBack() async throws {
        let answers = Atomic<Int>(0)
        let server = try LoopbackHTTPServer { r in
            guard r.path == "/intensity/2023-03-15T12:00Z/fw48h" else { return .json("{}", status: 404) }
            return answers.add(1, ordering: .relaxed).newValue == 1
                ? .init(body: (try? Data(contentsOf: URL(fileURLWithPath: "\(dataDirectory)/../Tests/Fixtures/carbon/ukci-small.json"))) ?? Data())
                : .json("{}", status: 500)
        }
        let folder = TemporaryFolder()
        let ledger = try Ledger(path: "\(folder.path)/l.sqlite")
        let client = try LiveCarbonClient(
            source: .ukci, environment: ["JOULE_UKCI_URL": server.baseURL],
            fetcher: HTTPFetcher(policy: RetryPolicy(attempts: 2, initialDelay: 0, maximumDelay: 0, timeout: 5), sleep: { _ in }),
            now: { 1_678_881_700 }  // 2023-03-15T12:01:40Z
        )
        let feed = CarbonFeed()
        let fallback = CarbonSeries.constant(CarbonIntensity(gramsPerKWh: 500), region: "GB", signal: .average, source: "scenario")
        let jobs = JobTracker(jobs: 1)
        let log = WarningLog()
        let refresher = CarbonRefresher(
            source: LiveCarbonSource(client: client, query: .forecast, zone: nil),
            subscriptions: [.init(job: "j", region: "GB", signal: .average, feed: feed, fallback: fallback)],
            ledger: ledger, intervalSeconds: 0.2, jobs: jobs, logger: Logger(label: "test") { _ in WarningLog.Handler(log: log) }
        )
        let task = Task { try await refresher.run() }
        // Wait for the first answer and at least two failed refreshes after it.
        for _ in 0..<100 where server.requests.count < 5 { try await Task.sleep(for: .milliseconds(50)) }
        jobs.finish()
        try await task.value

        let published = try #require(feed.newer(than: 0))
        #expect(published.version == 1)
        #expect(published.series.points.map(\.value) == [210, 180, 150, 150, 190])
        #expect(published.series.metadata.sourceLabel == "ukci/direct/forecast")
        let stored = try ledger.matchingSeries(SeriesFilter(region: "GB", source: "ukci"))
        #expect(stored.count == 1 && stored[0].pointCount == 5)
        #expect(log.all.contains { $0.contains("keeping the last known series") && $0.contains("HTTP 500") })
    }
}

@Suite("Live carbon configuration")
struct LiveCarbonConfigurationTests {
    @Test("A live source reads with its zone and query; an unknown one names the key")
    func live() throws {
        let folder = TemporaryFolder()
        let good = folder.write("g.yaml", "carbon: {source: electricitymaps, zone: DE, query: history}\n")
        let c = try DaemonConfiguration.load(at: good)
        #expect(c.carbonSource == "electricitymaps" && c.carbonZone == "DE" && c.carbonQuery == "history")
        let bad = folder.write("b.yaml", "carbon: {source: carbonhack}\n")
        #expect { try DaemonConfiguration.load(at: bad) } throws: { "\($0)".contains("source") && "\($0)".contains("ukci") }
        let badQuery = folder.write("q.yaml", "carbon: {source: ukci, query: tomorrow}\n")
        #expect { try DaemonConfiguration.load(at: badQuery) } throws: { "\($0)".contains("query") }
    }
}

@Suite("Daemon server configuration")
struct DaemonServerConfigurationTests {
    @Test("server: {port, host} turns the server on; a bad port names the key")
    func server() throws {
        let folder = TemporaryFolder()
        let c = try DaemonConfiguration.load(at: folder.write("s.yaml", "server: {port: 8080, host: 0.0.0.0}\n"))
        #expect(c.serverPort == 8080 && c.serverHost == "0.0.0.0")
        #expect(try DaemonConfiguration.load(at: folder.write("n.yaml", "jobs: [{scenario: mixtral-single-node}]\n")).serverPort == nil)
        #expect { try DaemonConfiguration.load(at: folder.write("b.yaml", "server: {port: 70000}\n")) } throws: { "\($0)".contains("server.port") }
    }
}
