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

    /// Creates the error.
    public init(file: String, line: Int, field: String, message: String) {
        self.file = file
        self.line = line
        self.field = field
        self.message = message
    }

    public var description: String {
        "\(file):\(line): field '\(field)': \(message)" + (line > 1 ? " (pass --skip-bad-lines to count and skip such lines)" : "")
    }
}

/// One parsed trace row before scaling: arrival in seconds (absolute for wall-clock formats), lengths,
/// and either a cached-token count or prefix-block hashes.
public struct TraceRow: Hashable, Sendable {
    public var arrival: Double
    public var promptTokens: Int
    public var outputTokens: Int
    public var cachedTokens: Int?
    public var blockHashes: [Int]?
    public var line: Int
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
                }
            } catch let error as TraceError {
                if !skipBadLines || error.line == 1 && (format == .azure || format == .jouleCSV) { throw error }
                skipped += 1
                if examples.count < 3 { examples.append(error) }
            }
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
            guard let n = Int(text), n >= minimum else {
                throw TraceError(file: file, line: line, field: name, message: "expected a whole number ≥ \(minimum), got '\(text)'")
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
            guard d == d.rounded() else { throw TraceError(file: file, line: line, field: key, message: "expected a whole number, got \(d)") }
            return Int(d)
        }
        if format == .mooncake {
            let stamp = try number("timestamp", minimum: 0)
            let prompt = try count("input_length", minimum: 1)
            let output = try count("output_length", minimum: 1)
            var hashes: [Int] = []
            if let raw = object["hash_ids"] {
                guard let list = raw as? [Any] else { throw TraceError(file: file, line: line, field: "hash_ids", message: "expected a list of block ids") }
                for item in list {
                    guard let n = item as? NSNumber, !isJSONBoolean(item), n.doubleValue == n.doubleValue.rounded() else {
                        throw TraceError(file: file, line: line, field: "hash_ids", message: "expected whole-number block ids, got \(item)")
                    }
                    hashes.append(n.intValue)
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

/// Wall-clock timestamps without a zone, read as UTC.
public enum WallClock {
    /// Seconds since the epoch for `YYYY-MM-DD HH:MM:SS[.fraction]` (or with `T`), or nil.
    public static func epochSeconds<S: StringProtocol>(_ text: S) -> Double? {
        let chars = Array(text.utf8)
        guard chars.count >= 19, chars[4] == UInt8(ascii: "-"), chars[7] == UInt8(ascii: "-"),
              chars[10] == UInt8(ascii: " ") || chars[10] == UInt8(ascii: "T"),
              chars[13] == UInt8(ascii: ":"), chars[16] == UInt8(ascii: ":") else { return nil }
        func int(_ range: Range<Int>) -> Int? {
            var v = 0
            for i in range {
                let c = chars[i]
                guard c >= 48 && c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            return v
        }
        guard let y = int(0..<4), let mo = int(5..<7), let d = int(8..<10), let h = int(11..<13),
              let mi = int(14..<16), let s = int(17..<19),
              (1...12).contains(mo), (1...31).contains(d), h < 24, mi < 60, s < 61 else { return nil }
        var fraction = 0.0
        var rest = 19
        if rest < chars.count && chars[rest] == UInt8(ascii: ".") {
            var scale = 0.1
            rest += 1
            while rest < chars.count, chars[rest] >= 48 && chars[rest] <= 57 {
                fraction += Double(chars[rest] - 48) * scale
                scale /= 10
                rest += 1
            }
        }
        if rest < chars.count && chars[rest] == UInt8(ascii: "Z") { rest += 1 }
        guard rest == chars.count else { return nil }
        return Double(daysFromCivil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s) + fraction
    }

    /// Days from 1970-01-01 to the given proleptic Gregorian date (Howard Hinnant's algorithm).
    public static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }
}

extension WallClock {
    /// Seconds since the epoch for an ISO 8601 time with an optional zone: `2025-02-27T04:00:00Z`,
    /// `2025-02-27T12:00:00+08:00`, `2025-02-27 04:00` (no zone: UTC). Nil if it is not one.
    public static func iso8601<S: StringProtocol>(_ text: S) -> Double? {
        var s = String(text).trimmingCharacters(in: .whitespaces)
        var offset = 0.0
        if s.hasSuffix("Z") || s.hasSuffix("z") {
            s.removeLast()
        } else if s.count >= 22 {
            let tail = s.suffix(6)
            if let sign = tail.first, sign == "+" || sign == "-", let z = utcOffsetSeconds(String(tail)) {
                offset = z
                s.removeLast(6)
            }
        }
        if s.count == 16 { s += ":00" }
        if s.count == 10 { s += " 00:00:00" }
        return epochSeconds(s).map { $0 - offset }
    }

    /// Seconds east of UTC for `+HH:MM`, `-HH:MM` or `Z`.
    public static func utcOffsetSeconds(_ text: String) -> Double? {
        if text == "Z" || text == "UTC" { return 0 }
        let chars = Array(text)
        guard chars.count == 6, chars[0] == "+" || chars[0] == "-", chars[3] == ":",
              let h = Int(String(chars[1...2])), let m = Int(String(chars[4...5])), h <= 14, m < 60 else { return nil }
        return Double(chars[0] == "-" ? -1 : 1) * Double(h * 3600 + m * 60)
    }

    /// Seconds into the day for `HH:MM` or `HH:MM:SS` (00:00 to 23:59:59).
    public static func secondOfDay(_ text: String) -> Double? {
        let parts = text.split(separator: ":").map { Int($0) }
        guard (2...3).contains(parts.count), parts.allSatisfy({ $0 != nil }) else { return nil }
        let h = parts[0]!, m = parts[1]!, s = parts.count == 3 ? parts[2]! : 0
        guard (0..<24).contains(h), (0..<60).contains(m), (0..<60).contains(s) else { return nil }
        return Double(h * 3600 + m * 60 + s)
    }
}
