import Foundation
import Accounting
import Serving

/// Streams request records to a CSV or JSON Lines file, buffered.
final class RecordWriter {
    enum Format { case csv, jsonl }

    private let handle: FileHandle
    private let format: Format
    private var buffer = ""
    private let encoder: JSONEncoder
    /// Columns written before the record's own (a measured run's `request_id`).
    private let leading: [String]

    static let columns = [
        "id", "inFlight", "arrival", "prefillStart", "firstToken", "finish", "queueWait", "ttft", "tpot", "endToEnd",
        "promptTokens", "cachedTokens", "outputTokens", "prefillUnit", "decodeUnit",
        "gpuActiveJoules", "gpuIdleJoules", "hostJoules", "facilityOverheadJoules", "facilityJoules", "meanPowerWatts",
        "gpuSeconds", "intensityGramsPerKWh", "operationalCarbonGrams", "embodiedCarbonGrams", "totalCarbonGrams",
    ]

    init(path: String, leading: [String] = []) throws {
        self.leading = leading
        if path.hasSuffix(".csv") {
            format = .csv
        } else if path.hasSuffix(".jsonl") {
            format = .jsonl
        } else {
            throw CLIError(message: "--requests-out: expected a file ending in .csv or .jsonl, got '\(path)'")
        }
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else {
            throw CLIError(message: "--requests-out: cannot create '\(path)'")
        }
        handle = h
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        if format == .csv { buffer = (leading + Self.columns).joined(separator: ",") + "\n" }
    }

    /// Writes `r`, after the values of the leading columns (quoted in CSV when they need it).
    func write(_ r: RequestRecord, leading values: [String] = []) {
        switch format {
        case .csv:
            func o(_ v: Double?) -> String { v.map { "\($0)" } ?? "" }
            func o(_ v: Int?) -> String { v.map { "\($0)" } ?? "" }
            let fields: [String] = [
                "\(r.id)", r.inFlight ? "1" : "0", "\(r.arrival)", o(r.prefillStart), o(r.firstToken), o(r.finish), o(r.queueWait),
                o(r.ttft), o(r.tpot), o(r.endToEnd), "\(r.promptTokens)", "\(r.cachedTokens)", "\(r.outputTokens)",
                o(r.prefillUnit), o(r.decodeUnit), "\(r.gpuActiveJoules)", "\(r.gpuIdleJoules)", "\(r.hostJoules)",
                "\(r.facilityOverheadJoules)", "\(r.facilityJoules)", "\(r.meanPowerWatts)", "\(r.gpuSeconds)",
                "\(r.intensityGramsPerKWh)", "\(r.operationalCarbonGrams)", "\(r.embodiedCarbonGrams)", "\(r.totalCarbonGrams)",
            ]
            let quoted = values.map { $0.contains(",") || $0.contains("\"") ? "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : $0 }
            buffer += (quoted + fields).joined(separator: ",")
            buffer += "\n"
        case .jsonl:
            if let data = try? encoder.encode(r) {
                var line = String(decoding: data, as: UTF8.self)
                if !values.isEmpty, let d = try? encoder.encode(Dictionary(uniqueKeysWithValues: zip(leading, values))) {
                    // {"request_id":"a",…record fields…}
                    line = String(String(decoding: d, as: UTF8.self).dropLast()) + "," + line.dropFirst()
                }
                buffer += line + "\n"
            }
        }
        if buffer.utf8.count > 1 << 20 { flush() }
    }

    func flush() {
        handle.write(Data(buffer.utf8))
        buffer = ""
    }

    func close() {
        flush()
        try? handle.close()
    }
}

/// A progress bar on standard error, drawn only when it is a terminal.
struct ProgressBar {
    let enabled = isatty(STDERR_FILENO) == 1
    let label: String

    func update(_ fraction: Double) {
        guard enabled else { return }
        let f = min(max(fraction, 0), 1)
        let width = 30
        let filled = Int(f * Double(width))
        let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
        FileHandle.standardError.write(Data("\r\(label) \(bar) \(Int(f * 100))%".utf8))
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8))
    }
}
