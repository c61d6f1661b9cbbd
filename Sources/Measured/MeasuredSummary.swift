import Accounting
import Serving

extension MeasuredBooks {
    /// The run's summary in the simulator's terms (`joule simulate --json`'s fields), marked measured.
    public func summary(name: String, setup: MeasuredSetup) -> RunSummary {
        var ttft = QuantileSketch(), tpot = QuantileSketch(), e2e = QuantileSketch(), queue = QuantileSketch()
        var finished = 0, inputTokens = 0, cachedTokens = 0, outputTokens = 0
        var finishedFacility = 0.0, finishedCarbon = 0.0, inFlightFacility = 0.0, embodied = 0.0, gpuSeconds = 0.0
        for r in records {
            embodied += r.embodiedCarbonGrams
            if r.inFlight {
                inFlightFacility += r.facilityJoules
                continue
            }
            finished += 1
            inputTokens += r.promptTokens
            cachedTokens += r.cachedTokens
            outputTokens += r.outputTokens
            finishedFacility += r.facilityJoules
            finishedCarbon += r.operationalCarbonGrams + r.embodiedCarbonGrams
            r.ttft.map { ttft.add($0) }
            r.tpot.map { tpot.add($0) }
            r.endToEnd.map { e2e.add($0) }
            r.queueWait.map { queue.add($0) }
        }
        var active = Draw(), idle = Draw(), carbon = 0.0
        for i in intervals {
            active.gpuJoules += i.gpuActiveJoules
            active.hostJoules += i.hostActiveJoules
            idle.gpuJoules += i.gpuIdleJoules
            idle.hostJoules += i.hostIdleJoules
            carbon += i.operationalCarbonGrams
            gpuSeconds += i.gpuSeconds
        }
        let it = active.gpuJoules + active.hostJoules + idle.gpuJoules + idle.hostJoules
        let facility = it * setup.pue
        let clusterEmbodied = setup.embodied.share(gpuSeconds: gpuSeconds).grams
        let seconds = end - start
        var s = RunSummary(
            scenario: name, seed: 0, requests: finished, inFlightRequests: records.count - finished,
            inputTokens: inputTokens, cachedTokens: cachedTokens, outputTokens: outputTokens, simulatedSeconds: seconds,
            prefillTokensPerSecondPerNode: 0, decodeTokensPerSecondPerNode: 0,
            ttftP50: ttft.quantile(0.5), ttftP99: ttft.quantile(0.99), tpotP50: tpot.quantile(0.5), tpotP99: tpot.quantile(0.99),
            e2eP50: e2e.quantile(0.5), e2eP99: e2e.quantile(0.99), queueWaitP50: queue.quantile(0.5), queueWaitP99: queue.quantile(0.99),
            energyKWh: facility / 3.6e6, itEnergyKWh: it / 3.6e6, gpuActiveKWh: active.gpuJoules / 3.6e6, gpuIdleKWh: idle.gpuJoules / 3.6e6,
            hostKWh: (active.hostJoules + idle.hostJoules) / 3.6e6, facilityOverheadKWh: (facility - it) / 3.6e6,
            carbonKg: (carbon + clusterEmbodied) / 1e3, operationalCarbonKg: carbon / 1e3, embodiedCarbonKg: clusterEmbodied / 1e3,
            meanIntensityGramsPerKWh: facility > 0 ? carbon / (facility / 3.6e6) : 0,
            joulesPerOutputToken: outputTokens > 0 ? finishedFacility / Double(outputTokens) : 0,
            whPerRequest: finished > 0 ? finishedFacility / 3600 / Double(finished) : 0,
            carbonGramsPerRequest: finished > 0 ? finishedCarbon / Double(finished) : 0,
            inFlightEnergyKWh: inFlightFacility / 3.6e6, unattributedEnergyKWh: unattributedFacilityJoules / 3.6e6,
            conservationResidual: conservationResidual, meanNodes: 0, gpuHours: gpuSeconds / 3600, steps: 0, stepShapesCosted: 0,
            wallSeconds: 0, attributionPolicy: setup.policy.id, carbonRegion: setup.carbon.region, carbonSignal: setup.carbon.signal.rawValue
        )
        s.carbonSource = setup.carbon.metadata.sourceLabel
        s.carbonFactor = setup.carbon.metadata.factor.rawValue
        s.embodiedModel = "\(setup.embodied.id) (\(setup.embodied.source))"
        s.pue = setup.pue
        s.mode = "measured"
        s.measuredBatches = batchProfile
        return s
    }
}
