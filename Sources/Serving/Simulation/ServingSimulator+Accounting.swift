import Accounting

/// Running counts for the summary.
struct RunStatistics {
    var arrived = 0
    var finished = 0
    var inputTokens = 0
    var cachedTokens = 0
    var outputTokens = 0
    var steps = 0
    var prefillTokensServed = 0
    var outputTokensProduced = 0
    var ttft = QuantileSketch()
    var tpot = QuantileSketch()
    var e2e = QuantileSketch()
    var queueWait = QuantileSketch()
    var finishedFacilityJoules = 0.0
    var finishedCarbonGrams = 0.0
    var training = TrainingShare(tokens: 0, facilityJoules: 0, carbonGrams: 0, gpuSeconds: 0)
    var inFlightFacilityJoules = 0.0
    /// Cluster totals, from the intervals: IT joules in steps and idle, operational carbon, GPU-time.
    var clusterActive = Draw()
    var clusterIdle = Draw()
    var operationalCarbon = 0.0
    var gpuSeconds = 0.0
    var nodeSecondsByRole: [UnitRole: Double] = [:]
}

/// Energy accrual, interval closes and the attribution of idle energy; records and the summary.
extension ServingSimulator {
    func intensity(at t: Double) -> Double {
        carbon.intensity(atEpochSeconds: scenario.startEpochSeconds + t).gramsPerKWh
    }

    /// Adds what unit `u` drew from its last accrual up to `t` to its interval account and to the
    /// requests it was serving: idle draw, or the running step's draw shared by its batch.
    mutating func accrue(_ u: Int, to t: Double) {
        let dt = t - units[u].accruedUntil
        guard dt > 0, units[u].inService else {
            if units[u].accruedUntil < t { units[u].accruedUntil = t }
            return
        }
        let model = models[units[u].pool]
        let grams = intensity(at: units[u].accruedUntil)
        let gramsPerJoule = grams * pue / 3.6e6
        let gpuSeconds = Double(model.gpus) * dt
        units[u].account.inServiceSeconds += dt
        if !units[u].stepping {
            let gpu = model.idleGPUWatts * dt
            let host = model.idleHostWatts * dt
            units[u].account.idle += Draw(gpuJoules: gpu, hostJoules: host, carbonGrams: (gpu + host) * gramsPerJoule, gpuSeconds: gpuSeconds)
        } else {
            let gpu = units[u].stepGPUWatts * dt
            let host = units[u].stepHostWatts * dt
            let carbon = (gpu + host) * gramsPerJoule
            units[u].account.gpuActive += gpu
            units[u].account.hostActive += host
            units[u].account.activeCarbon += carbon
            units[u].account.activeGpuSeconds += gpuSeconds
            units[u].account.busySeconds += dt
            if units[u].stepIsPrefill {
                let total = Double(units[u].chunkTokens)
                units[u].account.weight += weigh(activeGPUJoules: gpu, requestSeconds: dt * Double(units[u].chunks.count))
                for (slot, tokens) in units[u].chunks {
                    let f = Double(tokens) / total
                    let share = Draw(
                        gpuJoules: gpu * f, hostJoules: host * f, carbonGrams: carbon * f,
                        gpuSeconds: gpuSeconds * f, stepSeconds: dt, intensitySeconds: dt * grams
                    )
                    flights[Int(slot)].direct += share
                    units[u].pieces.append((slot, weight(of: share)))
                }
            } else {
                let b = Double(units[u].stepBatch)
                units[u].account.weight += weigh(activeGPUJoules: gpu, requestSeconds: dt * b)
                units[u].totals += Draw(
                    gpuJoules: gpu / b, hostJoules: host / b, carbonGrams: carbon / b,
                    gpuSeconds: gpuSeconds / b, stepSeconds: dt, intensitySeconds: dt * grams
                )
            }
        }
        units[u].accruedUntil = t
    }

    /// The attribution policy's weight of a request's direct draw.
    func weight(of share: Draw) -> Double {
        weigh(activeGPUJoules: share.gpuJoules, requestSeconds: share.stepSeconds)
    }

    /// Closes the accounting interval ending at `t`: attributes each unit's idle energy to the
    /// requests it served in the interval (by the policy's weights, through `IdleAttribution`),
    /// emits the units' interval records, and writes the records of requests that finished in the
    /// interval.
    mutating func closeInterval(at t: Double, onRecord: (RequestRecord) -> Void, onInterval: (ClusterInterval) -> Void) {
        for u in units.indices where units[u].inService { accrue(u, to: t) }
        let (rates, carried) = IdleAttribution.rates(units.map(\.account.books), carry: carry)
        carry = carried
        for u in units.indices {
            let account = units[u].account
            if let rate = rates[u] {
                for (slot, weight) in units[u].pieces {
                    flights[Int(slot)].overhead += rate * weight
                }
                let a = weight(of: units[u].totals)
                for slot in units[u].batch {
                    let i = Int(slot)
                    flights[i].overhead += rate * (a - flights[i].mark)
                    flights[i].mark = a
                }
            }
            units[u].pieces.removeAll(keepingCapacity: true)
            if account.inServiceSeconds > 0 {
                record(interval: account, unit: u, start: intervalStart, end: t, onInterval: onInterval)
            }
            units[u].account = IntervalAccount()
        }
        intervalStart = t
        for slot in awaiting {
            let r = makeRecord(slot, inFlight: false)
            stats.finished += 1
            stats.inputTokens += r.promptTokens
            stats.cachedTokens += r.cachedTokens
            stats.outputTokens += r.outputTokens
            stats.finishedFacilityJoules += r.facilityJoules
            stats.finishedCarbonGrams += r.totalCarbonGrams
            if let t = r.training {
                stats.training.tokens += t.tokens
                stats.training.facilityJoules += t.facilityJoules
                stats.training.carbonGrams += t.carbonGrams
                stats.training.gpuSeconds += t.gpuSeconds
            }
            if let v = r.ttft { stats.ttft.add(v) }
            if let v = r.tpot { stats.tpot.add(v) }
            if let v = r.endToEnd { stats.e2e.add(v) }
            if let v = r.queueWait { stats.queueWait.add(v) }
            onRecord(r)
            recordsEmitted += 1
            freeSlots.append(slot)
        }
        awaiting.removeAll(keepingCapacity: true)
    }

    private mutating func record(interval a: IntervalAccount, unit u: Int, start: Double, end: Double, onInterval: (ClusterInterval) -> Void) {
        let nodes = models[units[u].pool].nodes
        stats.clusterActive.gpuJoules += a.gpuActive
        stats.clusterActive.hostJoules += a.hostActive
        stats.clusterIdle += a.idle
        stats.operationalCarbon += a.activeCarbon + a.idle.carbonGrams
        stats.gpuSeconds += a.activeGpuSeconds + a.idle.gpuSeconds
        stats.nodeSecondsByRole[units[u].role, default: 0] += a.inServiceSeconds * Double(nodes)
        intervalsEmitted += 1
        onInterval(ClusterInterval(
            unit: u, role: units[u].role, start: start, end: end, gpuActiveJoules: a.gpuActive, hostActiveJoules: a.hostActive,
            gpuIdleJoules: a.idle.gpuJoules, hostIdleJoules: a.idle.hostJoules, facilityJoules: a.itJoules * pue,
            operationalCarbonGrams: a.activeCarbon + a.idle.carbonGrams, gpuSeconds: a.activeGpuSeconds + a.idle.gpuSeconds,
            busyFraction: a.inServiceSeconds > 0 ? a.busySeconds / a.inServiceSeconds : 0, inServiceSeconds: a.inServiceSeconds, nodes: nodes
        ))
    }

    func makeRecord(_ slot: Int32, inFlight: Bool) -> RequestRecord {
        let f = flights[Int(slot)]
        let host = f.direct.hostJoules + f.overhead.hostJoules
        let it = f.direct.gpuJoules + f.overhead.gpuJoules + host
        let facility = it * pue
        let lifetime = (inFlight ? now : f.finish) - f.request.arrival
        var record = RequestRecord(
            id: f.request.id, inFlight: inFlight, arrival: f.request.arrival,
            prefillStart: f.prefillStart >= 0 ? f.prefillStart : nil,
            firstToken: f.firstToken >= 0 ? f.firstToken : nil,
            finish: inFlight ? nil : f.finish,
            prefillUnit: f.prefillUnit >= 0 ? Int(f.prefillUnit) : nil,
            decodeUnit: f.decodeUnit >= 0 ? Int(f.decodeUnit) : nil,
            promptTokens: f.request.promptTokens, cachedTokens: f.request.cachedTokens, outputTokens: f.request.outputTokens,
            gpuActiveJoules: f.direct.gpuJoules, gpuIdleJoules: f.overhead.gpuJoules, hostJoules: host,
            facilityOverheadJoules: facility - it, facilityJoules: facility,
            gpuSeconds: f.direct.gpuSeconds + f.overhead.gpuSeconds,
            intensityGramsPerKWh: f.direct.stepSeconds > 0 ? f.direct.intensitySeconds / f.direct.stepSeconds : intensity(at: f.request.arrival),
            operationalCarbonGrams: f.direct.carbonGrams + f.overhead.carbonGrams,
            embodiedCarbonGrams: scenario.embodied.share(gpuSeconds: f.direct.gpuSeconds + f.overhead.gpuSeconds).grams,
            meanPowerWatts: lifetime > 0 ? facility / lifetime : 0
        )
        if !inFlight, let training = scenario.training {
            record.training = training.share(tokens: Double(f.request.promptTokens + f.request.outputTokens))
        }
        return record
    }

    /// Settles and writes the requests still in the system at the end, in id order.
    mutating func drainInFlight(onRecord: (RequestRecord) -> Void) -> Int {
        var live: [Int32] = []
        var free = Set(freeSlots)
        free.formUnion(awaiting)
        for slot in flights.indices.map(Int32.init) where !free.contains(slot) { live.append(slot) }
        for u in units.indices {
            for slot in units[u].batch {
                flights[Int(slot)].direct += units[u].totals - flights[Int(slot)].joinTotals
                flights[Int(slot)].joinTotals = units[u].totals
            }
        }
        live.sort { flights[Int($0)].request.id < flights[Int($1)].request.id }
        for slot in live {
            let r = makeRecord(slot, inFlight: true)
            stats.inFlightFacilityJoules += r.facilityJoules
            onRecord(r)
            recordsEmitted += 1
            freeSlots.append(slot)
        }
        return live.count
    }

    /// Where the books stand now (right after an interval close, or at the end of a run): what the
    /// emitted records and intervals are, what the requests still held have drawn, and what idle
    /// energy waits for an interval with work. Summed over the requests held, O(requests held).
    func checkpoint() -> Checkpoint {
        var held = Set(freeSlots)
        held.formUnion(awaiting)
        var pendingIT = 0.0
        var pending = 0
        for slot in flights.indices where !held.contains(Int32(slot)) {
            let f = flights[slot]
            pending += 1
            pendingIT += f.direct.gpuJoules + f.direct.hostJoules + f.overhead.gpuJoules + f.overhead.hostJoules
        }
        for u in units.indices {
            for slot in units[u].batch {
                let open = units[u].totals - flights[Int(slot)].joinTotals
                pendingIT += open.gpuJoules + open.hostJoules
            }
        }
        return Checkpoint(
            time: now, records: recordsEmitted, intervals: intervalsEmitted, pendingRequests: pending,
            pendingFacilityJoules: pendingIT * pue,
            unattributedFacilityJoules: (carry.gpuJoules + carry.hostJoules) * pue
        )
    }

    func summary(inFlight: Int) -> RunSummary {
        let s = stats
        let active = s.clusterActive, idle = s.clusterIdle
        let it = active.gpuJoules + active.hostJoules + idle.gpuJoules + idle.hostJoules
        let facility = it * pue
        let unattributed = (carry.gpuJoules + carry.hostJoules) * pue
        let accounted = s.finishedFacilityJoules + s.inFlightFacilityJoules + unattributed
        let embodied = scenario.embodied.share(gpuSeconds: s.gpuSeconds).grams
        let prefillRole: UnitRole = models[entryPool].pool.role
        let decodeRole: UnitRole = models[decodePool].pool.role
        let prefillNodeSeconds = s.nodeSecondsByRole[prefillRole] ?? 0
        let decodeNodeSeconds = s.nodeSecondsByRole[decodeRole] ?? 0
        let nodeSeconds = s.nodeSecondsByRole.values.reduce(0, +)
        var summary = RunSummary(
            scenario: scenario.name, seed: scenario.seed, requests: s.finished, inFlightRequests: inFlight,
            inputTokens: s.inputTokens, cachedTokens: s.cachedTokens, outputTokens: s.outputTokens, simulatedSeconds: now,
            prefillTokensPerSecondPerNode: prefillNodeSeconds > 0 ? Double(s.prefillTokensServed) / prefillNodeSeconds : 0,
            decodeTokensPerSecondPerNode: decodeNodeSeconds > 0 ? Double(s.outputTokensProduced) / decodeNodeSeconds : 0,
            ttftP50: s.ttft.quantile(0.5), ttftP99: s.ttft.quantile(0.99),
            tpotP50: s.tpot.quantile(0.5), tpotP99: s.tpot.quantile(0.99),
            e2eP50: s.e2e.quantile(0.5), e2eP99: s.e2e.quantile(0.99),
            queueWaitP50: s.queueWait.quantile(0.5), queueWaitP99: s.queueWait.quantile(0.99),
            energyKWh: facility / 3.6e6, itEnergyKWh: it / 3.6e6,
            gpuActiveKWh: active.gpuJoules / 3.6e6, gpuIdleKWh: idle.gpuJoules / 3.6e6, hostKWh: (active.hostJoules + idle.hostJoules) / 3.6e6,
            facilityOverheadKWh: (facility - it) / 3.6e6,
            carbonKg: (s.operationalCarbon + embodied) / 1e3, operationalCarbonKg: s.operationalCarbon / 1e3, embodiedCarbonKg: embodied / 1e3,
            meanIntensityGramsPerKWh: facility > 0 ? s.operationalCarbon / (facility / 3.6e6) : 0,
            joulesPerOutputToken: s.outputTokens > 0 ? s.finishedFacilityJoules / Double(s.outputTokens) : 0,
            whPerRequest: s.finished > 0 ? s.finishedFacilityJoules / 3600 / Double(s.finished) : 0,
            carbonGramsPerRequest: s.finished > 0 ? s.finishedCarbonGrams / Double(s.finished) : 0,
            inFlightEnergyKWh: s.inFlightFacilityJoules / 3.6e6, unattributedEnergyKWh: unattributed / 3.6e6,
            conservationResidual: facility > 0 ? abs(accounted - facility) / facility : 0,
            meanNodes: now > 0 ? nodeSeconds / now : 0, gpuHours: s.gpuSeconds / 3600,
            steps: s.steps, stepShapesCosted: models.map(\.memoisedShapes).reduce(0, +), wallSeconds: 0,
            attributionPolicy: scenario.attribution.id, carbonRegion: scenario.carbon.region,
            carbonSignal: scenario.carbon.signal.rawValue
        )
        summary.experts = scenario.experts
        // The series in force at the end (a daemon may have swapped in live data during the run).
        summary.carbonSource = carbon.metadata.sourceLabel
        summary.carbonFactor = carbon.metadata.factor.rawValue
        summary.embodiedModel = "\(scenario.embodied.id) (\(scenario.embodied.source))"
        summary.pue = pue
        if let t = scenario.training {
            summary.training = TrainingTotals(
                plan: t.plan, servedTokensOverLife: t.servedTokens, lifeMonths: t.lifeMonths, grid: t.grid, tokensCharged: s.training.tokens,
                facilityKWh: s.training.facilityJoules / 3.6e6, carbonKg: s.training.carbonGrams / 1e3, gpuHours: s.training.gpuSeconds / 3600,
                shareOfFootprint: s.training.tokens / t.servedTokens,
                carbonGramsPerRequest: s.finished > 0 ? s.training.carbonGrams / Double(s.finished) : 0
            )
        }
        return summary
    }
}
