import ArgumentParser
import Foundation
import Hummingbird
import Ledger
import Logging
import Server

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the ledger over HTTP: the JSON API and the Carbon Aware SDK–compatible endpoints.",
        discussion: """
        Binds 127.0.0.1 unless --host says otherwise. Read endpoints are open; write endpoints \
        (POST /api/schedule, POST /v1/traces) need `Authorization: Bearer $JOULE_API_TOKEN`, and are \
        off when that variable is unset. The API is described in docs/openapi.yaml.

        With --spans-out FILE the server receives vLLM's request spans over OTLP/HTTP \
        (POST /v1/traces, OTLP/JSON or protobuf) and appends each request to FILE as the plain CSV \
        request log, which `joule measure --requests` reads (or fetches from GET /v1/requests.csv). \
        See docs/measured.md.

        Examples:
          joule serve --db joule.sqlite --port 8080
          curl 'http://127.0.0.1:8080/api/runs'
          curl 'http://127.0.0.1:8080/emissions/forecasts/current?location=GB&windowSize=120'
          JOULE_API_TOKEN=… joule serve --db joule.sqlite
          JOULE_API_TOKEN=… joule serve --db joule.sqlite --host 0.0.0.0 --spans-out spans.csv
        """
    )

    @OptionGroup var ledger: LedgerOptions
    @Option(help: "Address to bind.") var host = "127.0.0.1"
    @Option(help: "Port (0: any free one, printed at start).") var port = 8080
    @Option(name: .customLong("idle-timeout"), help: "Seconds before a connection with no request in progress (or whose request head has not arrived) is closed, 1 to 3600.")
    var idleTimeout: Int64 = ServerLimits.idleSeconds
    @Option(name: .customLong("spans-out"), help: ArgumentHelp("Receive OTLP request spans on POST /v1/traces and append them to this CSV request log.", valueName: "file"))
    var spansOut: String?

    func validate() throws {
        guard (1...3600).contains(idleTimeout) else { throw ValidationError("--idle-timeout: expected 1 to 3600 seconds, got \(idleTimeout)") }
    }

    func run() async throws {
        guard (0...65535).contains(port) else { throw CLIError(message: "--port: expected 0 to 65535, got \(port)") }
        let l = try failing { try ledger.open(mustExist: true) }
        var logger = Logger(label: "joule.serve")
        logger.logLevel = .info
        let spool: SpanSpool?
        do {
            spool = try spansOut.map { try SpanSpool(path: $0) }
        } catch {
            throw CLIError(message: "\(error)")
        }
        let server = JouleServer(ledger: l, token: ProcessInfo.processInfo.environment["JOULE_API_TOKEN"], spool: spool)
        let app = server.application(host: host, port: port, idleSeconds: idleTimeout, logger: logger) { bound in
            FileHandle.standardOutput.write(Data("serving \(l.location) on http://\(host):\(bound)\n".utf8))
        }
        do {
            try await app.runService()
        } catch {
            throw CLIError(message: bindFailure(error, host: host, port: port) ?? "\(error)")
        }
    }
}

/// A listening socket that could not be opened, said plainly (the address, why, what to do); nil
/// for any other error.
func bindFailure(_ error: any Error, host: String, port: Int) -> String? {
    let text = "\(error)"
    if text.contains("Address already in use") || text.contains("errno: 98") {
        return "--port: \(host):\(port) is already in use (another `joule serve` or daemon?); choose another port, or --port 0 for any free one"
    }
    if text.contains("Cannot assign requested address") || text.contains("errno: 99") {
        return "--host: cannot listen on \(host): no such address on this machine"
    }
    if text.contains("Permission denied") || text.contains("errno: 13") {
        return "--port: listening on \(host):\(port) is not permitted (ports below 1024 need privileges); choose a port from 1024 up"
    }
    return nil
}
