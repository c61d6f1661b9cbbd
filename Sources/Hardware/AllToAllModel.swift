import Foundation
import Units

/// Time for an expert-parallel all-to-all (dispatch or combine) across `ep` GPUs.
///
/// Each GPU sends `bytes` (its tokens × experts per token × bytes per token copy). With
/// uniform routing a share `8 / ep` of that stays inside the 8-GPU node (NVLink) and the rest
/// crosses InfiniBand; the two proceed in parallel:
///
///     t = baseLatency + latencyPerDoubling × log2(ep / gpusPerNode)
///         + max(localBytes / nvlinkBandwidth, remoteBytes / infinibandBandwidth)
///
/// The four parameters are fitted, in log space, to DeepEP's H800 figures (normal kernels at
/// 4,096 tokens per rank and low-latency kernels at 128 tokens per rank, EP 8–64): see
/// `docs/calibration.md`. The fitted bandwidths (≈162 GB/s NVLink, ≈50 GB/s InfiniBand per
/// GPU) agree with the ISCA'25 paper's achievable NVLink figure and the 400 Gb/s NIC.
public struct AllToAllModel: Hashable, Sendable {
    /// Achievable NVLink bandwidth per GPU and direction, in bytes per second.
    public var nvlinkBytesPerSecond: Double
    /// Achievable InfiniBand bandwidth per GPU (one NIC each) and direction, in bytes per second.
    public var infinibandBytesPerSecond: Double
    /// Fixed cost of one all-to-all kernel inside one node.
    public var baseLatency: TimeSpan
    /// Extra fixed cost for every doubling of the number of nodes taking part.
    public var latencyPerDoubling: TimeSpan
    /// GPUs that share NVLink.
    public var gpusPerNode: Int

    /// Creates an all-to-all model.
    public init(
        nvlinkBytesPerSecond: Double, infinibandBytesPerSecond: Double, baseLatency: TimeSpan,
        latencyPerDoubling: TimeSpan, gpusPerNode: Int
    ) {
        self.nvlinkBytesPerSecond = nvlinkBytesPerSecond
        self.infinibandBytesPerSecond = infinibandBytesPerSecond
        self.baseLatency = baseLatency
        self.latencyPerDoubling = latencyPerDoubling
        self.gpusPerNode = gpusPerNode
    }

    /// Share of a GPU's traffic that leaves its node when `ep` GPUs take part under uniform routing.
    public func remoteFraction(ep: Int) -> Double {
        ep <= gpusPerNode ? 0 : 1 - Double(gpusPerNode) / Double(ep)
    }

    /// Fixed cost of one all-to-all among `ep` GPUs.
    public func latency(ep: Int) -> TimeSpan {
        let doublings = log2(max(Double(ep), Double(gpusPerNode)) / Double(gpusPerNode))
        return baseLatency + latencyPerDoubling * doublings
    }

    /// Time for one all-to-all in which each of `ep` GPUs sends `bytes` (zero bytes cost nothing).
    public func time(ep: Int, bytesPerGPU bytes: Double) -> TimeSpan {
        precondition(ep >= 1 && bytes >= 0, "all-to-all needs ep ≥ 1 and bytes ≥ 0, got ep \(ep), bytes \(bytes)")
        guard bytes > 0, ep > 1 else { return .zero }
        let remote = remoteFraction(ep: ep)
        let wire = max(bytes * (1 - remote) / nvlinkBytesPerSecond, bytes * remote / infinibandBytesPerSecond)
        return latency(ep: ep) + TimeSpan(seconds: wire)
    }

    /// The ISCA'25 style analytical bound: all `tokens × expertsPerToken` copies of a
    /// `hidden`-wide token go out at `dispatchBytesPerElement` and come back at
    /// `combineBytesPerElement` over one link of `bandwidth` bytes per second, with no latency.
    public static func analyticalBound(
        tokens: Double, expertsPerToken: Double, hidden: Double,
        dispatchBytesPerElement: Double, combineBytesPerElement: Double, bandwidthBytesPerSecond: Double
    ) -> TimeSpan {
        TimeSpan(seconds: (dispatchBytesPerElement + combineBytesPerElement) * tokens * expertsPerToken * hidden
            / bandwidthBytesPerSecond)
    }

    /// Problems with the parameters.
    public func validate(prefix: String) -> [SpecProblem] {
        var check = SpecChecker(prefix: prefix)
        check.positive(nvlinkBytesPerSecond, "nvlinkGBps")
        check.positive(infinibandBytesPerSecond, "infinibandGBps")
        check.nonNegative(baseLatency.seconds, "baseLatencyMicroseconds")
        check.nonNegative(latencyPerDoubling.seconds, "latencyPerDoublingMicroseconds")
        check.positive(gpusPerNode, "gpusPerNode")
        return check.problems
    }
}

