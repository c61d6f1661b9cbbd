/// What engines of one size drew with a given number of requests on them, summed over a measured
/// run: the measured counterpart of one ML.ENERGY configuration (power, energy per output token and
/// inter-token latency at a batch size), which `joule calibrate --from-measured` fits to.
///
/// Batches are binned by powers of two (1, 2–3, 4–7, …); a slice counts where the number of
/// requests on its engine falls.
public struct BatchProfileBin: Codable, Hashable, Sendable {
    /// GPUs per engine.
    public var engineGPUs: Int
    public var minBatch: Int
    public var maxBatch: Int
    /// Engine-seconds spent with a batch in the bin.
    public var seconds: Double = 0
    /// Σ requests × seconds (the mean batch is this ÷ `seconds`).
    public var batchSeconds: Double = 0
    /// Measured GPU energy of the engines over those seconds.
    public var gpuJoules: Double = 0
    /// Uncached prompt tokens and output tokens processed in them (spread over each request's phases).
    public var prefillTokens: Double = 0
    public var outputTokens: Double = 0

    public init(engineGPUs: Int, batch: Int) {
        self.engineGPUs = engineGPUs
        var lo = 1
        while lo * 2 <= batch { lo *= 2 }
        minBatch = lo
        maxBatch = lo * 2 - 1
    }

    public var meanBatch: Double { seconds > 0 ? batchSeconds / seconds : 0 }
    /// Mean draw of one GPU.
    public var gpuWattsPerGPU: Double { seconds > 0 ? gpuJoules / seconds / Double(engineGPUs) : 0 }
    /// Engine GPU joules per output token (prefill included, as ML.ENERGY counts it).
    public var joulesPerOutputToken: Double { outputTokens > 0 ? gpuJoules / outputTokens : 0 }
    /// Seconds between a request's tokens: the batch over the engine's output token rate.
    public var interTokenLatencySeconds: Double { outputTokens > 0 ? meanBatch * seconds / outputTokens : 0 }
    public var label: String { minBatch == maxBatch ? "\(minBatch)" : "\(minBatch)–\(maxBatch)" }

    private enum CodingKeys: String, CodingKey {
        case engineGPUs, minBatch, maxBatch, seconds, batchSeconds, gpuJoules, prefillTokens, outputTokens
        case meanBatch, gpuWattsPerGPU, joulesPerOutputToken, interTokenLatencySeconds
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        engineGPUs = try c.decode(Int.self, forKey: .engineGPUs)
        minBatch = try c.decode(Int.self, forKey: .minBatch)
        maxBatch = try c.decode(Int.self, forKey: .maxBatch)
        seconds = try c.decode(Double.self, forKey: .seconds)
        batchSeconds = try c.decode(Double.self, forKey: .batchSeconds)
        gpuJoules = try c.decode(Double.self, forKey: .gpuJoules)
        prefillTokens = try c.decode(Double.self, forKey: .prefillTokens)
        outputTokens = try c.decode(Double.self, forKey: .outputTokens)
    }

    /// The sums, and the figures derived from them (for readers of the JSON).
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(engineGPUs, forKey: .engineGPUs)
        try c.encode(minBatch, forKey: .minBatch)
        try c.encode(maxBatch, forKey: .maxBatch)
        try c.encode(seconds, forKey: .seconds)
        try c.encode(batchSeconds, forKey: .batchSeconds)
        try c.encode(gpuJoules, forKey: .gpuJoules)
        try c.encode(prefillTokens, forKey: .prefillTokens)
        try c.encode(outputTokens, forKey: .outputTokens)
        try c.encode(meanBatch, forKey: .meanBatch)
        try c.encode(gpuWattsPerGPU, forKey: .gpuWattsPerGPU)
        try c.encode(joulesPerOutputToken, forKey: .joulesPerOutputToken)
        try c.encode(interTokenLatencySeconds, forKey: .interTokenLatencySeconds)
    }
}
