import Units

/// Coefficients that `joule calibrate --fit` fits to measurements, per silicon family, and the
/// serving engine's step overhead (`Data/calibration/fitted.yaml`).
///
/// A GPU names its family (`family: gh100`); its data file keeps what datasheets give (peaks,
/// memory, TDP, idle draw) and takes these from the fit. `scale` lets a GPU of another family
/// borrow a fitted family's power coefficients scaled by a factor (an assumption its file states).
public struct FittedParameters: Hashable, Sendable {
    /// What one silicon family takes from the fit.
    public struct Family: Hashable, Sendable {
        public var busyWatts: Double
        public var computeWatts: Double
        public var memoryWatts: Double
        public var communicationWatts: Double
        /// Share of nominal HBM bandwidth that element-wise kernels achieve.
        public var elementwiseBandwidthFraction: Double
        /// Share of the dense BF16 peak that causal prefill attention achieves.
        public var prefillAttentionFraction: Double
        /// Share of the dense BF16 peak that the causal attention core's backward pass achieves (training).
        public var attentionBackwardFraction: Double

        public init(
            busyWatts: Double, computeWatts: Double, memoryWatts: Double, communicationWatts: Double,
            elementwiseBandwidthFraction: Double, prefillAttentionFraction: Double, attentionBackwardFraction: Double
        ) {
            self.busyWatts = busyWatts
            self.computeWatts = computeWatts
            self.memoryWatts = memoryWatts
            self.communicationWatts = communicationWatts
            self.elementwiseBandwidthFraction = elementwiseBandwidthFraction
            self.prefillAttentionFraction = prefillAttentionFraction
            self.attentionBackwardFraction = attentionBackwardFraction
        }
    }

    /// Fitted coefficients by family id.
    public var families: [String: Family]
    /// The serving engine's costs outside the model's kernels.
    public var engine: EngineCosts

    public init(families: [String: Family], engine: EngineCosts) {
        self.families = families
        self.engine = engine
    }

    /// `gpu` with its family's fitted coefficients; power terms multiplied by `powerScale`.
    /// Kernel rates are shares of the GPU's own nominal HBM bandwidth and BF16 peak.
    public func apply(to gpu: GPUSpec, family id: String, powerScale: Double = 1) -> GPUSpec? {
        guard let f = families[id] else { return nil }
        var g = gpu
        g.family = id
        g.powerScale = powerScale
        g.power.busy = Power(watts: f.busyWatts * powerScale)
        g.power.compute = Power(watts: f.computeWatts * powerScale)
        g.power.memory = Power(watts: f.memoryWatts * powerScale)
        g.power.communication = Power(watts: f.communicationWatts * powerScale)
        g.elementwiseBandwidthBytesPerSecond = min(max(f.elementwiseBandwidthFraction, 0.01), 1) * g.memoryBandwidthBytesPerSecond
        g.attention.prefillComputeFLOPS = min(max(f.prefillAttentionFraction, 0.01), 1) * (g.peakFLOPS[.bf16] ?? g.attention.computeFLOPS)
        g.attention.backwardComputeFLOPS = min(max(f.attentionBackwardFraction, 0.01), 1) * (g.peakFLOPS[.bf16] ?? g.attention.computeFLOPS)
        return g
    }
}

/// What a serving engine adds to a step beyond the model's kernels (fitted on ML.ENERGY's vLLM runs).
public struct EngineCosts: Hashable, Sendable {
    /// Fixed cost of one step (scheduling, launch gaps), during which the GPUs hold their busy floor.
    public var stepOverhead: TimeSpan
    /// Fixed cost of one tensor-parallel all-reduce over NVLink.
    public var allReduceLatency: TimeSpan
    /// HBM bytes the sampler moves per logit (logits, softmax, top-k/top-p over the vocabulary).
    public var samplerBytesPerLogit: Double
    /// Host-side cost per sequence in a step (scheduling, detokenising, bookkeeping), during which
    /// the GPUs hold their busy floor.
    public var perSequenceOverhead: TimeSpan

    public init(
        stepOverhead: TimeSpan = .zero, allReduceLatency: TimeSpan = .zero, samplerBytesPerLogit: Double = 0, perSequenceOverhead: TimeSpan = .zero
    ) {
        self.stepOverhead = stepOverhead
        self.allReduceLatency = allReduceLatency
        self.samplerBytesPerLogit = samplerBytesPerLogit
        self.perSequenceOverhead = perSequenceOverhead
    }

    /// The fixed part of a step holding `sequences` sequences on one engine.
    public func overhead(sequences: Double) -> TimeSpan { stepOverhead + perSequenceOverhead * max(sequences, 0) }

    /// No engine costs at all.
    public static let none = EngineCosts()
}
