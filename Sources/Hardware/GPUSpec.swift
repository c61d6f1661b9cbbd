import Units

/// One GPU model: peak rates, memory, links, power, and its fitted kernel behaviour.
public struct GPUSpec: Hashable, Sendable {
    /// Short identifier used in files and on the command line (`h800`).
    public var id: String
    /// Human-readable name.
    public var name: String
    /// Dense tensor-core peak by precision, in FLOP/s.
    public var peakFLOPS: [Precision: Double]
    /// HBM capacity, in bytes.
    public var memoryBytes: Double
    /// Nominal HBM bandwidth, in bytes per second.
    public var memoryBandwidthBytesPerSecond: Double
    /// Streaming multiprocessors.
    public var streamingMultiprocessors: Int
    /// NVLink bandwidth, both directions together, in bytes per second.
    public var nvlinkBidirectionalBytesPerSecond: Double
    /// GEMM throughput model.
    public var gemm: GemmEfficiency
    /// Attention-core throughput model.
    public var attention: AttentionKernel
    /// HBM bandwidth memory-bound element-wise kernels achieve (casts, quantisation, norms,
    /// activations, permutes, routing), in bytes per second; fitted on DeepSeek's H800 training trace.
    public var elementwiseBandwidthBytesPerSecond: Double
    /// The silicon family whose fitted coefficients the GPU uses (`gh100`).
    public var family: String
    /// Factor on the family's fitted power coefficients (1 for the family's own parts).
    public var powerScale: Double = 1
    /// Electrical draw model.
    public var power: GPUPowerModel

    /// Creates a GPU spec.
    public init(
        id: String, name: String, peakFLOPS: [Precision: Double], memoryBytes: Double,
        memoryBandwidthBytesPerSecond: Double, streamingMultiprocessors: Int,
        nvlinkBidirectionalBytesPerSecond: Double, gemm: GemmEfficiency, attention: AttentionKernel,
        elementwiseBandwidthBytesPerSecond: Double, family: String = "", power: GPUPowerModel
    ) {
        self.id = id
        self.name = name
        self.peakFLOPS = peakFLOPS
        self.memoryBytes = memoryBytes
        self.memoryBandwidthBytesPerSecond = memoryBandwidthBytesPerSecond
        self.streamingMultiprocessors = streamingMultiprocessors
        self.nvlinkBidirectionalBytesPerSecond = nvlinkBidirectionalBytesPerSecond
        self.gemm = gemm
        self.attention = attention
        self.elementwiseBandwidthBytesPerSecond = elementwiseBandwidthBytesPerSecond
        self.family = family
        self.power = power
    }

    /// Dense peak for `precision`, in FLOP/s.
    public func peak(_ precision: Precision) -> Double {
        guard let value = peakFLOPS[precision] ?? (precision == .mxfp4 ? peakFLOPS[.bf16] : nil) else {
            preconditionFailure("GPU \(id) has no peak for \(precision); validate() should have caught this")
        }
        return value
    }

    /// Every problem with the spec, with field paths as they appear in the data file.
    public func validate() -> [SpecProblem] {
        var check = SpecChecker()
        check.require(!id.isEmpty, "id", "expected a non-empty identifier")
        for precision in Precision.required {
            if let value = peakFLOPS[precision] {
                check.positive(value, "peakTFLOPS.\(precision.rawValue)")
            } else {
                check.require(false, "peakTFLOPS.\(precision.rawValue)", "missing; expected the dense peak in TFLOPS")
            }
        }
        if let fp8 = peakFLOPS[.fp8], let bf16 = peakFLOPS[.bf16] {
            check.require(fp8 >= bf16, "peakTFLOPS.fp8", "expected the FP8 peak (\(fp8 / 1e12)) to be at least the BF16 peak (\(bf16 / 1e12))")
        }
        check.positive(memoryBytes, "memory.capacityGB")
        check.positive(memoryBandwidthBytesPerSecond, "memory.bandwidthTBps")
        check.positive(streamingMultiprocessors, "streamingMultiprocessors")
        check.positive(nvlinkBidirectionalBytesPerSecond, "nvlink.bidirectionalGBps")
        check.merge(gemm.validate(prefix: "kernels.gemm"))
        check.merge(attention.validate(prefix: "kernels.attention"))
        check.merge(power.validate(prefix: "power"))
        check.positive(elementwiseBandwidthBytesPerSecond, "kernels.elementwise.bandwidthTBps")
        check.require(
            elementwiseBandwidthBytesPerSecond <= memoryBandwidthBytesPerSecond, "kernels.elementwise.bandwidthTBps",
            "expected at most the nominal HBM bandwidth (\(memoryBandwidthBytesPerSecond / 1e12) TB/s)"
        )
        check.require(
            gemm.streamingBandwidthBytesPerSecond <= memoryBandwidthBytesPerSecond,
            "kernels.gemm.streamingBandwidthTBps",
            "expected at most the nominal HBM bandwidth (\(memoryBandwidthBytesPerSecond / 1e12) TB/s)"
        )
        check.require(
            attention.memoryBandwidthBytesPerSecond <= memoryBandwidthBytesPerSecond,
            "kernels.attention.memoryBandwidthTBps",
            "expected at most the nominal HBM bandwidth (\(memoryBandwidthBytesPerSecond / 1e12) TB/s)"
        )
        if let bf16 = peakFLOPS[.bf16] {
            check.require(
                attention.computeFLOPS <= bf16, "kernels.attention.computeTFLOPS",
                "expected at most the BF16 peak (\(bf16 / 1e12) TFLOPS)"
            )
            check.require(
                attention.prefillComputeFLOPS <= bf16, "kernels.attention.prefillTFLOPS",
                "expected at most the BF16 peak (\(bf16 / 1e12) TFLOPS)"
            )
        }
        return check.problems
    }
}
