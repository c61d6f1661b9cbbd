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
    /// Electrical draw model.
    public var power: GPUPowerModel

    /// Creates a GPU spec.
    public init(
        id: String, name: String, peakFLOPS: [Precision: Double], memoryBytes: Double,
        memoryBandwidthBytesPerSecond: Double, streamingMultiprocessors: Int,
        nvlinkBidirectionalBytesPerSecond: Double, gemm: GemmEfficiency, attention: AttentionKernel,
        power: GPUPowerModel
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
        self.power = power
    }

    /// Dense peak for `precision`, in FLOP/s.
    public func peak(_ precision: Precision) -> Double {
        guard let value = peakFLOPS[precision] else {
            preconditionFailure("GPU \(id) has no peak for \(precision); validate() should have caught this")
        }
        return value
    }

    /// Every problem with the spec, with field paths as they appear in the data file.
    public func validate() -> [SpecProblem] {
        var check = SpecChecker()
        check.require(!id.isEmpty, "id", "expected a non-empty identifier")
        for precision in Precision.allCases {
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
        }
        return check.problems
    }
}
