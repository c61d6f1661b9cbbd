import ArgumentParser
import Catalog
import Daemon
import Foundation
import Hummingbird
import Ledger
import Logging
import Server
import ServiceLifecycle

struct DaemonCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Run scenarios continuously into the ledger: the measurement daemon.",
        discussion: """
        Runs each job of the configuration (default: DeepSeek's serving day, paced in real time \
        from now) through the serving simulator and writes every request's record, every unit's \
        energy per interval and an audit-chain entry into the ledger, committing at least once a \
        second. SIGINT or SIGTERM stops it gracefully: the batch in hand is committed and the run \
        is marked stopped. Started again, it resumes the newest stopped or interrupted run of the \
        same job (it replays the stored part without writing it), so no request is stored twice or \
        lost. A realtime job keeps the ledger growing with DeepSeek's published volume \
        (about 2,000 requests a second, some 2 GB an hour).

        Configuration (YAML; every key optional):
          database: joule.sqlite          # --db overrides
          commitSeconds: 1                # at most 1
          maxDatabaseMB: 2048             # a size limit: the daemon stops cleanly when it is reached
          progressSeconds: 10
          log: {level: info, format: text}   # or json
          carbon: {refreshSeconds: 300, source: scenario}   # or ledger
          jobs:
            - scenario: deepseek-v3-day   # a name in Data/scenarios, or a path
              pacing: realtime            # realtime, max, or 60x / {accelerated: 60}
              start: now                  # now, scenario, or an ISO 8601 time
              duration: 3600              # simulated seconds (default: until stopped)
              seed: 1
              intervalSeconds: 1          # accounting interval (realtime default 1 s)
              resume: true
            - name: node-a                # a measured job: a real fleet, window by window
              measure:
                power: http://node-a:9400/metrics   # a DCGM exporter (scraped), or a telemetry file
                requests: spans.csv       # a request log file or URL (server.spansOut below fills one)
                grid: DE                  # and site, hardware, hostPower, engineGPUs, policy
                windowSeconds: 300        # each window becomes a measured run…
                settleSeconds: 60         # …recorded this long after it ends
          server: {port: 8080, spansOut: spans.csv}   # OTLP spans on POST /v1/traces (docs/measured.md)

        Examples:
          joule daemon
          joule daemon --config Data/daemon/example.yaml
          joule daemon --db /var/lib/joule/ledger.sqlite --log-format json
        """
    )

    @OptionGroup var data: DataOptions
    @Option(help: "The daemon's configuration file (YAML).") var config: String?
    @Option(help: "The ledger: an SQLite file or a postgres:// URL (default: $JOULE_DB, else the configuration's, else ./joule.sqlite).") var db: String?
    @Option(name: .customLong("log-format"), help: "text or json (default: the configuration's, else text).") var logFormat: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning or error.") var logLevel: String?

    func run() async throws {
        let (daemon, logger) = try failing {
            var configuration = try config.map { try DaemonConfiguration.load(at: $0) } ?? DaemonConfiguration()
            if let db = db ?? ProcessInfo.processInfo.environment["JOULE_DB"].flatMap({ $0.isEmpty ? nil : $0 }) { configuration.database = db }
            if let logFormat {
                guard ["text", "json"].contains(logFormat) else { throw CLIError(message: "--log-format: expected text or json, got '\(logFormat)'") }
                configuration.logFormat = logFormat
            }
            if let logLevel {
                guard DaemonConfiguration.logLevels.contains(logLevel) else {
                    throw CLIError(message: "--log-level: expected one of \(DaemonConfiguration.logLevels.joined(separator: ", ")), got '\(logLevel)'")
                }
                configuration.logLevel = logLevel
            }
            let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
            let json = configuration.logFormat == "json"
            LoggingSystem.bootstrap { label in
                var handler: any LogHandler = json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
            let logger = Logger(label: "joule.daemon")
            let (library, directory) = try Composition.library(data)
            return (try Daemon(configuration: configuration, library: library, dataDirectory: directory, logger: logger), logger)
        }
        // The daemon serves the ledger when its configuration says so; the server is composed here,
        // so the Daemon module does not depend on the Server module.
        let spool: SpanSpool?
        do {
            spool = try daemon.server?.spansOut.map { try SpanSpool(path: $0) }
        } catch {
            throw CLIError(message: "server.spansOut: \(error)")
        }
        let serving = daemon.server.map { server in
            JouleServer(ledger: daemon.ledger, token: ProcessInfo.processInfo.environment["JOULE_API_TOKEN"], spool: spool)
                .application(host: server.host, port: server.port, logger: logger) { port in
                    logger.info("serving the API, dashboard and /metrics", metadata: ["url": "http://\(server.host):\(port)"])
                }
        }
        do {
            try await daemon.run(serving: serving)
        } catch {
            let message = daemon.server.flatMap { bindFailure(error, host: $0.host, port: $0.port) }
                .map { $0.replacingOccurrences(of: "--port: ", with: "server.port: ").replacingOccurrences(of: "--host: ", with: "server.host: ") } ?? "\(error)"
            logger.error("daemon stopped by an error", metadata: ["error": "\(message)"])
            throw CLIError(message: message)
        }
    }
}
