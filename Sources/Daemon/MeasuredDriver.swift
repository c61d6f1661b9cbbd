import Accounting
import CarbonLive
import Catalog
import Foundation
import Ledger
import Logging
import Measured
import MoE
import ServiceLifecycle

/// Stores a measured run in the ledger like a simulated one, in one audited batch.
public enum MeasuredRecording {
    /// The run's id. `source` is `measure` (the CLI) or `daemon-measure` (a daemon job).
    public static func record(_ m: MeasuredRun, source: String, ledger: any LedgerStore, at now: Double) throws -> (run: Int64, recorder: RunRecorder) {
        let spec = RunSpec(
            name: m.name, source: source, scenarioFile: m.telemetry.origin, scenarioText: m.descriptionText, overrides: "{}", seed: 0,
            startEpochSeconds: m.books.start, intervalSeconds: m.setup.intervalSeconds
        )
        let run = try ledger.beginRun(spec, at: now)
        let recorder = RunRecorder(ledger: ledger, run: run, startEpochSeconds: m.books.start)
        do {
            for r in m.books.records { recorder.add(r) }
            for i in m.books.intervals { recorder.add(i) }
            recorder.set(Checkpoint(
                time: m.books.end - m.books.start, records: m.books.records.count, intervals: m.books.intervals.count, pendingRequests: 0,
                pendingFacilityJoules: 0, unattributedFacilityJoules: m.books.unattributedFacilityJoules
            ))
            try recorder.commit(at: now)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            try ledger.setStatus(.finished, run: run, at: now, summary: String(decoding: try encoder.encode(m.summary), as: UTF8.self))
        } catch {
            try? ledger.setStatus(.failed, run: run, at: now, message: "\(error)")
            throw error
        }
        return (run, recorder)
    }
}

/// Scrapes a Prometheus-format `/metrics` URL (a DCGM exporter) into a dump: each scrape after a
/// `# scrape <time>` line, the layout `DCGMReader` reads. A failed scrape is left out (a gap).
public struct MetricsScraper: Sendable {
    public let url: URL
    public let fetcher: HTTPFetcher

    public init(url: URL, timeout: Double) {
        self.url = url
        fetcher = HTTPFetcher(policy: RetryPolicy(attempts: 1, timeout: max(1, timeout)))
    }

    /// One scrape as dump text, or the error.
    public func scrape(at now: Double) async -> Result<Data, Error> {
        do {
            let body = try await fetcher.get(url)
            var dump = Data("# scrape \(WallClock.fractionalString(now))\n".utf8)
            dump.append(body)
            if body.last != 0x0A { dump.append(0x0A) }
            return .success(dump)
        } catch {
            return .failure(error)
        }
    }
}

/// A daemon job that records a real fleet: it scrapes the power URL (or re-reads a telemetry file)
/// and, `settleSeconds` after each window ends, attributes the window's energy to the requests
/// the log then holds and stores the window as a measured run (source `daemon-measure`). Spans
/// arrive when requests finish: a request still running at recording time is not in its window's
/// run (its energy is shared as idle), and the next window records it.
public struct MeasuredDriver: Service {
    public let name: String
    public let spec: MeasuredJobSpec
    let ledger: any LedgerStore
    let library: SpecLibrary
    let dataDirectory: String
    let clock: DaemonClock
    let logger: Logger

    public init(name: String, spec: MeasuredJobSpec, ledger: any LedgerStore, library: SpecLibrary, dataDirectory: String, clock: DaemonClock, logger: Logger) {
        self.name = name
        self.spec = spec
        self.ledger = ledger
        self.library = library
        self.dataDirectory = dataDirectory
        self.clock = clock
        self.logger = logger
    }

    static func isURL(_ s: String) -> Bool { s.hasPrefix("http://") || s.hasPrefix("https://") }

    public func run() async throws {
        let scraper = Self.isURL(spec.power) ? URL(string: spec.power).map { MetricsScraper(url: $0, timeout: spec.scrapeSeconds) } : nil
        var dump = Data()
        var windowStart = (clock.now() / spec.windowSeconds).rounded(.up) * spec.windowSeconds
        logger.info("measuring", metadata: ["job": "\(name)", "power": "\(spec.power)", "requests": "\(spec.requests)", "firstWindow": "\(WallClock.string(windowStart))"])
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let now = clock.now()
            if let scraper {
                switch await scraper.scrape(at: now) {
                case .success(let d): dump.append(d)
                case .failure(let e): logger.warning("scrape failed", metadata: ["job": "\(name)", "error": "\(e)"])
                }
            }
            if now >= windowStart + spec.windowSeconds + spec.settleSeconds {
                await recordWindow(windowStart, dump: scraper == nil ? nil : dump)
                windowStart += spec.windowSeconds
                if scraper != nil { dump = Self.trimmed(dump, before: windowStart - spec.scrapeSeconds * 2) }
            }
            try? await Task.sleep(for: .seconds(spec.scrapeSeconds))
        }
    }

    /// Records [start, start + window] as a measured run; a window that cannot be read is logged and skipped.
    func recordWindow(_ start: Double, dump: Data?) async {
        let window = start...(start + spec.windowSeconds)
        do {
            var requestsData: Data?
            if Self.isURL(spec.requests), let url = URL(string: spec.requests) {
                requestsData = try await HTTPFetcher(policy: RetryPolicy(attempts: 3, timeout: 30)).get(url)
            }
            var request = MeasureRequest(
                power: spec.power, powerFormat: dump != nil ? .dcgm : spec.powerFormat, requests: spec.requests, hardware: spec.hardware,
                site: spec.site, grid: spec.grid, policy: spec.policy, intervalSeconds: spec.intervalSeconds, engineGPUs: spec.engineGPUs,
                skipBadLines: true, hostPower: spec.hostPower, powerData: dump, requestsData: requestsData
            )
            request.window = window
            let measured = try Catalog.measure(request, name: name, library: library, dataDirectory: dataDirectory)
            let (run, recorder) = try MeasuredRecording.record(measured, source: "daemon-measure", ledger: ledger, at: clock.now())
            logger.info("recorded a measured window", metadata: [
                "job": "\(name)", "run": "\(run)", "from": "\(WallClock.string(window.lowerBound))", "requests": "\(recorder.committedRequests)",
                "gpuJoules": "\(measured.books.gpuJoules)", "issues": "\(measured.books.issues.count)",
            ])
        } catch {
            logger.error("measured window not recorded", metadata: ["job": "\(name)", "from": "\(WallClock.string(window.lowerBound))", "error": "\(error)"])
        }
    }

    /// The dump without its scrapes before `t` (whole scrapes: cut at a `# scrape` line).
    static func trimmed(_ dump: Data, before t: Double) -> Data {
        let text = String(decoding: dump, as: UTF8.self)
        var kept = ""
        var keep = false
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# scrape "), let stamp = WallClock.iso8601(line.dropFirst("# scrape ".count)) { keep = stamp >= t }
            if keep { kept += line + "\n" }
        }
        return Data(kept.utf8)
    }
}
