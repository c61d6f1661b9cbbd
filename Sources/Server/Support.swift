import Foundation
import Hummingbird
import Accounting
import Serving

/// A JSON body with Joule's encoding (sorted keys, no escaped slashes).
struct JSONBody<T: Encodable & Sendable>: ResponseGenerator {
    var value: T
    var status: HTTPResponse.Status = .ok

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        return Response(status: status, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// A text body (HTML, Prometheus exposition, YAML).
struct TextBody: ResponseGenerator {
    var text: String
    var contentType: String

    func response(from request: Request, context: some RequestContext) throws -> Response {
        Response(status: .ok, headers: [.contentType: contentType], body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

/// Query parameters read and checked; a bad one is a 400 naming it and what was expected.
struct Query {
    let request: Request

    func string(_ name: String) -> String? { request.uri.queryParameters.get(name) }

    func strings(_ name: String) -> [String] { request.uri.queryParameters[values: name[...]].map(String.init) }

    func double(_ name: String, minimum: Double? = nil) throws -> Double? {
        guard let text = string(name) else { return nil }
        guard let v = Double(text), v.isFinite, minimum.map({ v >= $0 }) ?? true else {
            throw HTTPError(.badRequest, message: "\(name): expected a number\(minimum.map { " ≥ \($0)" } ?? ""), got '\(text)'")
        }
        return v
    }

    func int(_ name: String, range: ClosedRange<Int>? = nil) throws -> Int? {
        guard let text = string(name) else { return nil }
        guard let v = Int(text), range.map({ $0.contains(v) }) ?? true else {
            throw HTTPError(.badRequest, message: "\(name): expected a whole number\(range.map { " from \($0.lowerBound) to \($0.upperBound)" } ?? ""), got '\(text)'")
        }
        return v
    }

    func time(_ name: String) throws -> Double? {
        guard let text = string(name) else { return nil }
        guard let t = WallClock.iso8601(text) else {
            throw HTTPError(.badRequest, message: "\(name): expected an ISO 8601 time such as 2025-02-27T04:00:00Z, got '\(text)'")
        }
        return t
    }

    func required<T>(_ name: String, _ value: T?) throws -> T {
        guard let value else { throw HTTPError(.badRequest, message: "\(name): required") }
        return value
    }
}

func iso(_ t: Double) -> String {
    WallClock.string(t)
}

/// The server's limits on a connection and on a request's work.
public enum ServerLimits {
    /// A connection with no request in progress is closed after this long: an idle keep-alive
    /// connection, or one whose request head has not arrived (a slow or silent client).
    public static let idleSeconds: Int64 = 30
    /// Work a ledger-heavy request may take before it is cancelled with a 503.
    public static let requestSeconds = 120.0
    /// Ledger-heavy requests that may run at once (one per core, at least two); one more is
    /// turned away at once with a 503 and `Retry-After`, rather than queued behind them.
    public static let heavyRequests = max(2, ProcessInfo.processInfo.activeProcessorCount)
}

/// Counts the ledger-heavy requests in progress, so that a burst of them cannot take every core.
actor WorkGate {
    let limit: Int
    private var running = 0

    init(limit: Int) { self.limit = limit }

    /// Takes a place if one is free.
    func enter() -> Bool {
        guard running < limit else { return false }
        running += 1
        return true
    }

    func leave() { running -= 1 }
}

extension JouleServer {
    /// Runs `work` in a task of its own, cancelled when the client closes the connection or after
    /// `seconds` (then a 503 naming the limit). The work checks for cancellation as it reads.
    /// At most `ServerLimits.heavyRequests` of these run at once; one more is a 503 with `Retry-After`.
    func bounded<T: Sendable>(
        _ request: Request, seconds: Double = ServerLimits.requestSeconds, _ work: @escaping @Sendable () throws -> T
    ) async throws -> T {
        guard await heavyWork.enter() else {
            throw HTTPError(
                .serviceUnavailable, headers: [.retryAfter: "5"],
                message: "busy: \(heavyWork.limit) ledger-heavy requests are in progress (the server's limit); retry shortly"
            )
        }
        // The place is given back when the work stops, not when the response leaves: cancelled
        // work still holds it until it reaches its next cancellation check.
        let gate = heavyWork
        let task = Task {
            let result = Result { try work() }
            await gate.leave()
            return try result.get()
        }
        let timer = Task {
            try await Task.sleep(for: .seconds(seconds))
            task.cancel()
        }
        defer { timer.cancel() }
        do {
            return try await request.body.consumeWithInboundCloseHandler { _ in
                try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
            } onInboundClosed: {
                task.cancel()
            }
        } catch is CancellationError {
            throw HTTPError(.serviceUnavailable, message: "cancelled: the request takes more than \(Int(seconds)) s of work (the server's limit), or the client left")
        }
    }
}
