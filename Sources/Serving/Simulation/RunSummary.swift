import Accounting
/// What a run served and what it cost, as `joule simulate` reports it.
///
/// Latencies (`ttft…`, `tpot…`, `e2e…`, `queueWait…`) are seconds, from a bounded-memory sketch
/// accurate to 0.5 %. `energyKWh` is the facility energy of every unit in service over the run;
/// `conservationResidual` is |Σ request energy + in-flight + unattributed − cluster energy| ÷ cluster energy.
public struct RunSummary: Hashable, Sendable, Codable {
    public var scenario: String
    public var seed: UInt64
    /// Requests that finished.
    public var requests: Int
    /// Requests still in the system when the run ended.
    public var inFlightRequests: Int
    /// Prompt tokens of the finished requests (cached ones included), and of those, cached.
    public var inputTokens: Int
    public var cachedTokens: Int
    /// Output tokens of the finished requests.
    public var outputTokens: Int
    public var simulatedSeconds: Double
    /// Prompt tokens served per second per prefill node (per node of the pool doing prefill).
    public var prefillTokensPerSecondPerNode: Double
    /// Output tokens produced per second per decode node.
    public var decodeTokensPerSecondPerNode: Double
    public var ttftP50: Double?
    public var ttftP99: Double?
    public var tpotP50: Double?
    public var tpotP99: Double?
    public var e2eP50: Double?
    public var e2eP99: Double?
    public var queueWaitP50: Double?
    public var queueWaitP99: Double?
    /// Facility energy of the cluster over the run.
    public var energyKWh: Double
    /// IT energy (GPUs and hosts) of the cluster.
    public var itEnergyKWh: Double
    public var gpuActiveKWh: Double
    public var gpuIdleKWh: Double
    public var hostKWh: Double
    public var facilityOverheadKWh: Double
    /// Operational plus embodied emissions of the cluster.
    public var carbonKg: Double
    public var operationalCarbonKg: Double
    public var embodiedCarbonKg: Double
    /// Energy-weighted grid intensity over the run, gCO₂e/kWh.
    public var meanIntensityGramsPerKWh: Double
    /// Finished requests' facility energy per output token.
    public var joulesPerOutputToken: Double
    /// Finished requests' mean facility energy, in Wh.
    public var whPerRequest: Double
    /// Finished requests' mean total carbon, in g.
    public var carbonGramsPerRequest: Double
    /// Energy of requests in flight at the end (part of the conservation sum).
    public var inFlightEnergyKWh: Double
    /// Idle energy no request could carry (the cluster did no work after it).
    public var unattributedEnergyKWh: Double
    public var conservationResidual: Double
    /// Mean nodes in service, and GPU-hours.
    public var meanNodes: Double
    public var gpuHours: Double
    /// Batch steps simulated, and distinct step shapes the cost model evaluated.
    public var steps: Int
    public var stepShapesCosted: Int
    /// Wall-clock time of the simulation (the only field that differs between identical runs).
    public var wallSeconds: Double
    public var attributionPolicy: String
    public var carbonRegion: String
    public var carbonSignal: String
    /// Expert routing and pruning, when the scenario models them.
    public var experts: MoERoutingReport? = nil
    /// The carbon-intensity series' source label (source[/factor][/forecast]).
    public var carbonSource: String? = nil
    /// The intensity's emission factor type: direct (combustion), lifecycle or unspecified. Scope 2
    /// location-based takes direct factors; life-cycle figures are reported apart.
    public var carbonFactor: String? = nil
    /// The embodied model's id and source, and the site's PUE, for disclosures.
    public var embodiedModel: String? = nil
    public var pue: Double? = nil
    /// The finished requests' shares of the model's training footprint (when the scenario names a
    /// plan), summed; beside operational and embodied carbon, never inside them.
    public var training: TrainingTotals? = nil
    /// `measured` for a run recorded from real telemetry and request logs (`joule measure`);
    /// absent for simulated runs.
    public var mode: String? = nil
    /// A measured run's power, tokens and latency by engine size and batch.
    public var measuredBatches: [BatchProfileBin]? = nil

    /// Every field without a default, in declaration order (the simulator's, and measured runs').
    public init(
        scenario: String, seed: UInt64, requests: Int, inFlightRequests: Int, inputTokens: Int, cachedTokens: Int, outputTokens: Int,
        simulatedSeconds: Double, prefillTokensPerSecondPerNode: Double, decodeTokensPerSecondPerNode: Double, ttftP50: Double?,
        ttftP99: Double?, tpotP50: Double?, tpotP99: Double?, e2eP50: Double?, e2eP99: Double?, queueWaitP50: Double?,
        queueWaitP99: Double?, energyKWh: Double, itEnergyKWh: Double, gpuActiveKWh: Double, gpuIdleKWh: Double, hostKWh: Double,
        facilityOverheadKWh: Double, carbonKg: Double, operationalCarbonKg: Double, embodiedCarbonKg: Double,
        meanIntensityGramsPerKWh: Double, joulesPerOutputToken: Double, whPerRequest: Double, carbonGramsPerRequest: Double,
        inFlightEnergyKWh: Double, unattributedEnergyKWh: Double, conservationResidual: Double, meanNodes: Double, gpuHours: Double,
        steps: Int, stepShapesCosted: Int, wallSeconds: Double, attributionPolicy: String, carbonRegion: String, carbonSignal: String
    ) {
        self.scenario = scenario
        self.seed = seed
        self.requests = requests
        self.inFlightRequests = inFlightRequests
        self.inputTokens = inputTokens
        self.cachedTokens = cachedTokens
        self.outputTokens = outputTokens
        self.simulatedSeconds = simulatedSeconds
        self.prefillTokensPerSecondPerNode = prefillTokensPerSecondPerNode
        self.decodeTokensPerSecondPerNode = decodeTokensPerSecondPerNode
        self.ttftP50 = ttftP50
        self.ttftP99 = ttftP99
        self.tpotP50 = tpotP50
        self.tpotP99 = tpotP99
        self.e2eP50 = e2eP50
        self.e2eP99 = e2eP99
        self.queueWaitP50 = queueWaitP50
        self.queueWaitP99 = queueWaitP99
        self.energyKWh = energyKWh
        self.itEnergyKWh = itEnergyKWh
        self.gpuActiveKWh = gpuActiveKWh
        self.gpuIdleKWh = gpuIdleKWh
        self.hostKWh = hostKWh
        self.facilityOverheadKWh = facilityOverheadKWh
        self.carbonKg = carbonKg
        self.operationalCarbonKg = operationalCarbonKg
        self.embodiedCarbonKg = embodiedCarbonKg
        self.meanIntensityGramsPerKWh = meanIntensityGramsPerKWh
        self.joulesPerOutputToken = joulesPerOutputToken
        self.whPerRequest = whPerRequest
        self.carbonGramsPerRequest = carbonGramsPerRequest
        self.inFlightEnergyKWh = inFlightEnergyKWh
        self.unattributedEnergyKWh = unattributedEnergyKWh
        self.conservationResidual = conservationResidual
        self.meanNodes = meanNodes
        self.gpuHours = gpuHours
        self.steps = steps
        self.stepShapesCosted = stepShapesCosted
        self.wallSeconds = wallSeconds
        self.attributionPolicy = attributionPolicy
        self.carbonRegion = carbonRegion
        self.carbonSignal = carbonSignal
    }
}

/// Training shares summed over a run's finished requests, with the footprint they come from.
public struct TrainingTotals: Hashable, Sendable, Codable {
    public var plan: String
    public var servedTokensOverLife: Double
    public var lifeMonths: Double?
    public var grid: String
    public var tokensCharged: Double
    public var facilityKWh: Double
    public var carbonKg: Double
    public var gpuHours: Double
    /// Share of the whole footprint this run's requests carry (tokens charged ÷ tokens over the life).
    public var shareOfFootprint: Double
    public var carbonGramsPerRequest: Double
}
