import Accounting

/// How a step's measured energy is split over the requests in it.
public enum ActiveSplit: String, CaseIterable, Hashable, Sendable, Codable {
    /// By the tokens each processed in the slice (prefill tokens less cached ones over the prefill,
    /// output tokens after the first over the decode).
    case tokens
    /// In equal shares per request-second on the engine, whatever the tokens.
    case time
}

/// What turns measured GPU energy into facility energy and carbon: the host model, the site's PUE,
/// the grid, the embodied model and the attribution policy.
public struct MeasuredSetup: Sendable {
    /// Host draw per GPU with the GPUs idle (the node's host idle ÷ its GPUs): modelled, since no
    /// host meter is read.
    public var hostIdleWattsPerGPU: Double
    /// Host watts added per watt a GPU draws above its idle.
    public var hostPerGPUWatt: Double
    /// The GPU's idle draw (the node spec's), from which the host model rises.
    public var gpuIdleWatts: Double
    public var pue: Double
    public var carbon: CarbonSeries
    public var embodied: EmbodiedModel
    public var policy: any AttributionPolicy
    /// Accounting interval, seconds: idle energy is shared within each.
    public var intervalSeconds: Double
    /// GPUs of the engine that served requests whose log does not name any (default: every GPU in the telemetry).
    public var engineGPUs: [Int]?
    public var activeSplit: ActiveSplit
    /// Metered host power, when given: per GPU, the node's track and how many GPUs share it.
    /// Such GPUs' host energy is their share of the node's reading instead of the host model's.
    public var meteredHost: [Int: (track: GPUEnergyTrack, gpus: Int)] = [:]
    /// GPUs per node, for the node count intervals carry (the cluster's nodes, on its first unit's row).
    public var gpusPerNode = 8

    public init(
        hostIdleWattsPerGPU: Double, hostPerGPUWatt: Double, gpuIdleWatts: Double, pue: Double, carbon: CarbonSeries, embodied: EmbodiedModel,
        policy: any AttributionPolicy, intervalSeconds: Double, engineGPUs: [Int]? = nil, activeSplit: ActiveSplit = .tokens
    ) {
        self.activeSplit = activeSplit
        self.hostIdleWattsPerGPU = hostIdleWattsPerGPU
        self.hostPerGPUWatt = hostPerGPUWatt
        self.gpuIdleWatts = gpuIdleWatts
        self.pue = pue
        self.carbon = carbon
        self.embodied = embodied
        self.policy = policy
        self.intervalSeconds = intervalSeconds
        self.engineGPUs = engineGPUs
    }
}

/// A measured run's books: every request's record and every engine's intervals, as the simulator
/// would emit them, and the totals they add up to.
public struct MeasuredBooks: Sendable {
    /// Records in arrival order; `id` is the log's `request_id` when every id in the log is a
    /// distinct whole number, else `MeasuredRequestID.number(for:)` of it (the request's place in
    /// arrival order if two ids would share a number, which is reported).
    public var records: [RequestRecord]
    /// The log's request ids, by record.
    public var requestIds: [String]
    public var intervals: [ClusterInterval]
    /// Idle energy of the run's last intervals in which no engine worked (facility joules), left unattributed.
    public var unattributedFacilityJoules: Double
    /// The engines: the GPU sets requests ran on (GPUs no request named are units of their own).
    public var engines: [[Int]]
    public var start: Double
    public var end: Double
    /// Measured GPU energy over the run, and facility energy with the modelled host and PUE.
    public var gpuJoules: Double
    public var facilityJoules: Double
    /// |intervals − records − unattributed| ÷ intervals, facility energy.
    public var conservationResidual: Double
    public var issues: [MeasuredIssue]
    /// Power, tokens and latency by engine size and batch (requests on the engine), busy slices only.
    public var batchProfile: [BatchProfileBin]
}

/// Splits measured GPU energy over the requests that were on each GPU's engine.
///
/// An engine is a set of GPUs requests ran on together (request GPU sets that overlap are merged).
/// Time is cut at every accounting-interval boundary and at every request's start, first token and
/// finish on the engine; in each slice the engine's GPUs drew what their tracks say. A slice with
/// requests on the engine is a step: its energy is their direct (active) draw, split by the tokens
/// each processed in it (prompt tokens less cached ones spread over arrival-or-scheduling to first
/// token, output tokens after the first spread over first token to finish; equal parts when none
/// has a count). A slice with none is idle, shared by the policy's interval rule. Host energy is
/// modelled per GPU from its measured draw, and PUE applied; carbon is the facility energy at the
/// grid's intensity at the slice's middle.
public enum MeasuredAttribution {
    struct Phase {
        var request: Int
        var start: Double
        var end: Double
        var tokensPerSecond: Double
        /// Output tokens (after the first token), not prompt tokens.
        var decode: Bool
    }

    public static func attribute(_ telemetry: PowerTelemetry, _ log: RequestLog, setup: MeasuredSetup) -> MeasuredBooks {
        var issues: [MeasuredIssue] = []
        let tracks = Dictionary(uniqueKeysWithValues: telemetry.tracks.map { ($0.gpu, $0) })
        let start = telemetry.tracks.map(\.start).min()!
        let end = telemetry.tracks.map(\.end).max()!
        let requests = log.requests
        let defaultGPUs = setup.engineGPUs ?? tracks.keys.sorted()

        // Engines: union of overlapping GPU sets; GPUs no request names stand alone.
        var parent = Dictionary(uniqueKeysWithValues: tracks.keys.map { ($0, $0) })
        func find(_ g: Int) -> Int {
            var x = g
            while parent[x]! != x { x = parent[x]! }
            return x
        }
        var gpusOf: [[Int]] = []
        var missingGPUs: Set<Int> = []
        for r in requests {
            let named = r.gpus.isEmpty ? defaultGPUs : r.gpus
            let known = named.filter { tracks[$0] != nil }
            missingGPUs.formUnion(named.filter { tracks[$0] == nil })
            gpusOf.append(known)
            for g in known.dropFirst() { parent[find(g)] = find(known[0]) }
        }
        if !missingGPUs.isEmpty {
            issues.append(MeasuredIssue(.uncovered, "requests name GPUs the telemetry does not have: \(missingGPUs.sorted().map(String.init).joined(separator: ", ")); their energy is not measured"))
        }
        var engineOfRoot: [Int: Int] = [:]
        var engines: [[Int]] = []
        for g in tracks.keys.sorted() {
            let root = find(g)
            if let e = engineOfRoot[root] { engines[e].append(g) } else {
                engineOfRoot[root] = engines.count
                engines.append([g])
            }
        }
        let engineOf = gpusOf.map { $0.first.map { engineOfRoot[find($0)]! } }

        // Phases per engine.
        var phases = Array(repeating: [Phase](), count: engines.count)
        for (i, r) in requests.enumerated() {
            guard let e = engineOf[i] else {
                issues.append(MeasuredIssue(.uncovered, subject: r.id, "line \(r.line): on no GPU the telemetry has; recorded with no energy"))
                continue
            }
            let s = max(r.scheduled ?? r.arrival, start)
            let f = min(r.finish ?? end, end)
            if (r.finish ?? end) <= start || r.arrival >= end {
                issues.append(MeasuredIssue(.uncovered, subject: r.id, "line \(r.line): outside the telemetry's time range (\(WallClock.fractionalString(start)) to \(WallClock.fractionalString(end))); recorded with no energy"))
                continue
            }
            if r.arrival < start || (r.finish ?? end) > end {
                issues.append(MeasuredIssue(.uncovered, subject: r.id, "line \(r.line): partly outside the telemetry's time range; only the covered part is counted"))
            }
            let prefillTokens = Double(max(0, (r.promptTokens ?? 0) - (r.cachedTokens ?? 0)))
            let decodeTokens = Double(max(0, (r.outputTokens ?? 0) - 1))
            let rawStart = r.scheduled ?? r.arrival
            if let ft = r.firstToken {
                if ft > rawStart {
                    let rate = prefillTokens / (ft - rawStart)
                    if min(ft, f) > s { phases[e].append(Phase(request: i, start: s, end: min(ft, f), tokensPerSecond: rate, decode: false)) }
                }
                let decodeEnd = r.finish ?? end
                if decodeEnd > ft, f > max(ft, s) {
                    phases[e].append(Phase(request: i, start: max(ft, s), end: f, tokensPerSecond: decodeTokens / (decodeEnd - ft), decode: true))
                }
            } else if f > s {
                let whole = (r.finish ?? end) - rawStart
                phases[e].append(Phase(request: i, start: s, end: f, tokensPerSecond: whole > 0 ? (prefillTokens + decodeTokens) / whole : 0, decode: false))
            }
        }

        var book = AttributionBook<Int>(policy: setup.policy)
        var perRequest = Array(repeating: AttributedDraw(), count: requests.count)
        var intervals: [ClusterInterval] = []
        var cursor = Array(repeating: 0, count: engines.count)  // next phase to open, per engine (phases sorted by start)
        var open = Array(repeating: [Phase](), count: engines.count)
        for e in engines.indices { phases[e].sort { $0.start < $1.start } }
        let interval = setup.intervalSeconds
        var profile: [String: BatchProfileBin] = [:]
        // Engines may share a node: the cluster's nodes are counted once, on the first engine's rows.
        let clusterNodes = (tracks.count + setup.gpusPerNode - 1) / max(setup.gpusPerNode, 1)
        var t0 = start
        while t0 < end {
            let t1 = min(t0 + interval, end)
            var busy = Array(repeating: 0.0, count: engines.count)
            for e in engines.indices {
                var a = t0
                while a < t1 {
                    // Open phases starting by a; drop those ended.
                    while cursor[e] < phases[e].count, phases[e][cursor[e]].start <= a {
                        open[e].append(phases[e][cursor[e]])
                        cursor[e] += 1
                    }
                    open[e].removeAll { $0.end <= a }
                    var b = t1
                    if cursor[e] < phases[e].count { b = min(b, phases[e][cursor[e]].start) }
                    for p in open[e] { b = min(b, p.end) }
                    let draw = slice(engines[e], from: a, to: b, tracks: tracks, setup: setup)
                    if open[e].isEmpty {
                        book.idle(unit: e, draw: draw)
                    } else {
                        busy[e] += b - a
                        var weights: [Int: Double] = [:]
                        var prefill = 0.0, output = 0.0
                        for p in open[e] {
                            if p.decode { output += p.tokensPerSecond * (b - a) } else { prefill += p.tokensPerSecond * (b - a) }
                        }
                        let batch = Set(open[e].map(\.request)).count
                        var bin = BatchProfileBin(engineGPUs: engines[e].count, batch: batch)
                        let key = "\(bin.engineGPUs)/\(bin.minBatch)"
                        bin = profile[key] ?? bin
                        bin.seconds += b - a
                        bin.batchSeconds += Double(batch) * (b - a)
                        bin.gpuJoules += draw.gpuJoules
                        bin.prefillTokens += prefill
                        bin.outputTokens += output
                        profile[key] = bin
                        for p in open[e] { weights[p.request, default: 0] += (setup.activeSplit == .tokens ? p.tokensPerSecond : 1) * (b - a) }
                        let total = weights.values.reduce(0, +)
                        let parts = weights.keys.sorted().map { ($0, total > 0 ? weights[$0]! / total : 1 / Double(weights.count)) }
                        book.step(unit: e, draw: draw, seconds: b - a, requests: parts)
                    }
                    a = b
                }
            }
            let (closed, units) = book.close()
            for (r, d) in closed { perRequest[r].direct += d.direct; perRequest[r].idle += d.idle }
            for e in units.keys.sorted() {
                let d = units[e]!
                let it = d.total.gpuJoules + d.total.hostJoules
                intervals.append(ClusterInterval(
                    unit: e, role: .colocated, start: t0 - start, end: t1 - start, gpuActiveJoules: d.direct.gpuJoules, hostActiveJoules: d.direct.hostJoules,
                    gpuIdleJoules: d.idle.gpuJoules, hostIdleJoules: d.idle.hostJoules, facilityJoules: it * setup.pue,
                    operationalCarbonGrams: d.total.carbonGrams, gpuSeconds: d.total.gpuSeconds, busyFraction: t1 > t0 ? busy[e] / (t1 - t0) : 0,
                    inServiceSeconds: t1 - t0, nodes: e == 0 ? clusterNodes : 0
                ))
            }
            t0 = t1
        }

        // Records, in arrival order.
        var ids = requests.compactMap { Int($0.id) }
        if ids.count != requests.count || Set(ids).count != requests.count {
            ids = requests.map { MeasuredRequestID.number(for: $0.id) }
            if Set(ids).count != ids.count {
                issues.append(MeasuredIssue(.skippedLine, "two request ids share a number: requests are numbered by arrival order instead (`joule audit request` takes those numbers)"))
                ids = Array(requests.indices)
            }
        }
        var records: [RequestRecord] = []
        records.reserveCapacity(requests.count)
        for (i, r) in requests.enumerated() {
            let d = perRequest[i].total
            let it = d.gpuJoules + d.hostJoules
            let facility = it * setup.pue
            let until = min(r.finish ?? end, end)
            let lifetime = until - r.arrival
            records.append(RequestRecord(
                id: ids[i], inFlight: r.finish == nil || r.finish! > end, arrival: r.arrival - start,
                prefillStart: r.scheduled.map { $0 - start }, firstToken: r.firstToken.map { $0 - start }, finish: r.finish.map { $0 - start },
                prefillUnit: engineOf[i], decodeUnit: engineOf[i], promptTokens: r.promptTokens ?? 0, cachedTokens: r.cachedTokens ?? 0,
                outputTokens: r.outputTokens ?? 0, gpuActiveJoules: perRequest[i].direct.gpuJoules, gpuIdleJoules: perRequest[i].idle.gpuJoules,
                hostJoules: d.hostJoules, facilityOverheadJoules: facility - it, facilityJoules: facility, gpuSeconds: d.gpuSeconds,
                intensityGramsPerKWh: facility > 0 ? d.carbonGrams / (facility / 3.6e6) : 0, operationalCarbonGrams: d.carbonGrams,
                embodiedCarbonGrams: setup.embodied.share(gpuSeconds: d.gpuSeconds).grams,
                meanPowerWatts: lifetime > 0 ? facility / lifetime : 0
            ))
        }
        let intervalFacility = intervals.reduce(0) { $0 + $1.facilityJoules }
        let recordFacility = records.reduce(0) { $0 + $1.facilityJoules }
        let unattributed = (book.carried.gpuJoules + book.carried.hostJoules) * setup.pue
        let residual = intervalFacility > 0 ? abs(intervalFacility - recordFacility - unattributed) / intervalFacility : 0
        return MeasuredBooks(
            records: records, requestIds: requests.map(\.id), intervals: intervals, unattributedFacilityJoules: unattributed, engines: engines,
            start: start, end: end, gpuJoules: telemetry.totalJoules, facilityJoules: intervalFacility, conservationResidual: residual,
            issues: telemetry.issues + log.issues + issues,
            batchProfile: profile.values.sorted { ($0.engineGPUs, $0.minBatch) < ($1.engineGPUs, $1.minBatch) }
        )
    }

    /// What an engine's GPUs drew over [a, b]: measured GPU energy, modelled host, carbon at the facility.
    static func slice(_ gpus: [Int], from a: Double, to b: Double, tracks: [Int: GPUEnergyTrack], setup: MeasuredSetup) -> Draw {
        var gpu = 0.0
        var host = 0.0
        let seconds = b - a
        var meteredServer = 0.0, meteredGPUs = 0.0
        for g in gpus {
            let e = tracks[g]!.energy(from: a, to: b)
            gpu += e
            if let metered = setup.meteredHost[g] {
                // The node's reading is the whole server, GPUs included: its share for this GPU, less the GPU's own draw.
                meteredServer += metered.track.energy(from: a, to: b) / Double(metered.gpus)
                meteredGPUs += e
            } else {
                host += setup.hostIdleWattsPerGPU * seconds + setup.hostPerGPUWatt * max(0, e - setup.gpuIdleWatts * seconds)
            }
        }
        host += max(0, meteredServer - meteredGPUs)
        let facility = (gpu + host) * setup.pue
        let intensity = setup.carbon.intensity(atEpochSeconds: (a + b) / 2).gramsPerKWh
        return Draw(gpuJoules: gpu, hostJoules: host, carbonGrams: facility / 3.6e6 * intensity, gpuSeconds: Double(gpus.count) * seconds)
    }
}

/// The number a measured request is stored under when its log's ids are not whole numbers (vLLM's
/// `cmpl-…`): the first 53 bits of its id's FNV-1a hash, so `joule audit request cmpl-…` finds it
/// without a table of names. Deterministic across runs and machines.
public enum MeasuredRequestID {
    public static func number(for id: String) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in id.utf8 {
            h ^= UInt64(b)
            h = h &* 0x0000_0100_0000_01b3
        }
        return Int(h >> 11)
    }
}
