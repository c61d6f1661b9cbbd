import Units

/// Achievable GEMM throughput on one GPU, as a roofline with an efficiency curve.
///
/// Time for a (grouped) GEMM of `groups` problems, each `rows × outputs × depth` (M × N × K):
///
///     t = launch + max(FLOPs / (peak × η(M, K)),  bytes / streamingBandwidth)
///     η(M, K) = maxEfficiency × M / (M + halfEfficiencyRows) × K / (K + halfEfficiencyDepth)
///
/// `bytes` counts the weights (N × K per group), the input activations (M × K) and the
/// BF16 output (M × N). The five parameters are fitted, in log space, to DeepGEMM's FP8
/// figures on H800 (dense M = 64, 128, 4096; grouped contiguous and masked): see
/// `docs/calibration.md` and `Data/SOURCES.md`. BF16 GEMMs use the same curve against the
/// BF16 peak (an assumption: the same tensor-core pipeline at half the rate).
public struct GemmEfficiency: Hashable, Sendable {
    /// The ceiling of η for large, deep GEMMs (fraction of the dense peak).
    public var maxEfficiency: Double
    /// Rows per group at which η reaches half its ceiling (the M dependence).
    public var halfEfficiencyRows: Double
    /// Reduction depth at which η reaches half its ceiling (the K dependence).
    public var halfEfficiencyDepth: Double
    /// HBM bandwidth a GEMM achieves while streaming weights, in bytes per second.
    public var streamingBandwidthBytesPerSecond: Double
    /// Fixed cost of one kernel: launch, prologue and epilogue.
    public var launchOverhead: TimeSpan

    /// Creates a GEMM model from its five fitted parameters.
    public init(
        maxEfficiency: Double, halfEfficiencyRows: Double, halfEfficiencyDepth: Double,
        streamingBandwidthBytesPerSecond: Double, launchOverhead: TimeSpan
    ) {
        self.maxEfficiency = maxEfficiency
        self.halfEfficiencyRows = halfEfficiencyRows
        self.halfEfficiencyDepth = halfEfficiencyDepth
        self.streamingBandwidthBytesPerSecond = streamingBandwidthBytesPerSecond
        self.launchOverhead = launchOverhead
    }

    /// η for `rows` rows per group and reduction depth `depth`.
    public func efficiency(rows: Double, depth: Double) -> Double {
        maxEfficiency * rows / (rows + halfEfficiencyRows) * depth / (depth + halfEfficiencyDepth)
    }

    /// Problems with the parameters (each must be positive; η at most 1).
    public func validate(prefix: String) -> [SpecProblem] {
        var check = SpecChecker(prefix: prefix)
        check.within(maxEfficiency, 0.01...1, "maxEfficiency")
        check.positive(halfEfficiencyRows, "halfEfficiencyRows")
        check.positive(halfEfficiencyDepth, "halfEfficiencyDepth")
        check.positive(streamingBandwidthBytesPerSecond, "streamingBandwidthTBps")
        check.nonNegative(launchOverhead.seconds, "launchMicroseconds")
        return check.problems
    }
}

/// Achievable attention-core throughput (FlashMLA / FlashAttention-class kernels), as a two-roof model.
///
///     t = launch + max(FLOPs / computeRate, bytes / memoryBandwidth)
///
/// Decode roofs are FlashMLA's published H800 figures (660 TFLOPS BF16 compute-bound,
/// 3,000 GB/s memory-bound); the kernel is compute-bound once heads × query tokens ≥ ~128,
/// which the model reproduces for MLA's 576-wide latent. The prefill (causal, many query tokens)
/// rate is FlashAttention's forward in DeepSeek's own H800 training trace, the backward rate its
/// backward in the same trace.
public struct AttentionKernel: Hashable, Sendable {
    /// Sustained BF16 throughput of the decode attention core, in FLOP/s.
    public var computeFLOPS: Double
    /// Sustained BF16 throughput of the causal prefill attention core, in FLOP/s.
    public var prefillComputeFLOPS: Double
    /// Sustained BF16 throughput of the causal attention core's backward pass (training), in FLOP/s.
    public var backwardComputeFLOPS: Double
    /// Sustained HBM bandwidth of the attention core, in bytes per second.
    public var memoryBandwidthBytesPerSecond: Double

    /// Creates an attention-kernel model.
    public init(computeFLOPS: Double, prefillComputeFLOPS: Double? = nil, backwardComputeFLOPS: Double? = nil, memoryBandwidthBytesPerSecond: Double) {
        self.computeFLOPS = computeFLOPS
        self.prefillComputeFLOPS = prefillComputeFLOPS ?? computeFLOPS
        self.backwardComputeFLOPS = backwardComputeFLOPS ?? prefillComputeFLOPS ?? computeFLOPS
        self.memoryBandwidthBytesPerSecond = memoryBandwidthBytesPerSecond
    }

    /// Problems with the parameters.
    public func validate(prefix: String) -> [SpecProblem] {
        var check = SpecChecker(prefix: prefix)
        check.positive(computeFLOPS, "computeTFLOPS")
        check.positive(prefillComputeFLOPS, "prefillTFLOPS")
        check.positive(backwardComputeFLOPS, "backwardTFLOPS")
        check.positive(memoryBandwidthBytesPerSecond, "memoryBandwidthTBps")
        return check.problems
    }
}
