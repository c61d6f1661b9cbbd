import Foundation
import Hummingbird
import Ledger
import Logging

/// Joule's HTTP server: the JSON API, the Carbon Aware SDK–compatible endpoints, the dashboard
/// and `/metrics`, over one ledger. Read endpoints are open (bind to loopback unless you mean
/// otherwise); write endpoints need `Authorization: Bearer <token>` and are refused when no
/// token is configured. The token is never logged.
public struct JouleServer: Sendable {
    public let ledger: any LedgerStore
    let token: String?
    public let metrics: LedgerMetrics
    let heavyWork: WorkGate
    /// Each run's report figures until its next commit (the dashboard's pages read them).
    let runFigures = RunFiguresCache()
    /// Where OTLP spans posted to `/v1/traces` are kept, when receiving is on.
    let spool: SpanSpool?

    public init(ledger: any LedgerStore, token: String?, heavyRequests: Int = ServerLimits.heavyRequests, spool: SpanSpool? = nil) {
        self.ledger = ledger
        self.spool = spool
        heavyWork = WorkGate(limit: max(1, heavyRequests))
        self.token = token?.isEmpty == true ? nil : token
        metrics = LedgerMetrics(ledger: ledger)
    }

    func authorize(_ request: Request) throws {
        guard let token else {
            throw HTTPError(.forbidden, message: "write endpoints are off: start the server with a token (JOULE_API_TOKEN)")
        }
        guard let header = request.headers[.authorization], header == "Bearer \(token)" else {
            throw HTTPError(.unauthorized, headers: [.wwwAuthenticate: "Bearer"], message: "expected Authorization: Bearer <token>")
        }
    }

    public func router() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: ReadableErrors())
        addAPIRoutes(to: router)
        addCarbonAwareRoutes(to: router)
        addDashboardRoutes(to: router)
        addOTLPRoutes(to: router)
        let metrics = self.metrics
        router.get("metrics") { _, _ in
            TextBody(text: try metrics.scrape(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        }
        return router
    }

    /// The server as a service on `host:port` (port 0: an ephemeral one, reported through `onRunning`).
    public func application(
        host: String, port: Int, idleSeconds: Int64 = ServerLimits.idleSeconds, logger: Logger,
        onRunning: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> some ApplicationProtocol {
        Application(
            router: router(),
            // Idle connections, and clients whose request head has not arrived, are closed.
            server: .http1(configuration: .init(idleTimeout: .seconds(idleSeconds))),
            configuration: .init(address: .hostname(host, port: port), serverName: "joule"),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) }, logger: logger
        )
    }
}

/// A failure that is not already an HTTP answer (a ledger row edited outside Joule that no longer
/// reads, a database error) becomes a 500 whose body says what failed, rather than an empty one.
struct ReadableErrors: RouterMiddleware {
    typealias Context = BasicRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as any HTTPResponseError {
            throw error
        } catch is CancellationError {
            throw HTTPError(.serviceUnavailable, message: "cancelled")
        } catch {
            throw HTTPError(.internalServerError, message: "\(error)")
        }
    }
}
