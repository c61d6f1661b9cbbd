import Accounting
import CarbonData
import Foundation
import Hardware
import MoE
import Routing
import Serving

/// Reads one scenario file (see `Data/scenarios/` and DESIGN.md "a scenario") into a `LoadedScenario`.
struct ScenarioFile {
    let reader: YAMLReader
    let library: SpecLibrary
    let dataDirectory: String
    /// The scenario file's folder: relative paths inside it resolve from here.
    let folder: String
    let text: String

    /// The default start when a scenario names none: 2025-01-01T00:00:00Z.
    static let defaultStart = Double(WallClock.daysFromCivil(2025, 1, 1) * 86_400)

    func resolve(_ path: String) -> String { path.hasPrefix("/") ? path : folder + "/" + path }

    func load() throws -> LoadedScenario {
        let r = reader
        try r.onlyKeys(["name", "description", "model", "hardware", "site", "start", "duration", "seed", "deployment", "schedule", "workload", "carbon", "embodied", "accounting", "experts", "training"])
        var model = try lookup { try library.model(try r.string("model")) }
        let node = try lookup { try library.node(try r.string("hardware")) }
        let site = try lookup { try library.site(try r.optionalString("site") ?? "default") }
        var start = Self.defaultStart
        if let text = try r.optionalString("start") {
            guard let t = WallClock.iso8601(text) else { throw r.error("start", "expected an ISO 8601 time like 2025-02-27T04:00:00Z, got '\(text)'") }
            start = t
        }
        let duration = try r.optionalDouble("duration")
        if let d = duration, !ServingScenario.durationRange.contains(d) {
            throw r.error("duration", "expected 0.001 to 31622400 seconds (366 days), got \(d)")
        }
        let seed = try r.optionalInt("seed") ?? 1
        guard seed >= 0 else { throw r.error("seed", "expected a whole number ≥ 0, got \(seed)") }
        var (topology, routing) = try deployment(try r.child("deployment"), model: model, node: node)
        var experts: MoERoutingReport? = nil
        if r.has("experts") {
            let e = try r.child("experts")
            let (routingSpec, pruning) = try expertsSection(e)
            do {
                (model, topology, experts) = try MoERouting.resolve(model: model, topology: topology, node: node, routing: routingSpec, pruning: pruning)
            } catch let error as MoERoutingError {
                switch error {
                case .notMoE: throw e.error("", error.description)
                case .invalid(let field, let message): throw e.error(field, message)
                }
            }
        }
        let schedule = r.has("schedule") ? try nodeSchedule(try r.child("schedule")) : nil
        let workload = try workloadSource(try r.child("workload"), schedule: schedule)
        let carbon = try carbonSeries(try r.child("carbon"))
        let embodiedID = try r.optionalString("embodied") ?? "llmcarbon-h800"
        let embodiedModels = try Catalog.loadEmbodiedModels(from: dataDirectory)
        guard let embodied = embodiedModels[embodiedID] else {
            throw r.error("embodied", "unknown embodied model '\(embodiedID)'; available: \(embodiedModels.keys.sorted().joined(separator: ", "))")
        }
        var interval = 60.0
        var attribution = AttributionPolicies.default
        if r.has("accounting") {
            let a = try r.child("accounting")
            try a.onlyKeys(["intervalSeconds", "attribution"])
            interval = try a.optionalDouble("intervalSeconds") ?? interval
            guard ServingScenario.intervalRange.contains(interval) else {
                throw a.error("intervalSeconds", "expected 0.001 to 86400 seconds, got \(interval)")
            }
            if a.has("attribution") { attribution = try a.attributionPolicy("attribution") }
        }
        var scenario = ServingScenario(
            name: try r.string("name"), model: model, node: node, site: site, topology: topology, schedule: schedule,
            routing: routing, startEpochSeconds: start, duration: duration, seed: UInt64(seed), carbon: carbon,
            embodied: embodied, intervalSeconds: interval, attribution: attribution
        )
        scenario.experts = experts
        if r.has("training") { scenario.training = try trainingSection(try r.child("training")) }
        let problems = scenario.validate()
        if !problems.isEmpty {
            throw CatalogError.invalidSpec(file: reader.file, problems: problems.map { SpecProblem(field: $0.field, message: $0.message) })
        }
        return LoadedScenario(scenario: scenario, workload: workload, file: reader.file, text: text, hasStart: r.has("start"))
    }

    /// `training: {plan, servedTokens, lifeMonths, grid}`: the plan's whole footprint (every
    /// stage, facility energy at the plan's site, carbon at `grid`'s annual average) spread over
    /// `servedTokens` prompt and output tokens.
    private func trainingSection(_ t: YAMLReader) throws -> TrainingAmortisation {
        try t.onlyKeys(["plan", "servedTokens", "lifeMonths", "grid"])
        let name = try t.string("plan")
        let path: String
        do {
            path = try Catalog.trainingPlanPath(name.hasSuffix(".yaml") ? resolve(name) : name, dataDirectory: dataDirectory)
        } catch let error as CatalogError {
            throw t.error("plan", "\(error)")
        }
        let plan = try Catalog.loadTrainingPlan(at: path)
        let served = try t.double("servedTokens")
        guard served.isFinite && served >= 1 else { throw t.error("servedTokens", "expected at least 1 token over the service life, got \(served)") }
        let life = try t.optionalDouble("lifeMonths")
        if let life, !(life.isFinite && life > 0) { throw t.error("lifeMonths", "expected a positive number of months, got \(life)") }
        let region = try t.optionalString("grid") ?? "CN"
        guard let factor = try Catalog.loadGridDefaults(dataDirectory: dataDirectory).annual(region: region) else {
            throw t.error("grid", "no annual average for '\(region)' in Data/grids (try `joule carbon defaults`)")
        }
        let estimate: TrainingRunEstimate
        do {
            estimate = try library.estimate(plan)
        } catch let error as TrainingPlanError {
            throw t.error("plan", "\(path): " + error.problems.joined(separator: "; "))
        }
        return TrainingAmortisation(
            plan: plan.id, servedTokens: served, lifeMonths: life, grid: factor.region, gramsPerKWh: factor.gramsPerKWh,
            facilityJoules: estimate.facilityEnergy.joules, gpuHours: estimate.gpuHours
        )
    }

    private func lookup<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as UnknownSpecError {
            let field = e.kind == "hardware" ? "hardware" : e.kind
            throw reader.error(field, "unknown \(e.kind) '\(e.id)'; available: \(e.available.joined(separator: ", "))")
        }
    }

    // MARK: - Expert routing and pruning

    /// `experts: {skew, sampledLayers, tokens, calibrationTokens, seed, pruning: {prunedFraction,
    /// ranking, expertsPerToken, skipBelowFractionOfTop, freedMemory}}`.
    private func expertsSection(_ e: YAMLReader) throws -> (ExpertRoutingSpec, PruningSpec?) {
        try e.onlyKeys(["skew", "sampledLayers", "tokens", "calibrationTokens", "seed", "pruning"])
        let skew = try e.double("skew")
        guard skew >= 0 else { throw e.error("skew", "expected a Zipf exponent ≥ 0, got \(skew)") }
        func positive(_ key: String, _ fallback: Int) throws -> Int {
            let v = try e.optionalInt(key) ?? fallback
            guard v >= 1 else { throw e.error(key, "expected a whole number ≥ 1, got \(v)") }
            return v
        }
        let spec = ExpertRoutingSpec(
            skew: skew, sampledLayers: try positive("sampledLayers", 2), tokens: try positive("tokens", 4096),
            calibrationTokens: try positive("calibrationTokens", 256), seed: UInt64(try positive("seed", 1))
        )
        guard e.has("pruning") else { return (spec, nil) }
        let p = try e.child("pruning")
        try p.onlyKeys(["prunedFraction", "ranking", "expertsPerToken", "skipBelowFractionOfTop", "freedMemory"])
        let config = PruningConfig(
            prunedFraction: try p.optionalDouble("prunedFraction") ?? 0,
            ranking: p.has("ranking") ? try p.choice("ranking", as: PruningConfig.Ranking.self) : .frequency,
            expertsPerToken: try p.optionalInt("expertsPerToken"),
            skipBelowFractionOfTop: try p.optionalDouble("skipBelowFractionOfTop")
        )
        let freed = p.has("freedMemory") ? try p.choice("freedMemory", as: PruningSpec.FreedMemory.self) : .moreKVCache
        return (spec, PruningSpec(config: config, freedMemory: freed))
    }

    // MARK: - Deployment

    private func deployment(_ d: YAMLReader, model: ModelArchitecture, node: NodeSpec) throws -> (ServingTopology, RoutingChoice) {
        try d.onlyKeys(["kind", "prefill", "decode", "unit", "routing"])
        let routing = d.has("routing") ? try d.choice("routing", as: RoutingChoice.self) : .leastLoaded
        switch try d.string("kind") {
        case "disaggregated":
            return (.disaggregated(
                prefill: try pool(try d.child("prefill"), role: .prefill, model: model),
                decode: try pool(try d.child("decode"), role: .decode, model: model)
            ), routing)
        case "colocated":
            return (.colocated(try pool(try d.child("unit"), role: .colocated, model: model)), routing)
        case let other:
            throw d.error("kind", "expected disaggregated or colocated, got '\(other)'")
        }
    }

    private func pool(_ p: YAMLReader, role: UnitRole, model: ModelArchitecture) throws -> PoolSpec {
        try p.onlyKeys([
            "units", "ep", "tp", "dp", "microBatches", "placement", "redundantExperts", "expertLoadImbalance", "maxBatchPerRank",
            "tokenBudgetPerRank", "memoryReserveFraction",
        ])
        let placement = try p.optionalString("placement") ?? "eplb"
        guard ["eplb", "in-order"].contains(placement) else { throw p.error("placement", "expected eplb or in-order, got '\(placement)'") }
        for key in ["units", "ep", "tp", "dp", "microBatches"] {
            if let v = try p.optionalInt(key), !(1...100_000).contains(v) { throw p.error(key, "expected a whole number from 1 to 100000, got \(v)") }
        }
        for (key, most) in [("maxBatchPerRank", 1_000_000), ("tokenBudgetPerRank", TraceLimits.tokens), ("redundantExperts", 100_000)] {
            if let v = try p.optionalInt(key), !((key == "redundantExperts" ? 0 : 1)...most).contains(v) {
                throw p.error(key, "expected a whole number from \(key == "redundantExperts" ? 0 : 1) to \(most), got \(v)")
            }
        }
        if let reserve = try p.optionalDouble("memoryReserveFraction"), !(0..<1).contains(reserve) {
            throw p.error("memoryReserveFraction", "expected a share from 0 up to (not including) 1, got \(reserve)")
        }
        let deployment = library.serving.deployment(
            for: model, phase: role == .decode ? .decode : .prefill, ep: try p.optionalInt("ep") ?? 1, tp: try p.optionalInt("tp") ?? 1,
            dp: try p.optionalInt("dp"), microBatches: try p.optionalInt("microBatches"),
            redundantExperts: try p.optionalInt("redundantExperts"), expertLoadImbalance: try p.optionalDouble("expertLoadImbalance"),
            balancer: placement == "eplb"
        )
        return PoolSpec(
            role: role, units: try p.int("units"), deployment: deployment,
            maxBatchPerRank: try p.optionalInt("maxBatchPerRank") ?? 256,
            tokenBudgetPerRank: try p.optionalInt("tokenBudgetPerRank") ?? 16_384,
            memoryReserveFraction: try p.optionalDouble("memoryReserveFraction") ?? 0.1
        )
    }

    private func nodeSchedule(_ s: YAMLReader) throws -> NodeSchedule {
        try s.onlyKeys(["utcOffset", "nodes"])
        let offset = try utcOffset(s)
        var points: [NodeSchedule.Point] = []
        for item in try s.items("nodes") {
            try item.onlyKeys(["at", "nodes"])
            let at = try item.string("at")
            guard let second = WallClock.secondOfDay(at) else { throw item.error("at", "expected a time of day like 06:30, got '\(at)'") }
            let nodes = try item.int("nodes")
            guard (1...100_000).contains(nodes) else { throw item.error("nodes", "expected from 1 to 100000 nodes, got \(nodes)") }
            points.append(.init(second: second, nodes: nodes))
        }
        guard !points.isEmpty else { throw s.error("nodes", "expected at least one {at, nodes} entry") }
        return NodeSchedule(points: points, utcOffsetSeconds: offset)
    }

    private func utcOffset(_ r: YAMLReader) throws -> Double {
        guard let text = try r.optionalString("utcOffset") else { return 0 }
        guard let offset = WallClock.utcOffsetSeconds(text) else { throw r.error("utcOffset", "expected +HH:MM or -HH:MM, got '\(text)'") }
        return offset
    }

    // MARK: - Workload

    private func workloadSource(_ w: YAMLReader, schedule: NodeSchedule?) throws -> WorkloadSource {
        try w.onlyKeys(["generator", "trace"])
        if w.has("trace") == w.has("generator") { throw w.error("", "expected exactly one of generator or trace") }
        if w.has("trace") {
            let t = try w.child("trace")
            try t.onlyKeys(["path", "format", "window", "rateScale", "timeScale", "tokenScale", "cachedFraction"])
            let path = resolve(try t.string("path"))
            let format: TraceFormat
            if t.has("format") {
                format = try t.choice("format", as: TraceFormat.self)
            } else if let guessed = TraceFormat.guess(fromFileName: path) {
                format = guessed
            } else {
                throw t.error("format", "missing, and the file name does not say; expected one of \(TraceFormat.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            var options = ReplayOptions()
            if t.has("window") {
                let win = try t.child("window")
                try win.onlyKeys(["from", "to"])
                options.windowStart = try win.optionalDouble("from") ?? 0
                options.windowEnd = try win.optionalDouble("to")
            }
            options.rateScale = try t.optionalDouble("rateScale") ?? 1
            options.timeScale = try t.optionalDouble("timeScale") ?? 1
            options.tokenScale = try t.optionalDouble("tokenScale") ?? 1
            options.cachedFraction = try t.optionalDouble("cachedFraction") ?? 0
            if let p = options.validate().first { throw t.error(p.field, p.message) }
            return .trace(path: path, format: format, options: options)
        }
        let g = try w.child("generator")
        try g.onlyKeys(["ratePerSecond", "outputTokensPerSecond", "arrivals", "dailyProfile", "utcOffset", "prompt", "output", "cachedFraction"])
        let prompt = try lengths(try g.child("prompt"), side: "prompt")
        let output = try lengths(try g.child("output"), side: "output")
        let rate: Double
        switch (try g.optionalDouble("ratePerSecond"), try g.optionalDouble("outputTokensPerSecond")) {
        case (let r?, nil): rate = r
        case (nil, let tokens?): rate = tokens / output.mean
        default: throw g.error("ratePerSecond", "expected exactly one of ratePerSecond or outputTokensPerSecond")
        }
        var arrivals = ArrivalProcess.poisson
        if g.has("arrivals") {
            let a = try g.child("arrivals")
            try a.onlyKeys(["process", "cv"])
            switch try a.string("process") {
            case "poisson": arrivals = .poisson
            case "gamma": arrivals = .gamma(cv: try a.double("cv"))
            case let other: throw a.error("process", "expected poisson or gamma, got '\(other)'")
            }
        }
        var profile = DailyProfile.flat
        if g.has("dailyProfile") {
            if let name = try? g.string("dailyProfile") {
                switch name {
                case "flat": profile = .flat
                case "schedule":
                    guard let schedule else { throw g.error("dailyProfile", "'schedule' needs the scenario's schedule section") }
                    profile = schedule.asDailyProfile
                default: throw g.error("dailyProfile", "expected flat, schedule or a list of {at, factor}, got '\(name)'")
                }
            } else {
                var points: [(second: Double, factor: Double)] = []
                for item in try g.items("dailyProfile") {
                    try item.onlyKeys(["at", "factor"])
                    let at = try item.string("at")
                    guard let second = WallClock.secondOfDay(at) else { throw item.error("at", "expected a time of day like 06:30, got '\(at)'") }
                    points.append((second, try item.double("factor")))
                }
                guard !points.isEmpty else { throw g.error("dailyProfile", "expected at least one {at, factor} entry") }
                profile = DailyProfile(points: points, utcOffsetSeconds: try utcOffset(g))
            }
        }
        let spec = GeneratorSpec(
            ratePerSecond: rate, arrivals: arrivals, profile: profile, prompt: prompt, output: output,
            cachedFraction: try g.optionalDouble("cachedFraction") ?? 0
        )
        if let p = spec.validate().first { throw g.error(p.field, p.message) }
        return .generator(spec)
    }

    private func lengths(_ d: YAMLReader, side: String) throws -> LengthDistribution {
        let kind = try d.string("distribution")
        let dist: LengthDistribution
        switch kind {
        case "fixed":
            try d.onlyKeys(["distribution", "tokens"])
            dist = .fixed(try d.int("tokens"))
        case "uniform":
            try d.onlyKeys(["distribution", "min", "max"])
            dist = .uniform(min: try d.int("min"), max: try d.int("max"))
        case "lognormal":
            try d.onlyKeys(["distribution", "mean", "sigma", "min", "max"])
            dist = .lognormal(mean: try d.double("mean"), sigma: try d.double("sigma"), min: try d.optionalInt("min") ?? 1, max: try d.optionalInt("max") ?? 131_072)
        case "empirical":
            try d.onlyKeys(["distribution", "trace", "format"])
            let path = resolve(try d.string("trace"))
            let format = d.has("format") ? try d.choice("format", as: TraceFormat.self) : (TraceFormat.guess(fromFileName: path) ?? .jouleCSV)
            let rows = try Catalog.loadTrace(at: path, format: format, skipBadLines: false).rows
            guard !rows.isEmpty else { throw d.error("trace", "the trace \(path) has no requests") }
            dist = .empirical(rows.map { side == "prompt" ? $0.promptTokens : $0.outputTokens })
        default:
            throw d.error("distribution", "expected fixed, uniform, lognormal or empirical, got '\(kind)'")
        }
        if let p = dist.validate().first { throw d.error(p.field, p.message) }
        return dist
    }

    // MARK: - Carbon

    private func carbonSeries(_ c: YAMLReader) throws -> CarbonSeries {
        try c.onlyKeys(["region", "signal", "gramsPerKWh", "series", "grid", "factor", "source"])
        let region = try c.string("region")
        let signal = c.has("signal") ? try c.choice("signal", as: CarbonSignal.self) : .average
        // The emission factor type (direct combustion or life cycle), as the source states it.
        let stated = c.has("factor") ? try c.choice("factor", as: EmissionFactorType.self) : nil
        switch (try c.optionalDouble("gramsPerKWh"), try c.optionalString("series"), c.has("grid")) {
        case (let g?, nil, false):
            guard PointChecker.Limits.intensity.contains(g) else { throw c.error("gramsPerKWh", "expected an intensity from 0 to 10000 gCO2e/kWh, got \(g)") }
            return .constant(
                CarbonIntensity(gramsPerKWh: g), region: region, signal: signal, source: try c.optionalString("source") ?? "scenario \(reader.file)",
                factor: stated ?? .unspecified
            )
        case (nil, let path?, false):
            var series = try Catalog.loadIntensityCSV(at: resolve(path), region: region, signal: signal, source: try c.optionalString("source") ?? "scenario \(reader.file)")
            series.metadata.factor = stated ?? .unspecified
            return series
        case (nil, nil, true):
            // The annual average shipped in Data/grids for the named grid region.
            let grid = try c.string("grid")
            guard let entry = try Catalog.loadGridDefaults(dataDirectory: dataDirectory).annual(region: grid, factor: stated) else {
                throw c.error("grid", "no annual average for grid '\(grid)'\(stated.map { " (\($0.rawValue))" } ?? "") in Data/grids/annual.yaml (see `joule carbon defaults`)")
            }
            // The factor type is in the series metadata (its label adds it): not repeated here.
            let source = "\(entry.source) annual" + (entry.year.map { " \($0)" } ?? "")
            return .constant(
                CarbonIntensity(gramsPerKWh: entry.gramsPerKWh), region: region, signal: .average, source: try c.optionalString("source") ?? source,
                factor: entry.factor
            )
        default:
            throw c.error("gramsPerKWh", "expected exactly one of gramsPerKWh (a constant), series (a CSV file) or grid (a region of Data/grids)")
        }
    }
}
