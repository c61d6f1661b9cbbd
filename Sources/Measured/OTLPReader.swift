import Foundation

/// Reads vLLM's OpenTelemetry request spans in the OTLP/JSON encoding: one
/// `ExportTraceServiceRequest` object (`{"resourceSpans": [...]}`, what an OTLP/HTTP exporter
/// posts), or JSON Lines of them (what the collector's file exporter writes).
///
/// Spans named `llm_request` are requests; others are counted and left alone. A span's start is
/// the request's arrival and its end the finish; `gen_ai.latency.time_in_queue` and
/// `gen_ai.latency.time_to_first_token` (seconds) give scheduling and first token;
/// `gen_ai.usage.prompt_tokens` and `gen_ai.usage.completion_tokens` the counts, and
/// `gen_ai.usage.cached_tokens` the cached prompt tokens when present (0 when absent, reported).
/// The id is `gen_ai.request.id`, else the span id. vLLM does not say which GPUs a request ran on:
/// a `joule.gpus` attribute (`"0;1;2;3"`) on the span or its resource gives them, else the
/// engine's GPUs given to `joule measure`; the engine is the resource's `service.instance.id`
/// (else `host.name`).
public enum OTLPReader {
    public static let requestSpan = "llm_request"

    /// Reads a file or request body in OTLP's protobuf encoding (`application/x-protobuf`).
    public static func readProtobuf(_ data: Data, file: String) throws -> RequestLog {
        try read(objects: [(try OTLPProtobuf.decode(data, file: file), 1)], file: file)
    }

    /// Reads a file or request body in OTLP/JSON.
    public static func read(_ data: Data, file: String) throws -> RequestLog {
        let text = String(decoding: data, as: UTF8.self)
        var objects: [(Any, Int)] = []
        if let whole = try? JSONSerialization.jsonObject(with: data) {
            objects = [(whole, 1)]
        } else {
            for (n, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty { continue }
                guard let o = try? JSONSerialization.jsonObject(with: Data(trimmed.utf8)) else {
                    throw MeasuredInputError(file: file, line: n + 1, "expected OTLP/JSON: one {\"resourceSpans\": …} object, or one per line")
                }
                objects.append((o, n + 1))
            }
        }
        guard !objects.isEmpty else { throw MeasuredInputError(file: file, "empty: expected OTLP/JSON trace data") }
        return try read(objects: objects, file: file)
    }

    /// Requests from decoded `ExportTraceServiceRequest` objects, each with the line it came from.
    static func read(objects: [(Any, Int)], file: String) throws -> RequestLog {
        var requests: [MeasuredRequest] = []
        var other = 0
        var noCached = 0
        var seen: Set<String> = []
        var spanNumber = 0
        for (object, line) in objects {
            guard let root = object as? [String: Any], let resourceSpans = root["resourceSpans"] as? [Any] else {
                throw MeasuredInputError(file: file, line: line, field: "resourceSpans", "expected an object with a resourceSpans array (OTLP/JSON trace data)")
            }
            for (ri, rsAny) in resourceSpans.enumerated() {
                guard let rs = rsAny as? [String: Any] else { throw MeasuredInputError(file: file, line: line, field: "resourceSpans[\(ri)]", "expected an object") }
                let resource = attributes((rs["resource"] as? [String: Any])?["attributes"])
                let engine = (resource["service.instance.id"] as? String) ?? (resource["host.name"] as? String)
                for (si, ssAny) in ((rs["scopeSpans"] as? [Any]) ?? (rs["instrumentationLibrarySpans"] as? [Any]) ?? []).enumerated() {
                    let spans = ((ssAny as? [String: Any])?["spans"] as? [Any]) ?? []
                    for (k, spanAny) in spans.enumerated() {
                        spanNumber += 1
                        let place = "resourceSpans[\(ri)].scopeSpans[\(si)].spans[\(k)]"
                        guard let span = spanAny as? [String: Any] else { throw MeasuredInputError(file: file, line: line, field: place, "expected a span object") }
                        guard (span["name"] as? String) == requestSpan else {
                            other += 1
                            continue
                        }
                        let a = attributes(span["attributes"])
                        guard let start = nanos(span["startTimeUnixNano"]), start > 0, start < 7.3e9 else {
                            throw MeasuredInputError(file: file, line: line, field: "\(place).startTimeUnixNano", "expected the span's start in nanoseconds since 1970 (up to the year 2200)")
                        }
                        let end = nanos(span["endTimeUnixNano"]).flatMap { $0 > 0 && $0 < 7.3e9 ? $0 : nil }
                        let id = (a["gen_ai.request.id"] as? String) ?? (span["spanId"] as? String) ?? "span-\(spanNumber)"
                        guard !seen.contains(id) else { throw MeasuredInputError(file: file, line: line, field: "\(place) gen_ai.request.id", "'\(id)' appears twice") }
                        seen.insert(id)
                        let queue = number(a["gen_ai.latency.time_in_queue"])
                        let ttft = number(a["gen_ai.latency.time_to_first_token"])
                        let cached = integer(a["gen_ai.usage.cached_tokens"])
                        if cached == nil { noCached += 1 }
                        let gpuText = (a["joule.gpus"] as? String) ?? (resource["joule.gpus"] as? String) ?? ""
                        let gpus = try RequestCSVReader.parseGPUs(gpuText, file: file, line: line, field: "\(place) joule.gpus")
                        let r = MeasuredRequest(
                            id: id, arrival: start, scheduled: queue.map { start + $0 }, firstToken: ttft.map { start + $0 }, finish: end,
                            promptTokens: integer(a["gen_ai.usage.prompt_tokens"]), cachedTokens: cached ?? 0,
                            outputTokens: integer(a["gen_ai.usage.completion_tokens"]), gpus: gpus, engine: engine, line: spanNumber
                        )
                        try RequestLog.check(r, file: "\(file) (\(place))")
                        requests.append(r)
                    }
                }
            }
        }
        var issues = RequestLog.missingIssues(requests)
        if noCached > 0 {
            issues.append(MeasuredIssue(.missingSpan, "\(noCached) of \(requests.count) spans carry no gen_ai.usage.cached_tokens: their cached tokens are taken as 0"))
        }
        if other > 0 { issues.append(MeasuredIssue(.skippedLine, "\(other) spans not named \(requestSpan) left alone")) }
        return RequestLog(format: "otlp", origin: file, requests: requests, issues: issues)
    }

    /// OTLP's key–value list as a dictionary of plain values.
    static func attributes(_ any: Any?) -> [String: Any] {
        var out: [String: Any] = [:]
        for item in (any as? [Any]) ?? [] {
            guard let kv = item as? [String: Any], let key = kv["key"] as? String, let value = kv["value"] as? [String: Any] else { continue }
            if let s = value["stringValue"] as? String {
                out[key] = s
            } else if let i = value["intValue"] {
                out[key] = (i as? String).flatMap(Int.init) ?? (i as? NSNumber)?.intValue
            } else if let d = value["doubleValue"] {
                out[key] = (d as? NSNumber)?.doubleValue ?? (d as? String).flatMap(Double.init)
            } else if let b = value["boolValue"] as? Bool {
                out[key] = b
            } else if let arr = (value["arrayValue"] as? [String: Any])?["values"] as? [Any] {
                let items = arr.compactMap { ($0 as? [String: Any]).flatMap { $0["intValue"] ?? $0["stringValue"] } }.map { "\($0)" }
                out[key] = items.joined(separator: ";")
            }
        }
        return out
    }

    static func nanos(_ any: Any?) -> Double? {
        if let s = any as? String, let v = UInt64(s) { return Double(v) / 1e9 }
        if let n = any as? NSNumber { return n.doubleValue / 1e9 }
        return nil
    }

    static func number(_ any: Any?) -> Double? {
        if let d = any as? Double, d.isFinite, d >= 0, d < 1e9 { return d }
        if let i = any as? Int, i >= 0 { return Double(i) }
        return nil
    }

    static func integer(_ any: Any?) -> Int? {
        if let i = any as? Int { return i }
        if let d = any as? Double, d == d.rounded(), abs(d) < 1e12 { return Int(d) }
        return nil
    }
}
