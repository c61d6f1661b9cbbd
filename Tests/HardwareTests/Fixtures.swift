import Hardware
import Units

/// A GPU and node with round numbers, independent of the shipped data files.
enum Fixture {
    static let gpu = GPUSpec(
        id: "test-gpu", name: "Test GPU", peakFLOPS: [.fp8: 2000e12, .bf16: 1000e12], memoryBytes: 80e9,
        memoryBandwidthBytesPerSecond: 3e12, streamingMultiprocessors: 132, nvlinkBidirectionalBytesPerSecond: 400e9,
        gemm: GemmEfficiency(maxEfficiency: 0.75, halfEfficiencyRows: 90, halfEfficiencyDepth: 450,
                             streamingBandwidthBytesPerSecond: 2.9e12, launchOverhead: .microseconds(4)),
        attention: AttentionKernel(computeFLOPS: 660e12, prefillComputeFLOPS: 650e12, memoryBandwidthBytesPerSecond: 3e12),
        elementwiseBandwidthBytesPerSecond: 1e12, family: "gh100",
        power: GPUPowerModel(idle: Power(watts: 75), busy: Power(watts: 125), compute: Power(watts: 1400),
                             memory: Power(watts: 600), communication: Power(watts: 50), tdp: Power(watts: 700))
    )
    static let allToAll = AllToAllModel(
        nvlinkBytesPerSecond: 160e9, infinibandBytesPerSecond: 50e9, baseLatency: .microseconds(30),
        latencyPerDoubling: .microseconds(10), gpusPerNode: 8
    )
    static let node = NodeSpec(
        id: "test-node", name: "Test node", gpu: gpu, gpusPerNode: 8, nicsPerNode: 8, nicBitsPerSecond: 400e9,
        allToAll: allToAll, hostIdle: Power(watts: 1400), rated: Power(watts: 10200)
    )
}
