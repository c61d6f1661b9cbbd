import Accounting
import CarbonData
import Foundation
import Hardware
import MoE
import Serving

/// Where a scenario's requests come from.
public enum WorkloadSource: Sendable {
    /// A seeded generator.
    case generator(GeneratorSpec)
    /// A recorded trace file (path resolved against the scenario file's folder).
    case trace(path: String, format: TraceFormat, options: ReplayOptions)
}

/// A scenario file, read and resolved against the spec library.
public struct LoadedScenario: Sendable {
    public var scenario: ServingScenario
    public var workload: WorkloadSource
    /// The file it came from, and its text (stored with a run).
    public var file: String
    public var text: String
    /// Whether the file set `start` (a wall-clock trace otherwise starts the run at its own first arrival).
    public var hasStart: Bool
}

extension Catalog {
    /// The text of the file at `path`, or `CatalogError.unreadable` naming it.
    public static func readText(at path: String) throws -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw CatalogError.unreadable(file: path, reason: (error as NSError).localizedDescription)
        }
    }

    /// Finds a scenario by path, or by name in `Data/scenarios/` (`deepseek-v3-day`).
    public static func scenarioPath(_ nameOrPath: String, dataDirectory: String) throws -> String {
        let fm = FileManager.default
        if fm.fileExists(atPath: nameOrPath) { return nameOrPath }
        let named = dataDirectory + "/scenarios/" + nameOrPath + (nameOrPath.hasSuffix(".yaml") ? "" : ".yaml")
        if fm.fileExists(atPath: named) { return named }
        let available = ((try? fm.contentsOfDirectory(atPath: dataDirectory + "/scenarios")) ?? [])
            .filter { $0.hasSuffix(".yaml") }.map { String($0.dropLast(5)) }.sorted()
        throw CatalogError.unknown(kind: "scenario (file or name)", id: nameOrPath, available: available)
    }

    /// Reads and resolves the scenario file at `path`.
    public static func loadScenario(at path: String, library: SpecLibrary, dataDirectory: String) throws -> LoadedScenario {
        try loadScenario(text: try readText(at: path), file: path, library: library, dataDirectory: dataDirectory)
    }

    /// Reads and resolves a scenario from `text`, the contents of `file` (relative paths in it are
    /// taken from the file's folder).
    public static func loadScenario(text: String, file: String, library: SpecLibrary, dataDirectory: String) throws -> LoadedScenario {
        let r = try YAMLReader.parse(text, file: file)
        let folder = URL(fileURLWithPath: file).deletingLastPathComponent().path
        return try ScenarioFile(reader: r, library: library, dataDirectory: dataDirectory, folder: folder, text: text).load()
    }

    /// Reads a trace file. A CSV whose header is a measured request log's is read as one.
    public static func loadTrace(at path: String, format: TraceFormat, skipBadLines: Bool) throws -> ParsedTrace {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw CatalogError.unreadable(file: path, reason: "cannot read the trace (\((error as NSError).localizedDescription))")
        }
        let header = text.prefix { !$0.isNewline }
        if format == .requestLog || format == .otlp || (format == .jouleCSV && header.hasPrefix("request_id,")) {
            return try measuredTrace(text, file: path, format: format == .otlp ? .otlp : .requestLog, skipBadLines: skipBadLines)
        }
        return try TraceParser.parse(text, file: path, format: format, skipBadLines: skipBadLines)
    }

    /// Reads a carbon-intensity CSV with header `timestamp,gco2_per_kwh` (ISO 8601 times; no zone
    /// means UTC) with the one reader `joule carbon import --format joule` uses. What an import
    /// repairs with a warning (rows out of order, duplicate rows) is an error here: a scenario's
    /// series must say exactly what it means. A gap is not: each row holds until the next.
    public static func loadIntensityCSV(at path: String, region: String, signal: CarbonSignal, source: String) throws -> CarbonSeries {
        let text = try readText(at: path)
        let result: CarbonImport
        do {
            result = try CarbonFormat.joule.read(Data(text.utf8), file: path, options: CarbonImportOptions(region: region, signal: signal))
        } catch let error as CarbonDataError {
            switch error {
            case .invalidPoint(_, let line, let field, let message):
                throw CatalogError.invalidField(file: path, field: field, line: line, message: message)
            case .empty:
                throw CatalogError.invalidField(file: path, field: "(file)", line: nil, message: "expected at least one intensity row")
            default:
                throw CatalogError.invalidField(file: path, field: "(file)", line: nil, message: "\(error)")
            }
        }
        if let warning = result.warnings.first(where: { $0.kind == .repaired }) {
            throw CatalogError.invalidField(
                file: path, field: "(file)", line: nil, message: "\(warning.message) (a scenario's series is read strictly: fix the file)"
            )
        }
        var series = result.series[0]
        series.metadata.source = source
        series.metadata.origin = "scenario"
        return series
    }

    /// Loads the embodied-emission models (`embodied/*.yaml`) by id.
    public static func loadEmbodiedModels(from directory: String) throws -> [String: EmbodiedModel] {
        var models: [String: EmbodiedModel] = [:]
        for r in try readers(in: directory, "embodied") {
            try r.onlyKeys(["id", "source", "dieAreaCm2", "kgPerCm2", "memoryGB", "kgPerGB", "lifetimeYears"])
            let model = EmbodiedModel(
                id: try r.string("id"), dieAreaSquareCentimetres: try r.double("dieAreaCm2"),
                kilogramsPerSquareCentimetre: try r.double("kgPerCm2"), memoryGigabytes: try r.double("memoryGB"),
                kilogramsPerGigabyte: try r.double("kgPerGB"), lifetimeYears: try r.double("lifetimeYears"), source: try r.string("source")
            )
            if let p = model.validate().first { throw r.error(p.field, p.message) }
            if models[model.id] != nil { throw CatalogError.duplicate(kind: "embodied model", id: model.id, files: [r.file]) }
            models[model.id] = model
        }
        return models
    }
}
