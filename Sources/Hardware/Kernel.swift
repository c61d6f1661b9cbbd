import Units

/// One GPU kernel of a model step, described by its shape, so the hardware model can time it.
public struct Kernel: Hashable, Sendable {
    /// What kind of kernel, with its shape.
    public enum Shape: Hashable, Sendable {
        /// `groups` GEMMs of `rows × outputs × depth` (M × N × K), weights in `precision`, BF16 output.
        case gemm(rows: Double, outputs: Double, depth: Double, groups: Double)
        /// A decode attention core (few query tokens per sequence) with the given arithmetic and HBM traffic.
        case attention(flops: Double, bytes: Double)
        /// A causal prefill attention core (many query tokens per sequence).
        case prefillAttention(flops: Double, bytes: Double)
        /// The backward pass of a causal attention core (training): gradients of queries, keys and values.
        case attentionBackward(flops: Double, bytes: Double)
        /// A memory-bound element-wise kernel (norms, activations, quantisation, routing).
        case elementwise(bytes: Double)
    }

    /// A short name for breakdowns (`moe.routed.up`).
    public var name: String
    /// The kernel's shape.
    public var shape: Shape
    /// Precision of its multiply operands.
    public var precision: Precision

    /// Creates a kernel.
    public init(name: String, shape: Shape, precision: Precision) {
        self.name = name
        self.shape = shape
        self.precision = precision
    }

    /// Floating-point operations (a multiply-add counts two).
    public var flops: Double {
        switch shape {
        case .gemm(let m, let n, let k, let g): 2 * m * n * k * g
        case .attention(let flops, _), .prefillAttention(let flops, _), .attentionBackward(let flops, _): flops
        case .elementwise: 0
        }
    }

    /// Bytes moved to and from HBM.
    public var bytes: Double {
        switch shape {
        case .gemm(let m, let n, let k, let g):
            // Weights in their own format; activations in FP8 for FP8 GEMMs, else BF16 (W4A16 for MXFP4).
            let activation = precision == .fp8 ? Precision.fp8.bytesPerElement : Precision.bf16.bytesPerElement
            return g * (n * k * precision.bytesPerElement + m * k * activation + m * n * Precision.bf16.bytesPerElement)
        case .attention(_, let bytes), .prefillAttention(_, let bytes), .attentionBackward(_, let bytes): return bytes
        case .elementwise(let bytes): return bytes
        }
    }
}

/// The time, work and traffic of a kernel on one GPU.
public struct KernelCost: Hashable, Sendable {
    /// Wall time of the kernel.
    public var time: TimeSpan
    /// Its arithmetic, in FLOPs.
    public var flops: Double
    /// Its HBM traffic, in bytes.
    public var bytes: Double
    /// The time the tensor cores would need at their dense peak for this arithmetic.
    public var peakComputeTime: TimeSpan

    /// Creates a cost.
    public init(time: TimeSpan, flops: Double, bytes: Double, peakComputeTime: TimeSpan) {
        self.time = time
        self.flops = flops
        self.bytes = bytes
        self.peakComputeTime = peakComputeTime
    }

    /// Nothing at all.
    public static let zero = KernelCost(time: .zero, flops: 0, bytes: 0, peakComputeTime: .zero)

    /// The sum of two costs run one after the other.
    public static func + (a: KernelCost, b: KernelCost) -> KernelCost {
        KernelCost(
            time: a.time + b.time, flops: a.flops + b.flops, bytes: a.bytes + b.bytes,
            peakComputeTime: a.peakComputeTime + b.peakComputeTime
        )
    }

    /// The cost repeated `k` times.
    public static func * (a: KernelCost, k: Double) -> KernelCost {
        KernelCost(time: a.time * k, flops: a.flops * k, bytes: a.bytes * k, peakComputeTime: a.peakComputeTime * k)
    }
}

extension GPUSpec {
    /// Times `kernel` on this GPU with `computeShare` of its SMs available (1 = all).
    ///
    /// An empty kernel (no rows, no bytes) costs nothing; any other pays the launch overhead.
    public func cost(of kernel: Kernel, computeShare: Double = 1) -> KernelCost {
        precondition(computeShare > 0 && computeShare <= 1, "compute share must be in (0, 1], got \(computeShare)")
        let flops = kernel.flops
        let bytes = kernel.bytes
        let peakTime = TimeSpan(seconds: flops / peak(kernel.precision))
        let time: TimeSpan
        switch kernel.shape {
        case .gemm(let m, _, let k, let g):
            guard m > 0, g > 0 else { return .zero }
            let eta = gemm.efficiency(rows: m, depth: k)
            let compute = flops / (peak(kernel.precision) * eta * computeShare)
            let memory = bytes / gemm.streamingBandwidthBytesPerSecond
            time = gemm.launchOverhead + TimeSpan(seconds: max(compute, memory))
        case .attention(let f, let b), .prefillAttention(let f, let b), .attentionBackward(let f, let b):
            guard f > 0 || b > 0 else { return .zero }
            let rate: Double = switch kernel.shape {
            case .prefillAttention: attention.prefillComputeFLOPS
            case .attentionBackward: attention.backwardComputeFLOPS
            default: attention.computeFLOPS
            }
            let compute = f / (rate * computeShare)
            let memory = b / attention.memoryBandwidthBytesPerSecond
            time = gemm.launchOverhead + TimeSpan(seconds: max(compute, memory))
        case .elementwise(let b):
            guard b > 0 else { return .zero }
            time = gemm.launchOverhead + TimeSpan(seconds: b / (elementwiseBandwidthBytesPerSecond * computeShare))
        }
        return KernelCost(time: time, flops: flops, bytes: bytes, peakComputeTime: peakTime)
    }

    /// Total cost of running `kernels` one after another.
    public func cost(of kernels: [Kernel], computeShare: Double = 1) -> KernelCost {
        kernels.reduce(.zero) { $0 + cost(of: $1, computeShare: computeShare) }
    }
}
