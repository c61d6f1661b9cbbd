import Accounting
import Calibration
import CarbonData
import Foundation
import Hardware
import MoE
import Units

/// Loads Joule's data files (`Data/`) into validated specs.
///
/// Layout: `hardware/gpus/*.yaml`, `hardware/nodes/*.yaml`, `hardware/sites/*.yaml`,
/// `models/*.yaml`, `serving/defaults.yaml`, `calibration/targets.yaml`. Every file is validated
/// whole; errors name the file (relative to the data directory), the field and, where known, the line.
public enum Catalog {
    /// Finds the data directory: `explicit` if given, else `$JOULE_DATA`, else a `Data` folder beside
    /// or above the executable (a build inside the repository), else `./Data`.
    public static func locateDataDirectory(explicit: String?, environment: [String: String], executablePath: String) throws -> String {
        let fm = FileManager.default
        func isData(_ path: String) -> Bool { fm.fileExists(atPath: path + "/models") && fm.fileExists(atPath: path + "/hardware") }
        var searched: [String] = []
        if let explicit {
            if isData(explicit) { return explicit }
            throw CatalogError.dataDirectoryNotFound(searched: [explicit])
        }
        if let env = environment["JOULE_DATA"] {
            if isData(env) { return env }
            throw CatalogError.dataDirectoryNotFound(searched: ["$JOULE_DATA=\(env)"])
        }
        var dir = URL(fileURLWithPath: executablePath).resolvingSymlinksInPath().deletingLastPathComponent()
        for _ in 0..<6 {
            let candidate = dir.appendingPathComponent("Data").path
            searched.append(candidate)
            if isData(candidate) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        let local = fm.currentDirectoryPath + "/Data"
        searched.append(local)
        if isData(local) { return local }
        throw CatalogError.dataDirectoryNotFound(searched: searched)
    }

    /// Loads and validates every spec under `directory`.
    public static func load(from directory: String) throws -> SpecLibrary {
        try load(from: directory, fitted: try loadFittedParameters(from: directory))
    }

    /// Loads every spec under `directory` with `fitted` in place of `calibration/fitted.yaml`
    /// (what `joule calibrate --fit` tries while it searches).
    public static func load(from directory: String, fitted: FittedParameters) throws -> SpecLibrary {
        let gpuReaders = try readers(in: directory, "hardware/gpus")
        var gpus: [String: GPUSpec] = [:]
        var origin: [String: String] = [:]
        for r in gpuReaders {
            let gpu = try parseGPU(r, fitted: fitted)
            try insert(gpu, id: gpu.id, kind: "GPU", file: r.file, into: &gpus, origin: &origin)
        }
        var nodes: [String: NodeSpec] = [:]
        for r in try readers(in: directory, "hardware/nodes") {
            let node = try parseNode(r, gpus: gpus)
            try insert(node, id: node.id, kind: "hardware", file: r.file, into: &nodes, origin: &origin)
        }
        var sites: [String: SiteSpec] = [:]
        for r in try readers(in: directory, "hardware/sites") {
            let site = SiteSpec(id: try r.string("id"), name: try r.string("name"), pue: try r.double("pue"))
            try validated(site.validate(), file: r.file)
            try insert(site, id: site.id, kind: "site", file: r.file, into: &sites, origin: &origin)
        }
        var models: [String: ModelArchitecture] = [:]
        for r in try readers(in: directory, "models") {
            let model = try parseModel(r)
            try insert(model, id: model.id, kind: "model", file: r.file, into: &models, origin: &origin)
        }
        var serving = try parseServing(try reader(in: directory, "serving/defaults.yaml"))
        serving.engine = fitted.engine
        return SpecLibrary(gpus: gpus, nodes: nodes, sites: sites, models: models, serving: serving)
    }

    /// Loads the calibration targets (`calibration/targets.yaml`).
    public static func loadCalibrationTargets(from directory: String) throws -> [CalibrationTarget] {
        try CalibrationFile.parse(try reader(in: directory, "calibration/targets.yaml"))
    }

    // MARK: - Files

    static func reader(in directory: String, _ relative: String) throws -> YAMLReader {
        let path = directory + "/" + relative
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw CatalogError.unreadable(file: relative, reason: (error as NSError).localizedDescription)
        }
        return try YAMLReader.parse(text, file: relative)
    }

    static func readers(in directory: String, _ folder: String) throws -> [YAMLReader] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory + "/" + folder)
        } catch {
            throw CatalogError.unreadable(file: folder, reason: "not a readable folder")
        }
        return try names.filter { $0.hasSuffix(".yaml") }.sorted().map { try reader(in: directory, folder + "/" + $0) }
    }

    private static func insert<T>(_ value: T, id: String, kind: String, file: String, into table: inout [String: T], origin: inout [String: String]) throws {
        let key = kind + "/" + id
        if let previous = origin[key] { throw CatalogError.duplicate(kind: kind, id: id, files: [previous, file]) }
        origin[key] = file
        table[id] = value
    }

    static func validated(_ problems: [SpecProblem], file: String) throws {
        if !problems.isEmpty { throw CatalogError.invalidSpec(file: file, problems: problems) }
    }

    // MARK: - Specs

    /// Loads the fitted coefficients (`calibration/fitted.yaml`, written by `joule calibrate --fit`).
    public static func loadFittedParameters(from directory: String) throws -> FittedParameters {
        let r = try reader(in: directory, "calibration/fitted.yaml")
        var families: [String: FittedParameters.Family] = [:]
        let table = try r.child("families")
        for id in table.keys {
            let f = try table.child(id)
            let power = try f.child("power")
            let kernels = try f.child("kernels")
            let family = FittedParameters.Family(
                busyWatts: try power.double("busyWatts"), computeWatts: try power.double("computeWatts"),
                memoryWatts: try power.double("memoryWatts"), communicationWatts: try power.double("communicationWatts"),
                elementwiseBandwidthFraction: try kernels.double("elementwiseBandwidthFraction"),
                prefillAttentionFraction: try kernels.double("prefillAttentionFraction"),
                attentionBackwardFraction: try kernels.double("attentionBackwardFraction")
            )
            for (name, value) in [
                ("power.busyWatts", family.busyWatts), ("power.computeWatts", family.computeWatts), ("power.memoryWatts", family.memoryWatts),
                ("power.communicationWatts", family.communicationWatts),
            ] where !(value.isFinite && value >= 0) {
                throw f.error(name, "expected zero or a positive number of watts, got \(value)")
            }
            for (name, value) in [
                ("kernels.elementwiseBandwidthFraction", family.elementwiseBandwidthFraction),
                ("kernels.prefillAttentionFraction", family.prefillAttentionFraction),
                ("kernels.attentionBackwardFraction", family.attentionBackwardFraction),
            ] where !(value.isFinite && value > 0 && value <= 1) {
                throw f.error(name, "expected a share above 0 and at most 1, got \(value)")
            }
            families[id] = family
        }
        let e = try r.child("engine")
        var values: [Double] = []
        for (key, limit) in [("stepOverheadMicroseconds", 1e6), ("allReduceLatencyMicroseconds", 1e4), ("samplerBytesPerLogit", 1e3), ("perSequenceOverheadMicroseconds", 1e4)] {
            let v = try e.double(key)
            guard v.isFinite, v >= 0, v < limit else { throw e.error(key, "expected 0 up to \(Int(limit)), got \(v)") }
            values.append(v)
        }
        return FittedParameters(
            families: families,
            engine: EngineCosts(stepOverhead: .microseconds(values[0]), allReduceLatency: .microseconds(values[1]), samplerBytesPerLogit: values[2],
                perSequenceOverhead: .microseconds(values[3]))
        )
    }

    static func parseGPU(_ r: YAMLReader, fitted: FittedParameters) throws -> GPUSpec {
        let peak = try r.child("peakTFLOPS")
        let memory = try r.child("memory")
        let power = try r.child("power")
        let gemm = try r.child("kernels").child("gemm")
        let attention = try r.child("kernels").child("attention")
        var peaks: [Precision: Double] = [:]
        for precision in Precision.allCases where peak.has(precision.rawValue) {
            peaks[precision] = try peak.double(precision.rawValue) * 1e12
        }
        let gpu = GPUSpec(
            id: try r.string("id"), name: try r.string("name"), peakFLOPS: peaks,
            memoryBytes: try memory.double("capacityGB") * 1e9,
            memoryBandwidthBytesPerSecond: try memory.double("bandwidthTBps") * 1e12,
            streamingMultiprocessors: try r.int("streamingMultiprocessors"),
            nvlinkBidirectionalBytesPerSecond: try r.child("nvlink").double("bidirectionalGBps") * 1e9,
            gemm: GemmEfficiency(
                maxEfficiency: try gemm.double("maxEfficiency"),
                halfEfficiencyRows: try gemm.double("halfEfficiencyRows"),
                halfEfficiencyDepth: try gemm.double("halfEfficiencyDepth"),
                streamingBandwidthBytesPerSecond: try gemm.double("streamingBandwidthTBps") * 1e12,
                launchOverhead: .microseconds(try gemm.double("launchMicroseconds"))
            ),
            attention: AttentionKernel(
                computeFLOPS: try attention.double("computeTFLOPS") * 1e12,
                memoryBandwidthBytesPerSecond: try attention.double("memoryBandwidthTBps") * 1e12
            ),
            elementwiseBandwidthBytesPerSecond: try memory.double("bandwidthTBps") * 1e12,
            power: GPUPowerModel(
                idle: Power(watts: try power.double("idleWatts")), busy: .zero, compute: .zero, memory: .zero, communication: .zero,
                tdp: Power(watts: try power.double("tdpWatts"))
            )
        )
        let family = try r.string("family")
        let scale = power.has("scaleFromFamily") ? try power.double("scaleFromFamily") : 1
        guard scale.isFinite, scale > 0, scale <= 10 else { throw power.error("scaleFromFamily", "expected a factor above 0 and at most 10, got \(scale)") }
        guard let fittedGPU = fitted.apply(to: gpu, family: family, powerScale: scale) else {
            throw r.error("family", "no fitted coefficients for family '\(family)' in calibration/fitted.yaml; known: \(fitted.families.keys.sorted().joined(separator: ", "))")
        }
        try validated(fittedGPU.validate(), file: r.file)
        return fittedGPU
    }

    static func parseNode(_ r: YAMLReader, gpus: [String: GPUSpec]) throws -> NodeSpec {
        let gpuID = try r.string("gpu")
        guard let gpu = gpus[gpuID] else {
            throw CatalogError.invalidField(
                file: r.file, field: "gpu", line: nil,
                message: "unknown GPU '\(gpuID)'; expected one of \(gpus.keys.sorted().joined(separator: ", "))"
            )
        }
        let a2a = try r.child("allToAll")
        let nics = try r.child("nics")
        let host = try r.child("host")
        let perNode = try r.int("gpusPerNode")
        let node = NodeSpec(
            id: try r.string("id"), name: try r.string("name"), gpu: gpu, gpusPerNode: perNode,
            nicsPerNode: try nics.int("count"), nicBitsPerSecond: try nics.double("gbps") * 1e9,
            allToAll: AllToAllModel(
                nvlinkBytesPerSecond: try a2a.double("nvlinkGBps") * 1e9,
                infinibandBytesPerSecond: try a2a.double("infinibandGBps") * 1e9,
                baseLatency: .microseconds(try a2a.double("baseLatencyMicroseconds")),
                latencyPerDoubling: .microseconds(try a2a.double("latencyPerDoublingMicroseconds")),
                gpusPerNode: perNode
            ),
            hostIdle: Power(watts: try host.double("idleWatts")), rated: Power(watts: try r.double("ratedWatts"))
        )
        try validated(node.validate(), file: r.file)
        return node
    }

    static func parseModel(_ r: YAMLReader) throws -> ModelArchitecture {
        let a = try r.child("attention")
        let attention: AttentionArchitecture
        switch try a.string("kind") {
        case "mla":
            attention = .mla(MLAAttention(
                heads: try a.int("heads"), qLoraRank: try a.int("qLoraRank"), kvLoraRank: try a.int("kvLoraRank"),
                qkNopeHeadDim: try a.int("qkNopeHeadDim"), qkRopeHeadDim: try a.int("qkRopeHeadDim"), vHeadDim: try a.int("vHeadDim")
            ))
        case "gqa":
            var window: Int?
            var fraction = 0.0
            if a.has("slidingWindow") {
                let w = try a.int("slidingWindow")
                guard (1...10_000_000).contains(w) else { throw a.error("slidingWindow", "expected 1 to 10000000 positions, got \(w)") }
                fraction = try a.double("slidingLayerFraction")
                guard fraction.isFinite, fraction > 0, fraction <= 1 else {
                    throw a.error("slidingLayerFraction", "expected a share above 0 and at most 1, got \(fraction)")
                }
                window = w
            }
            attention = .gqa(GQAAttention(
                heads: try a.int("heads"), kvHeads: try a.int("kvHeads"), headDim: try a.int("headDim"),
                slidingWindow: window, slidingLayerFraction: fraction
            ))
        case let other:
            throw CatalogError.invalidField(file: r.file, field: "attention.kind", line: nil, message: "expected mla or gqa, got '\(other)'")
        }
        let ffn = try r.child("ffn")
        var moe: MoEFFN?
        if ffn.has("moe") {
            let m = try ffn.child("moe")
            moe = MoEFFN(
                routedExperts: try m.int("routedExperts"), sharedExperts: try m.int("sharedExperts"),
                expertIntermediate: try m.int("expertIntermediate"), expertsPerToken: try m.int("expertsPerToken"),
                groups: try m.int("groups"), topKGroups: try m.int("topKGroups")
            )
        }
        let model = ModelArchitecture(
            id: try r.string("id"), name: try r.string("name"), hidden: try r.int("hiddenSize"), layers: try r.int("layers"),
            vocabulary: try r.int("vocabularySize"), tiedEmbeddings: try r.bool("tiedEmbeddings"), attention: attention,
            denseLayers: try ffn.int("denseLayers"), denseIntermediate: try ffn.int("denseIntermediate"), moe: moe,
            mtpModules: try r.int("mtpModules"), weightPrecision: try r.choice("weightPrecision", as: Precision.self),
            kvCachePrecision: try r.choice("kvCachePrecision", as: Precision.self)
        )
        try validated(model.validate(), file: r.file)
        return model
    }

    static func parseServing(_ r: YAMLReader) throws -> ServingDefaults {
        let sms = try r.child("communicationSMs")
        var bySMs: [ServingPhase: Int] = [:]
        for phase in ServingPhase.allCases { bySMs[phase] = try sms.int(phase.rawValue) }
        let popularity = try r.child("expertPopularity")
        let seed = try popularity.int("seed")
        guard seed >= 0 else { throw popularity.error("seed", "expected a whole number ≥ 0, got \(seed)") }
        let defaults = ServingDefaults(
            microBatches: try r.int("microBatches"), redundantExperts: try r.int("redundantExperts"), communicationSMs: bySMs,
            expertPopularity: ExpertPopularitySpec(skew: try popularity.double("skew"), layers: try popularity.int("layers"), seed: UInt64(seed))
        )
        try validated(defaults.validate(), file: r.file)
        return defaults
    }
}

extension Catalog {
    /// Loads Data/grids: annual averages (`annual.yaml`) and daily profiles (`profiles.yaml`).
    public static func loadGridDefaults(dataDirectory: String) throws -> GridDefaults {
        func reader(_ name: String) throws -> YAMLReader {
            let path = "\(dataDirectory)/grids/\(name)"
            return try YAMLReader.parse(try readText(at: path), file: path)
        }
        let annual = try reader("annual.yaml").items("regions").map { r -> GridAnnualFactor in
            try r.onlyKeys(["region", "name", "gramsPerKWh", "factor", "year", "source"])
            let g = try r.double("gramsPerKWh")
            guard g >= 0 else { throw r.error("gramsPerKWh", "expected an intensity ≥ 0, got \(g)") }
            return GridAnnualFactor(
                region: try r.string("region"), name: try r.string("name"), gramsPerKWh: g,
                factor: try r.choice("factor", as: EmissionFactorType.self), year: try r.optionalInt("year"), source: try r.string("source")
            )
        }
        let profiles = try reader("profiles.yaml").items("profiles").map { r -> GridProfile in
            try r.onlyKeys(["region", "factor", "year", "hours", "source", "hourlyMeanUTC"])
            let hours = try r.items("hourlyMeanUTC").map { try $0.scalarDouble() }
            guard hours.count == 24 else { throw r.error("hourlyMeanUTC", "expected 24 hourly values, got \(hours.count)") }
            return GridProfile(
                region: try r.string("region"), factor: try r.choice("factor", as: EmissionFactorType.self), year: try r.int("year"),
                source: try r.string("source"), hourlyMeanUTC: hours
            )
        }
        return GridDefaults(annual: annual, profiles: profiles)
    }
}
