import Accounting
import Foundation

/// One request as an engine logged it. Times are seconds since 1970 (UTC).
public struct MeasuredRequest: Hashable, Sendable {
    public var id: String
    public var arrival: Double
    /// When the engine scheduled it (arrival plus queue time), when the log says.
    public var scheduled: Double?
    public var firstToken: Double?
    public var finish: Double?
    public var promptTokens: Int?
    public var cachedTokens: Int?
    public var outputTokens: Int?
    /// The GPUs it ran on; empty when the log does not say (the engine's GPUs are then given).
    public var gpus: [Int]
    /// The engine instance that served it, when the log names one.
    public var engine: String?
    /// Where it was read: line (CSV) or span number (OTLP), from 1.
    public var line: Int

    public init(
        id: String, arrival: Double, scheduled: Double? = nil, firstToken: Double?, finish: Double?, promptTokens: Int?, cachedTokens: Int?,
        outputTokens: Int?, gpus: [Int], engine: String? = nil, line: Int
    ) {
        self.id = id
        self.arrival = arrival
        self.scheduled = scheduled
        self.firstToken = firstToken
        self.finish = finish
        self.promptTokens = promptTokens
        self.cachedTokens = cachedTokens
        self.outputTokens = outputTokens
        self.gpus = gpus
        self.engine = engine
        self.line = line
    }

    /// What its spans lack, if anything.
    public var missing: [String] {
        var m: [String] = []
        if firstToken == nil { m.append("first token") }
        if finish == nil { m.append("finish") }
        if promptTokens == nil { m.append("prompt tokens") }
        if outputTokens == nil { m.append("output tokens") }
        return m
    }
}

/// Requests read from a log, in arrival order, and what the reader noticed.
public struct RequestLog: Sendable {
    public var format: String
    public var origin: String
    public var requests: [MeasuredRequest]
    public var issues: [MeasuredIssue]

    public init(format: String, origin: String, requests: [MeasuredRequest], issues: [MeasuredIssue]) {
        self.format = format
        self.origin = origin
        self.requests = requests.sorted { ($0.arrival, $0.id) < ($1.arrival, $1.id) }
        self.issues = issues
    }

    /// Checks one request's times and counts; throws naming the line and field.
    static func check(_ r: MeasuredRequest, file: String) throws {
        func fail(_ field: String, _ message: String) -> MeasuredInputError { MeasuredInputError(file: file, line: r.line, field: field, message) }
        if let s = r.scheduled, s < r.arrival { throw fail("queue", "expected a start at or after arrival, got \(format1(s - r.arrival)) s before it") }
        if let f = r.firstToken, f < (r.scheduled ?? r.arrival) {
            let base = r.scheduled ?? r.arrival
            throw fail("first_token", "expected a first token at or after \(r.scheduled == nil ? "arrival" : "scheduling"), got one \(format1(base - f)) s before it")
        }
        if let e = r.finish, e < (r.firstToken ?? r.scheduled ?? r.arrival) { throw fail("finish", "expected a finish at or after the first token") }
        for (field, v) in [("prompt_tokens", r.promptTokens), ("cached_tokens", r.cachedTokens), ("output_tokens", r.outputTokens)] {
            if let v, !(0...10_000_000).contains(v) { throw fail(field, "expected 0 to 10000000 tokens, got \(v)") }
        }
        if let c = r.cachedTokens, let p = r.promptTokens, c > p { throw fail("cached_tokens", "expected at most prompt_tokens (\(p)), got \(c)") }
    }

    static func missingIssues(_ requests: [MeasuredRequest]) -> [MeasuredIssue] {
        requests.compactMap { r in
            r.missing.isEmpty ? nil : MeasuredIssue(.missingSpan, subject: r.id, "line \(r.line): no \(r.missing.joined(separator: ", "))\(r.finish == nil ? "; counted as running to the end of the telemetry" : "")")
        }
    }
}

/// The plain CSV request log any engine can write:
/// `request_id,arrival,first_token,finish,prompt_tokens,cached_tokens,output_tokens,gpus`, times
/// ISO 8601 in UTC, `gpus` the GPU indices it ran on separated by `;`. Columns may come in any
/// order and others are ignored; `first_token`, `finish`, the counts and `gpus` may be empty
/// (reported as missing spans). Optional columns Joule's span spool adds: `scheduled` (when the
/// engine took the request, ISO 8601) and `engine`.
public enum RequestCSVReader {
    public static let columns = ["request_id", "arrival", "first_token", "finish", "prompt_tokens", "cached_tokens", "output_tokens", "gpus"]

    public static func read(_ text: String, file: String, skipBadLines: Bool = false) throws -> RequestLog {
        var requests: [MeasuredRequest] = []
        var issues: [MeasuredIssue] = []
        var seen: [String: Int] = [:]
        try MeasuredCSV.read(
            text, file: file, skipBadLines: skipBadLines, issues: &issues, emptyMessage: "empty: expected the header \(columns.joined(separator: ","))",
            header: { names, _ in
                let absent = columns.filter { names[$0] == nil }
                return absent.isEmpty ? nil : "expected the columns \(columns.joined(separator: ",")); missing \(absent.joined(separator: ", "))"
            }
        ) { row in
            func time(_ name: String, required: Bool) throws -> Double? {
                let s = row[name]
                if s.isEmpty && !required { return nil }
                guard let t = WallClock.iso8601(s), t > 0, t < 7.3e9 else {
                    throw row.error(name, "expected an ISO 8601 UTC time such as 2025-06-01T12:00:00.250Z, got '\(s)'")
                }
                return t
            }
            func count(_ name: String) throws -> Int? {
                let s = row[name]
                if s.isEmpty { return nil }
                guard let v = Int(s) else { throw row.error(name, "expected a whole number of tokens, got '\(s)'") }
                return v
            }
            let id = row["request_id"]
            guard !id.isEmpty else { throw row.error("request_id", "expected a request id") }
            if let first = seen[id] { throw row.error("request_id", "'\(id)' is also on line \(first)") }
            let r = MeasuredRequest(
                id: id, arrival: try time("arrival", required: true)!,
                scheduled: row.optional("scheduled") != nil ? try time("scheduled", required: false) : nil,
                firstToken: try time("first_token", required: false),
                finish: try time("finish", required: false), promptTokens: try count("prompt_tokens"), cachedTokens: try count("cached_tokens"),
                outputTokens: try count("output_tokens"), gpus: try parseGPUs(row["gpus"], file: file, line: row.line, field: "gpus"),
                engine: row.optional("engine").flatMap { $0.isEmpty ? nil : $0 }, line: row.line
            )
            try RequestLog.check(r, file: file)
            seen[id] = row.line
            requests.append(r)
        }
        return RequestLog(format: "csv", origin: file, requests: requests, issues: issues + RequestLog.missingIssues(requests))
    }

    /// `0;1;2;3` (also `0-3` ranges); empty is none.
    public static func parseGPUs(_ text: String, file: String, line: Int?, field: String) throws -> [Int] {
        var out: [Int] = []
        for part in text.split(separator: ";", omittingEmptySubsequences: true).map({ $0.trimmingCharacters(in: .whitespaces) }) {
            let bounds = part.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).map { Int($0) }
            guard (1...2).contains(bounds.count), let lo = bounds.first ?? nil, let hi = bounds.last ?? nil, lo >= 0, hi <= 4095, lo <= hi else {
                throw MeasuredInputError(file: file, line: line, field: field, "expected GPU indices 0 to 4095 separated by ';' (such as 0;1;2;3 or 0-7), got '\(text)'")
            }
            out += Array(lo...hi)
        }
        return Array(Set(out)).sorted()
    }
}
