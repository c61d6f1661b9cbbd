import Accounting
import Foundation

/// Reads DCGM exporter metrics in the Prometheus text format: one scrape (`curl :9400/metrics`)
/// or a dump of many.
///
/// `DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION` (a counter of millijoules since the driver loaded) is
/// used where every sample of a GPU has it, else `DCGM_FI_DEV_POWER_USAGE` (watts) is integrated;
/// `DCGM_FI_PROF_*` and other series are counted and otherwise ignored. A sample's time is its
/// own timestamp (milliseconds after the value) when present, else that of the last
/// `# scrape <ISO 8601 time>` line before it (what `docs/measured.md`'s capture loop writes). The
/// `gpu` label names the GPU; with several `Hostname`s, GPUs are numbered host by host in name
/// order (`host index × GPUs per host + gpu`), and the mapping is reported.
public enum DCGMReader {
    public static let powerMetric = "DCGM_FI_DEV_POWER_USAGE"
    public static let energyMetric = "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION"

    /// One sample line: name, labels, value and optional timestamp (ms).
    struct SampleLine {
        var name: String
        var labels: [String: String]
        var value: Double
        var timestampMilliseconds: Double?
    }

    public static func read(_ text: String, file: String, skipBadLines: Bool = false) throws -> PowerTelemetry {
        struct Raw { var host: String; var gpu: Int; var uuid: String?; var time: Double; var watts: Double?; var joules: Double?; var line: Int }
        var raws: [String: Raw] = [:]  // by host, gpu and time: one power and one energy value merge into one sample
        var order: [String] = []
        var scrapeTime: Double? = nil
        var issues: [MeasuredIssue] = []
        var other = 0
        var lineNumber = 0
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            if line.hasPrefix("#") {
                let words = line.dropFirst().split(separator: " ", maxSplits: 1)
                if words.first == "scrape" {
                    guard words.count == 2, let t = WallClock.iso8601(words[1]) else {
                        throw MeasuredInputError(file: file, line: lineNumber, field: "scrape", "expected '# scrape <ISO 8601 time>' such as '# scrape 2025-06-01T12:00:00.250Z', got '\(line.prefix(80))'")
                    }
                    scrapeTime = t
                }
                continue
            }
            do {
                let sample = try parseSample(line, file: file, line: lineNumber)
                guard sample.name == powerMetric || sample.name == energyMetric else {
                    other += 1
                    continue
                }
                guard let gpuText = sample.labels["gpu"], let gpu = Int(gpuText), (0...4095).contains(gpu) else {
                    throw MeasuredInputError(file: file, line: lineNumber, field: "gpu", "expected a gpu=\"N\" label with N from 0 to 4095 on \(sample.name)")
                }
                guard let t = sample.timestampMilliseconds.map({ $0 / 1000 }) ?? scrapeTime else {
                    throw MeasuredInputError(file: file, line: lineNumber, field: "time", "no time for this sample: expected a timestamp after the value or a '# scrape <ISO 8601 time>' line before the scrape")
                }
                let host = sample.labels["Hostname"] ?? sample.labels["hostname"] ?? ""
                let key = "\(host)\u{0}\(gpu)\u{0}\(t)"
                if raws[key] == nil {
                    raws[key] = Raw(host: host, gpu: gpu, uuid: sample.labels["UUID"], time: t, watts: nil, joules: nil, line: lineNumber)
                    order.append(key)
                }
                guard sample.value.isFinite else {
                    issues.append(MeasuredIssue(.missingValue, subject: "GPU \(gpu)", "line \(lineNumber): \(sample.name) is \(sample.value); left out"))
                    continue
                }
                if sample.name == powerMetric {
                    guard (0...5000).contains(sample.value) else {
                        throw MeasuredInputError(file: file, line: lineNumber, field: powerMetric, "expected 0 to 5000 W, got \(sample.value)")
                    }
                    raws[key]!.watts = sample.value
                } else {
                    guard sample.value >= 0 else {
                        throw MeasuredInputError(file: file, line: lineNumber, field: energyMetric, "expected a non-negative millijoule counter, got \(sample.value)")
                    }
                    raws[key]!.joules = sample.value / 1000
                }
            } catch let error as MeasuredInputError where skipBadLines {
                issues.append(MeasuredIssue(.skippedLine, "\(error)"))
            }
        }
        guard !order.isEmpty else {
            throw MeasuredInputError(file: file, "no \(powerMetric) or \(energyMetric) samples (\(other) other samples)")
        }
        let hosts = Set(order.map { raws[$0]!.host }).sorted()
        let perHost = (order.map { raws[$0]!.gpu }.max() ?? 0) + 1
        if hosts.count > 1 {
            issues.append(MeasuredIssue(.skew, "several hosts in one file: GPUs numbered host by host, " + hosts.enumerated().map { "\($1) → \($0 * perHost)…\($0 * perHost + perHost - 1)" }.joined(separator: ", ")))
        }
        var builder = TrackBuilder(file: file)
        builder.issues = issues
        for key in order {
            let r = raws[key]!
            let gpu = hosts.firstIndex(of: r.host)! * perHost + r.gpu
            builder.add(gpu: gpu, uuid: r.uuid, TrackBuilder.Sample(time: r.time, watts: r.watts, counterJoules: r.joules, line: r.line))
        }
        return try builder.build(format: "dcgm")
    }

    /// `name{a="x",b="y"} value [timestamp]` (labels optional).
    static func parseSample(_ line: String, file: String, line n: Int) throws -> SampleLine {
        var labels: [String: String] = [:]
        let chars = Array(line)
        var i = 0
        while i < chars.count, chars[i] != "{", chars[i] != " ", chars[i] != "\t" { i += 1 }
        let name = String(chars[0..<i])
        guard !name.isEmpty else { throw MeasuredInputError(file: file, line: n, "expected a metric name, got '\(line.prefix(80))'") }
        if i < chars.count, chars[i] == "{" {
            i += 1
            while true {
                while i < chars.count, chars[i] == " " || chars[i] == "," { i += 1 }
                guard i < chars.count else { throw MeasuredInputError(file: file, line: n, field: name, "unterminated label set") }
                if chars[i] == "}" { i += 1; break }
                var j = i
                while j < chars.count, chars[j] != "=" { j += 1 }
                guard j + 1 < chars.count, chars[j + 1] == "\"" else {
                    throw MeasuredInputError(file: file, line: n, field: name, "expected label=\"value\" in the label set")
                }
                let key = String(chars[i..<j]).trimmingCharacters(in: .whitespaces)
                var value = ""
                var k = j + 2
                var closed = false
                while k < chars.count {
                    let c = chars[k]
                    if c == "\\", k + 1 < chars.count {
                        let e = chars[k + 1]
                        value.append(e == "n" ? "\n" : e)
                        k += 2
                        continue
                    }
                    if c == "\"" { closed = true; k += 1; break }
                    value.append(c)
                    k += 1
                }
                guard closed else { throw MeasuredInputError(file: file, line: n, field: name, "unterminated label value for '\(key)'") }
                labels[key] = value
                i = k
            }
        }
        let rest = String(chars[min(i, chars.count)...]).split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard (1...2).contains(rest.count) else {
            throw MeasuredInputError(file: file, line: n, field: name, "expected a value and an optional timestamp after the labels, got '\(rest.joined(separator: " "))'")
        }
        let valueText = String(rest[0])
        let value: Double
        switch valueText {
        case "NaN": value = .nan
        case "+Inf", "Inf": value = .infinity
        case "-Inf": value = -.infinity
        default:
            guard let v = Double(valueText) else { throw MeasuredInputError(file: file, line: n, field: name, "expected a number, got '\(valueText)'") }
            value = v
        }
        var stamp: Double? = nil
        if rest.count == 2 {
            guard let ms = Double(rest[1]), ms.isFinite, ms > 0, ms < 7.3e12 else {
                throw MeasuredInputError(file: file, line: n, field: name, "expected a timestamp in milliseconds since 1970 (up to the year 2200), got '\(rest[1])'")
            }
            stamp = ms
        }
        return SampleLine(name: name, labels: labels, value: value, timestampMilliseconds: stamp)
    }
}
