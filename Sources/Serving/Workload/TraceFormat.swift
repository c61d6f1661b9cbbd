import Accounting
import Foundation

/// The request-trace layouts Joule reads.
public enum TraceFormat: String, CaseIterable, Codable, Hashable, Sendable {
    /// Azure LLM inference 2023 CSV: `TIMESTAMP,ContextTokens,GeneratedTokens`, wall-clock times (read as UTC).
    case azure
    /// Mooncake FAST'25 JSON Lines: `timestamp` (ms), `input_length`, `output_length`, `hash_ids` (512-token prefix blocks).
    case mooncake
    /// Joule's CSV: `arrivalSeconds,promptTokens,outputTokens[,cachedTokens]` (header required, any column order).
    case jouleCSV = "joule-csv"
    /// Joule's JSON Lines: `{"arrivalSeconds":…,"promptTokens":…,"outputTokens":…,"cachedTokens":…}` (`cachedTokens` optional).
    case jouleJSONL = "joule-jsonl"
    /// A measured request log (`joule measure --requests`): the CSV
    /// `request_id,arrival,first_token,finish,prompt_tokens,cached_tokens,output_tokens,gpus`, replayed
    /// at its wall-clock arrivals (read by `Catalog.loadTrace`).
    case requestLog = "request-log"
    /// vLLM's OpenTelemetry request spans as OTLP/JSON, replayed at their arrivals (read by `Catalog.loadTrace`).
    case otlp

    /// The format a file name suggests, if any.
    public static func guess(fromFileName name: String) -> TraceFormat? {
        let lower = name.lowercased()
        if lower.contains("mooncake") { return .mooncake }
        if lower.contains("azure") { return .azure }
        if lower.hasSuffix(".jsonl") { return .jouleJSONL }
        if lower.hasSuffix(".csv") { return .jouleCSV }
        return nil
    }
}

/// A trace line that could not be read.
public struct TraceError: Error, Hashable, CustomStringConvertible {
    /// The file, as the user named it.
    public var file: String
    /// 1-based line number.
    public var line: Int
    /// The field (column or key) at fault.
    public var field: String
    /// What was wrong and what was expected.
    public var message: String

    /// Whether the error is about the trace as a whole (its span), so skipping lines cannot help.
    public var wholeTrace: Bool

    /// Creates the error.
    public init(file: String, line: Int, field: String, message: String, wholeTrace: Bool = false) {
        self.file = file
        self.line = line
        self.field = field
        self.message = message
        self.wholeTrace = wholeTrace
    }

    public var description: String {
        "\(file):\(line): field '\(field)': \(message)" + (line > 1 && field != "(file)" && !wholeTrace ? " (pass --skip-bad-lines to count and skip such lines)" : "")
    }
}

/// One parsed trace row before scaling: arrival in seconds (absolute for wall-clock formats), lengths,
/// and either a cached-token count or prefix-block hashes.
/// What a trace row may hold: Joule simulates requests of up to ten million tokens each, over a
/// trace at most a year long (a longer span is a typo in a timestamp, and would keep the simulator
/// closing empty intervals for ages).
public enum TraceLimits {
    public static let tokens = 10_000_000
    public static let spanSeconds = 366.0 * 86_400
}

public struct TraceRow: Hashable, Sendable {
    public var arrival: Double
    public var promptTokens: Int
    public var outputTokens: Int
    public var cachedTokens: Int?
    public var blockHashes: [Int]?
    public var line: Int

    public init(arrival: Double, promptTokens: Int, outputTokens: Int, cachedTokens: Int?, blockHashes: [Int]?, line: Int) {
        self.arrival = arrival
        self.promptTokens = promptTokens
        self.outputTokens = outputTokens
        self.cachedTokens = cachedTokens
        self.blockHashes = blockHashes
        self.line = line
    }
}

/// A parsed trace: its rows, how many lines were skipped, and when it starts (for wall-clock formats).
public struct ParsedTrace: Sendable {
    /// The rows, in file order.
    public var rows: [TraceRow]
    /// Lines skipped as malformed (only with `skipBadLines`).
    public var skippedLines: Int
    /// For wall-clock formats, the first arrival as seconds since the Unix epoch.
    public var startEpochSeconds: Double?
    /// The first few skipped-line errors, for a warning.
    public var skippedExamples: [TraceError]

    public init(rows: [TraceRow], skippedLines: Int, startEpochSeconds: Double?, skippedExamples: [TraceError]) {
        self.rows = rows
        self.skippedLines = skippedLines
        self.startEpochSeconds = startEpochSeconds
        self.skippedExamples = skippedExamples
    }
}

/// Parses trace text. Pure: the caller reads the file.
public enum TraceParser {
    /// Parses `text` (the contents of `file`) in `format`. Throws the first malformed line's
    /// `TraceError` unless `skipBadLines`, in which case such lines are counted and skipped.
    public static func parse(_ text: String, file: String, format: TraceFormat, skipBadLines: Bool = false) throws -> ParsedTrace {
        var rows: [TraceRow] = []
        var skipped = 0
        var examples: [TraceError] = []
        var header: [String: Int] = [:]
        var lineNumber = 0
        var sawHeader = false
        // "\r\n" is one Character in Swift, so split on any newline rather than on "\n".
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            do {
                switch format {
                case .azure, .jouleCSV:
                    let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
                    if !sawHeader {
                        sawHeader = true
                        header = try csvHeader(fields, file: file, format: format)
                        continue
                    }
                    rows.append(try csvRow(fields, header: header, file: file, line: lineNumber, format: format))
                case .mooncake, .jouleJSONL:
                    rows.append(try jsonRow(String(line), file: file, line: lineNumber, format: format))
                case .requestLog, .otlp:
                    // Measured logs are read by their own readers (Catalog.loadTrace), not line by line here.
                    throw TraceError(file: file, line: 1, field: "(format)", message: "\(format.rawValue) logs are read with Catalog.loadTrace", wholeTrace: true)
                }
            } catch let error as TraceError {
                if !skipBadLines || error.line == 1 && (format == .azure || format == .jouleCSV) { throw error }
                skipped += 1
                if examples.count < 3 { examples.append(error) }
            }
        }
        if let first = rows.min(by: { $0.arrival < $1.arrival }), let last = rows.max(by: { $0.arrival < $1.arrival }),
           last.arrival - first.arrival > TraceLimits.spanSeconds {
            throw TraceError(
                file: file, line: last.line, field: format == .azure ? "TIMESTAMP" : format == .mooncake ? "timestamp" : "arrivalSeconds",
                message: "arrives \(String(format: "%.3g", (last.arrival - first.arrival) / 86_400)) days after line \(first.line); a trace may span at most 366 days",
                wholeTrace: true
            )
        }
        guard !rows.isEmpty else {
            throw TraceError(
                file: file, line: lineNumber, field: "(file)",
                message: skipped > 0 ? "every one of its \(skipped) request lines was malformed and skipped" : "no requests in the trace"
            )
        }
        let start = format == .azure ? rows.map(\.arrival).min() : nil
        return ParsedTrace(rows: rows, skippedLines: skipped, startEpochSeconds: start, skippedExamples: examples)
    }

    private static func csvHeader(_ fields: [String], file: String, format: TraceFormat) throws -> [String: Int] {
        var index: [String: Int] = [:]
        for (i, f) in fields.enumerated() { index[f] = i }
        let required = format == .azure
            ? ["TIMESTAMP", "ContextTokens", "GeneratedTokens"]
            : ["arrivalSeconds", "promptTokens", "outputTokens"]
        for name in required where index[name] == nil {
            throw TraceError(
                file: file, line: 1, field: name,
                message: "missing from the header; expected columns \(required.joined(separator: ","))\(format == .jouleCSV ? "[,cachedTokens]" : "")"
            )
        }
        return index
    }

    private static func csvRow(_ fields: [String], header: [String: Int], file: String, line: Int, format: TraceFormat) throws -> TraceRow {
        func field(_ name: String) throws -> String {
            guard let i = header[name], i < fields.count else {
                throw TraceError(file: file, line: line, field: name, message: "missing: the line has \(fields.count) columns, the header \(header.count)")
            }
            return fields[i]
        }
        func count(_ name: String, minimum: Int) throws -> Int {
            let text = try field(name)
            guard let n = Int(text), n >= minimum, n <= TraceLimits.tokens else {
                throw TraceError(
                    file: file, line: line, field: name, message: "expected a whole number from \(minimum) to \(TraceLimits.tokens), got '\(text)'"
                )
            }
            return n
        }
        if format == .azure {
            let stamp = try field("TIMESTAMP")
            guard let epoch = WallClock.epochSeconds(stamp) else {
                throw TraceError(file: file, line: line, field: "TIMESTAMP", message: "expected a time like 2023-11-16 18:15:46.6805900, got '\(stamp)'")
            }
            return TraceRow(
                arrival: epoch, promptTokens: try count("ContextTokens", minimum: 1),
                outputTokens: try count("GeneratedTokens", minimum: 1), cachedTokens: nil, blockHashes: nil, line: line
            )
        }
        let arrivalText = try field("arrivalSeconds")
        guard let arrival = Double(arrivalText), arrival.isFinite, arrival >= 0 else {
            throw TraceError(file: file, line: line, field: "arrivalSeconds", message: "expected a number of seconds ≥ 0, got '\(arrivalText)'")
        }
        let prompt = try count("promptTokens", minimum: 1)
        var cached: Int?
        if header["cachedTokens"] != nil {
            let c = try count("cachedTokens", minimum: 0)
            guard c < prompt else {
                throw TraceError(file: file, line: line, field: "cachedTokens", message: "expected fewer than promptTokens (\(prompt)), got \(c)")
            }
            cached = c
        }
        return TraceRow(arrival: arrival, promptTokens: prompt, outputTokens: try count("outputTokens", minimum: 1), cachedTokens: cached, blockHashes: nil, line: line)
    }

    private static func jsonRow(_ text: String, file: String, line: Int, format: TraceFormat) throws -> TraceRow {
        let object: [String: Any]
        do {
            guard let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                throw TraceError(file: file, line: line, field: "(line)", message: "expected a JSON object")
            }
            object = parsed
        } catch let error as TraceError {
            throw error
        } catch {
            throw TraceError(file: file, line: line, field: "(line)", message: "not valid JSON")
        }
        func number(_ key: String, minimum: Double) throws -> Double {
            guard let value = object[key] else { throw TraceError(file: file, line: line, field: key, message: "missing") }
            guard let n = value as? NSNumber, !isJSONBoolean(value), n.doubleValue.isFinite, n.doubleValue >= minimum else {
                throw TraceError(file: file, line: line, field: key, message: "expected a number ≥ \(Int(minimum)), got \(value)")
            }
            return n.doubleValue
        }
        func count(_ key: String, minimum: Int) throws -> Int {
            let d = try number(key, minimum: Double(minimum))
            guard d == d.rounded(), d <= Double(TraceLimits.tokens), let n = Int(exactly: d) else {
                throw TraceError(file: file, line: line, field: key, message: "expected a whole number from \(minimum) to \(TraceLimits.tokens), got \(d)")
            }
            return n
        }
        if format == .mooncake {
            let stamp = try number("timestamp", minimum: 0)
            let prompt = try count("input_length", minimum: 1)
            let output = try count("output_length", minimum: 1)
            var hashes: [Int] = []
            if let raw = object["hash_ids"] {
                guard let list = raw as? [Any] else { throw TraceError(file: file, line: line, field: "hash_ids", message: "expected a list of block ids") }
                for item in list {
                    guard let n = item as? NSNumber, !isJSONBoolean(item), let id = Int(exactly: n.doubleValue) else {
                        throw TraceError(file: file, line: line, field: "hash_ids", message: "expected whole-number block ids, got \(item)")
                    }
                    hashes.append(id)
                }
            }
            return TraceRow(arrival: stamp / 1000, promptTokens: prompt, outputTokens: output, cachedTokens: nil, blockHashes: hashes, line: line)
        }
        let prompt = try count("promptTokens", minimum: 1)
        var cached: Int?
        if object["cachedTokens"] != nil {
            let c = try count("cachedTokens", minimum: 0)
            guard c < prompt else { throw TraceError(file: file, line: line, field: "cachedTokens", message: "expected fewer than promptTokens (\(prompt)), got \(c)") }
            cached = c
        }
        return TraceRow(
            arrival: try number("arrivalSeconds", minimum: 0), promptTokens: prompt,
            outputTokens: try count("outputTokens", minimum: 1), cachedTokens: cached, blockHashes: nil, line: line
        )
    }
}

/// Whether a value from `JSONSerialization` is `true` or `false` (on Linux, 0 and 1 also cast to `Bool`).
private func isJSONBoolean(_ value: Any) -> Bool {
    type(of: value) == Bool.self || String(describing: type(of: value)).contains("Boolean")
}
