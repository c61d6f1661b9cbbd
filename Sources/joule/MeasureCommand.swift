import ArgumentParser
import Accounting
import CarbonLive
import Catalog
import Daemon
import Foundation
import Ledger
import Measured

struct MeasureCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "measure",
        abstract: "Record a measured run: real GPU power telemetry attributed to the requests an engine logged.",
        discussion: """
        Reads GPU power telemetry (nvidia-smi's CSV, DCGM exporter metrics, or a Zeus power timeline) \
        and a request log (the plain CSV, or vLLM's OpenTelemetry spans as OTLP/JSON), splits each \
        GPU's measured energy over the requests on its engine, interval by interval, with the same \
        attribution policies as simulated runs, adds the modelled host share and the site's PUE, and \
        prints (or records in the ledger) every request's energy and carbon. Gaps, counter resets and \
        wraps, clock skew and requests with missing spans are reported, never dropped. The run is \
        labelled measured wherever it is shown.

        Examples:
          joule measure --power nvidia-smi.csv --requests requests.csv --grid CN
          joule measure --power dcgm.prom --requests spans.jsonl --grid DE --db joule.sqlite
          joule measure --power zeus.json --power-format zeus --requests requests.csv --grid US --json
          joule measure --power smi.csv --requests spans.json --engine-gpus 0-7 --grid GB --policy equal-per-request-second
          joule measure --power http://node-a:9400/metrics --duration 600 --power-out dcgm.prom \\
                        --requests http://127.0.0.1:8080/v1/requests.csv --grid DE --db joule.sqlite

        A power URL is a DCGM exporter's /metrics, scraped every --scrape-seconds for --duration \
        seconds (each scrape stamped with its time; --power-out keeps the dump); a requests URL \
        is fetched once when the scraping ends (`joule serve --spans-out` serves its span spool \
        at /v1/requests.csv).

        See docs/measured.md for capturing telemetry and spans on a vLLM node.
        """
    )

    @OptionGroup var data: DataOptions
    @Option(help: ArgumentHelp("GPU power telemetry: a file, or a DCGM exporter's /metrics URL (with --duration).", valueName: "file-or-url")) var power: String
    @Option(name: .customLong("power-format"), help: "nvidia-smi, dcgm or zeus (default: from the file name: .json zeus, .prom/.txt dcgm, else nvidia-smi).")
    var powerFormat: PowerFormat?
    @Option(help: ArgumentHelp("Request log: the CSV request_id,arrival,first_token,finish,prompt_tokens,cached_tokens,output_tokens,gpus, or OTLP/JSON spans.", valueName: "file"))
    var requests: String
    @Option(help: "With a power URL: seconds to scrape it for (1 to 86400).") var duration: Double?
    @Option(name: .customLong("scrape-seconds"), help: "With a power URL: seconds between scrapes (0.1 to 60).") var scrapeSeconds = 1.0
    @Option(name: .customLong("power-out"), help: ArgumentHelp("With a power URL: keep the scraped dump here (DCGM text with '# scrape' lines).", valueName: "file"))
    var powerOut: String?
    @Option(name: .customLong("requests-format"), help: "csv or otlp (default: .json/.jsonl otlp, else csv).") var requestsFormat: RequestLogFormat?
    @Option(help: "Grid region for carbon (a region of Data/grids, see `joule carbon defaults`).") var grid: String
    @Option(help: "Site whose PUE applies (Data/hardware/sites).") var site = "default"
    @Option(help: "Node whose host model gives host power (Data/hardware/nodes).") var hardware = "h800"
    @Option(help: "Embodied-carbon model (Data/embodied).") var embodied = "llmcarbon-h800"
    @Option(help: "Attribution policy for idle energy: proportional-to-active or equal-per-request-second.") var policy = AttributionPolicies.default.id
    @Option(help: "How a step's energy is split over its requests: tokens (processed in it) or time (equal per request-second).")
    var split: ActiveSplit = .tokens
    @Option(help: "Accounting interval in seconds (1 to 3600).") var interval = 60.0
    @Option(name: .customLong("engine-gpus"), help: ArgumentHelp("GPUs of the engine for requests whose log names none, as 0;1;2;3 or 0-7 (default: every GPU in the telemetry).", valueName: "gpus"))
    var engineGPUs: String?
    @Option(name: .customLong("host-power"), help: ArgumentHelp("Server power readings (IPMI or Redfish) as timestamp,watts[,node]; without it host power is modelled.", valueName: "file"))
    var hostPower: String?
    @Option(name: .customLong("host-gpus"), help: ArgumentHelp("Which GPUs each node of --host-power holds, as node-a=0-7,node-b=8-15 (default with one node: all).", valueName: "map"))
    var hostGPUs: String?
    @Option(name: .customLong("clock-offset"), help: "Seconds to add to the telemetry's times to match the request log's clock.") var clockOffset = 0.0
    @Option(help: "Name of the run.") var name = "measured"
    @Option(help: "Record the run (every request, every engine interval, the audit chain) in this ledger.") var db: String?
    @Option(name: .customLong("requests-out"), help: "Write every request's record, with its request_id, to FILE.csv or FILE.jsonl.") var requestsOut: String?
    @Flag(name: .customLong("skip-bad-lines"), help: "Report and skip malformed telemetry or log lines instead of stopping at the first.") var skipBadLines = false
    @Flag(help: "Print the summary as JSON.") var json = false

    func run() async throws {
        let (powerData, requestsData) = try await fetchURLs()
        let measured = try failing {
            let (library, directory) = try Composition.library(data)
            let gpus = try engineGPUs.map { try RequestCSVReader.parseGPUs($0, file: "--engine-gpus", line: nil, field: "gpus") }
            return try Catalog.measure(
                MeasureRequest(
                    power: power, powerFormat: powerFormat, requests: requests, requestsFormat: requestsFormat, hardware: hardware, site: site,
                    grid: grid, embodied: embodied, policy: policy, intervalSeconds: interval, engineGPUs: gpus, clockOffsetSeconds: clockOffset,
                    skipBadLines: skipBadLines, activeSplit: split, hostPower: hostPower, hostGPUs: hostGPUs, powerData: powerData,
                    requestsData: requestsData
                ),
                name: name, library: library, dataDirectory: directory
            )
        }
        if let requestsOut { try writeRecords(measured, to: requestsOut) }
        var runId: Int64?
        if let db { runId = try failing { try record(measured, ledgerPath: db) } }
        let output = MeasureOutput(measured, run: runId)
        print(json ? try jsonText(output) : output.text)
    }

    static func isURL(_ s: String) -> Bool { s.hasPrefix("http://") || s.hasPrefix("https://") }

    /// Scrapes a power URL for --duration and fetches a requests URL, when given.
    private func fetchURLs() async throws -> (Data?, Data?) {
        var powerData: Data?
        if Self.isURL(power) {
            guard let duration, duration.isFinite, (1...86_400).contains(duration) else {
                throw CLIError(message: "--duration: a power URL is scraped for --duration seconds, 1 to 86400; got \(duration.map { "\($0)" } ?? "none")")
            }
            guard scrapeSeconds.isFinite, (0.1...60).contains(scrapeSeconds) else {
                throw CLIError(message: "--scrape-seconds: expected 0.1 to 60, got \(scrapeSeconds)")
            }
            if let f = powerFormat, f != .dcgm { throw CLIError(message: "--power-format: a URL is scraped as DCGM exporter metrics; got \(f.rawValue)") }
            guard let url = URL(string: power) else { throw CLIError(message: "--power: not a URL: '\(power)'") }
            powerData = try await scrape(url, seconds: duration)
            if let powerOut {
                guard FileManager.default.createFile(atPath: powerOut, contents: powerData) else { throw CLIError(message: "--power-out: cannot write '\(powerOut)'") }
            }
        } else if duration != nil {
            throw CLIError(message: "--duration: only with a power URL (a file holds its own duration)")
        }
        var requestsData: Data?
        if Self.isURL(requests) {
            guard let url = URL(string: requests) else { throw CLIError(message: "--requests: not a URL: '\(requests)'") }
            do {
                requestsData = try await HTTPFetcher(policy: RetryPolicy(attempts: 3, timeout: 30)).get(url)
            } catch {
                throw CLIError(message: "--requests: \(error)")
            }
        }
        return (powerData, requestsData)
    }

    /// The URL's text every `scrapeSeconds` for `seconds`, each scrape after a `# scrape <time>` line.
    /// A scrape that fails is left out (the gap shows in the telemetry's issues), and said on stderr.
    private func scrape(_ url: URL, seconds: Double) async throws -> Data {
        let scraper = MetricsScraper(url: url, timeout: scrapeSeconds)
        let bar = ProgressBar(label: "scraping \(HTTPFetcher.shown(url))")
        let start = Date().timeIntervalSince1970
        var dump = Data()
        var next = start
        var failures = 0
        while true {
            let now = Date().timeIntervalSince1970
            if now - start > seconds { break }
            switch await scraper.scrape(at: now) {
            case .success(let d): dump.append(d)
            case .failure(let error):
                failures += 1
                if failures <= 3 { FileHandle.standardError.write(Data("warning: scrape at \(WallClock.fractionalString(now)) failed: \(error)\n".utf8)) }
            }
            bar.update((now - start) / seconds)
            next += scrapeSeconds
            let wait = next - Date().timeIntervalSince1970
            if wait > 0 { try await Task.sleep(for: .seconds(wait)) }
        }
        bar.finish()
        if failures > 0 { FileHandle.standardError.write(Data("warning: \(failures) scrape(s) of \(HTTPFetcher.shown(url)) failed; the gaps are reported\n".utf8)) }
        return dump
    }

    /// Stores the run like a simulated one (source `measure`), in one audited batch.
    private func record(_ m: MeasuredRun, ledgerPath: String) throws -> Int64 {
        let ledger = try LedgerLocation(ledgerPath).open()
        let (run, recorder) = try MeasuredRecording.record(m, source: "measure", ledger: ledger, at: Date().timeIntervalSince1970)
        FileHandle.standardError.write(Data("recorded as measured run \(run) in \(LedgerLocation.redacted(ledgerPath)): \(recorder.committedRequests.formatted()) requests in \(recorder.batches) audited batch\(recorder.batches == 1 ? "" : "es")\n".utf8))
        return run
    }

    private func writeRecords(_ m: MeasuredRun, to path: String) throws {
        let writer = try RecordWriter(path: path, leading: ["request_id"])
        for (r, id) in zip(m.books.records, m.books.requestIds) { writer.write(r, leading: [id]) }
        writer.close()
    }
}

/// `joule measure`'s summary: what the issue and the README promise (`requests`, `gpuJoules`,
/// `facilityJoules`, `conservationResidual`), with the run's issues and engines.
struct MeasureOutput: Encodable {
    var mode = "measured"
    var run: Int64?
    var requests: Int
    var finishedRequests: Int
    var inFlightRequests: Int
    var start: String
    var end: String
    var seconds: Double
    var gpus: Int
    var engines: [[Int]]
    var powerFormat: String
    var energyBasis: [String]
    /// `metered` (server readings given) or `modelled` (the node's host model).
    var host: String
    var samples: Int
    var gpuJoules: Double
    var facilityJoules: Double
    var unattributedFacilityJoules: Double
    var conservationResidual: Double
    var policy: String
    var split: String
    var whPerRequest: Double
    var carbonGramsPerRequest: Double
    var carbonKg: Double
    var batchProfile: [BatchProfileBin]
    var issues: [MeasuredIssue]

    init(_ m: MeasuredRun, run: Int64?) {
        let s = m.summary
        self.run = run
        requests = m.books.records.count
        finishedRequests = s.requests
        inFlightRequests = s.inFlightRequests
        start = WallClock.fractionalString(m.books.start)
        end = WallClock.fractionalString(m.books.end)
        seconds = m.books.end - m.books.start
        gpus = m.telemetry.tracks.count
        engines = m.books.engines
        powerFormat = m.telemetry.format
        energyBasis = Array(Set(m.telemetry.tracks.map(\.basis.rawValue))).sorted()
        host = m.setup.meteredHost.isEmpty ? "modelled" : "metered"
        samples = m.telemetry.samples
        gpuJoules = m.books.gpuJoules
        facilityJoules = m.books.facilityJoules
        unattributedFacilityJoules = m.books.unattributedFacilityJoules
        conservationResidual = m.books.conservationResidual
        policy = m.setup.policy.id
        split = m.setup.activeSplit.rawValue
        whPerRequest = s.whPerRequest
        carbonGramsPerRequest = s.carbonGramsPerRequest
        carbonKg = s.carbonKg
        batchProfile = m.books.batchProfile
        issues = m.books.issues
    }

    var text: String {
        func f(_ v: Double, _ digits: Int = 1) -> String { v.formatted(.number.precision(.fractionLength(digits)).grouping(.automatic)) }
        var lines = [
            "Measured run\(run.map { " \($0)" } ?? ""): \(start) to \(end) (\(f(seconds, 0)) s)",
            "Requests     \(requests.formatted()) (\(finishedRequests.formatted()) finished, \(inFlightRequests.formatted()) still running at the end)",
            "Telemetry    \(gpus) GPUs from \(powerFormat) (\(samples.formatted()) samples, energy from \(energyBasis.joined(separator: " and "))); engines " + engines.map { "[\($0.map(String.init).joined(separator: ","))]" }.joined(separator: " "),
            "Energy       GPUs \(f(gpuJoules / 3.6e6, 4)) kWh measured; facility \(f(facilityJoules / 3.6e6, 4)) kWh (host \(host), PUE applied)",
            "Per request  \(f(whPerRequest, 3)) Wh, \(f(carbonGramsPerRequest, 3)) gCO2e (finished requests) · carbon \(f(carbonKg, 4)) kgCO2e in all",
            "Accounting   active energy split by \(split), idle \(policy); requests + unattributed = measured energy to \(conservationResidual.formatted(.number.precision(.significantDigits(2)))) (relative)",
        ]
        if !batchProfile.isEmpty {
            lines.append("By batch     engine GPUs  requests on it  seconds  W per GPU  J per output token  inter-token ms")
            for b in batchProfile where b.seconds > 0 {
                lines.append("             " + String(b.engineGPUs).leftPad(11) + b.label.leftPad(16) + f(b.seconds, 0).leftPad(9) + f(b.gpuWattsPerGPU, 0).leftPad(11)
                    + (b.outputTokens > 0 ? f(b.joulesPerOutputToken, 2) : "–").leftPad(20) + (b.outputTokens > 0 ? f(b.interTokenLatencySeconds * 1000, 1) : "–").leftPad(16))
            }
        }
        if issues.isEmpty {
            lines.append("Issues       none")
        } else {
            let counts = Dictionary(grouping: issues, by: \.kind).map { "\($0.value.count) \($0.key.rawValue)" }.sorted()
            lines.append("Issues       \(counts.joined(separator: ", ")); first:")
            for issue in issues.prefix(8) { lines.append("  \(issue)") }
        }
        return lines.joined(separator: "\n")
    }
}

extension PowerFormat: ExpressibleByArgument {}
extension ActiveSplit: ExpressibleByArgument {}
extension RequestLogFormat: ExpressibleByArgument {}
