import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// How a live fetch waits and retries.
public struct RetryPolicy: Sendable, Hashable {
    /// Attempts in all, the first included.
    public var attempts: Int
    /// The wait before the second attempt; it doubles each time, up to `maximumDelay`.
    public var initialDelay: Double
    public var maximumDelay: Double
    /// Seconds one request may take before it counts as failed (whole seconds, at least 1:
    /// libcurl, under URLSession on Linux, counts no finer).
    public var timeout: Double

    public init(attempts: Int = 4, initialDelay: Double = 1, maximumDelay: Double = 30, timeout: Double = 20) {
        self.attempts = attempts
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.timeout = max(1, timeout.rounded(.up))
    }

    /// The wait before attempt `n + 1` (n from 1), or the server's `Retry-After` when it gives one
    /// (never longer than `maximumDelay`).
    public func delay(afterAttempt n: Int, retryAfter: Double?) -> Double {
        if let retryAfter, retryAfter >= 0 { return min(retryAfter, maximumDelay) }
        return min(initialDelay * pow(2, Double(n - 1)), maximumDelay)
    }
}

/// Why a live source gave no data. Messages name the URL without its query's secrets; keys and
/// tokens travel in headers and are never printed.
public enum LiveSourceError: Error, CustomStringConvertible, Sendable {
    case missingCredential(source: String, variables: [String])
    /// The server answered with an error status that retrying will not fix (400, 401, 403, 404…).
    case rejected(url: String, status: Int, body: String)
    /// Every attempt failed with 429, 5xx, a timeout or a broken connection.
    case exhausted(url: String, attempts: Int, last: String)
    /// The answer is not the source's format, or is partial: nothing was stored.
    case malformed(url: String, reason: String)

    public var description: String {
        switch self {
        case .missingCredential(let source, let variables):
            return "\(source) needs credentials in the environment: set \(variables.joined(separator: " and ")) (they are never read from flags or written to logs)"
        case .rejected(let url, let status, let body):
            let hint = status == 401 || status == 403 ? " (check the credentials in the environment)" : ""
            return "\(url): HTTP \(status)\(hint)\(body.isEmpty ? "" : ": \(body)")"
        case .exhausted(let url, let attempts, let last):
            return "\(url): no answer after \(attempts) attempt(s); last: \(last)"
        case .malformed(let url, let reason):
            return "\(url): \(reason); nothing was stored"
        }
    }
}

/// GETs over Foundation's URLSession (libcurl on Linux), with a timeout per attempt and retries
/// with exponential backoff on 429, 5xx and transport errors.
public struct HTTPFetcher: Sendable {
    public var policy: RetryPolicy
    /// Waits between attempts (replaceable so tests do not sleep for real).
    public var sleep: @Sendable (Double) async throws -> Void
    /// Called before each retry, for progress lines.
    public var onRetry: @Sendable (_ attempt: Int, _ delay: Double, _ reason: String) -> Void

    public init(
        policy: RetryPolicy = RetryPolicy(),
        sleep: @escaping @Sendable (Double) async throws -> Void = { try await Task.sleep(for: .seconds($0)) },
        onRetry: @escaping @Sendable (Int, Double, String) -> Void = { _, _, _ in }
    ) {
        self.policy = policy
        self.sleep = sleep
        self.onRetry = onRetry
    }

    /// The URL as it may be shown: scheme, host, port and path (no query, no user info).
    public static func shown(_ url: URL) -> String {
        var c = URLComponents(url: url, resolvingAgainstBaseURL: false)
        c?.query = nil
        c?.user = nil
        c?.password = nil
        return c?.string ?? url.path
    }

    /// The body of a 2xx answer to GET `url`.
    public func get(_ url: URL, headers: [String: String] = [:]) async throws -> Data {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = policy.timeout
        configuration.timeoutIntervalForResource = policy.timeout
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        let session = URLSession(configuration: configuration)
        defer { session.finishTasksAndInvalidate() }
        var request = URLRequest(url: url, timeoutInterval: policy.timeout)
        request.httpMethod = "GET"
        request.setValue("application/json", forHTTPHeaderField: "Accept")
        request.setValue("joule", forHTTPHeaderField: "User-Agent")
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        var last = ""
        for attempt in 1...max(1, policy.attempts) {
            var retryAfter: Double? = nil
            do {
                let (data, response) = try await session.data(for: request)
                guard let http = response as? HTTPURLResponse else { throw LiveSourceError.malformed(url: Self.shown(url), reason: "not an HTTP response") }
                if (200..<300).contains(http.statusCode) { return data }
                let body = String(decoding: data.prefix(200), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                guard http.statusCode == 429 || http.statusCode >= 500 else {
                    throw LiveSourceError.rejected(url: Self.shown(url), status: http.statusCode, body: body)
                }
                last = "HTTP \(http.statusCode)"
                retryAfter = (http.value(forHTTPHeaderField: "Retry-After")).flatMap(Double.init)
            } catch let error as LiveSourceError {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                last = (error as? URLError).map { "\($0.code == .timedOut ? "timed out after \(policy.timeout.formatted()) s" : "connection error \($0.code.rawValue)")" }
                    ?? "\(error)"
            }
            if attempt < policy.attempts {
                let wait = policy.delay(afterAttempt: attempt, retryAfter: retryAfter)
                onRetry(attempt, wait, last)
                try await sleep(wait)
            }
        }
        throw LiveSourceError.exhausted(url: Self.shown(url), attempts: policy.attempts, last: last)
    }
}
