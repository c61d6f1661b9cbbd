import Hardware
import MoE
import Units

/// Models and hardware as test values, independent of the shipped data files.
enum Fixture {
    static let deepseekV3 = ModelArchitecture(
        id: "v3", name: "DeepSeek-V3", hidden: 7168, layers: 61, vocabulary: 129280, tiedEmbeddings: false,
        attention: .mla(MLAAttention(heads: 128, qLoraRank: 1536, kvLoraRank: 512, qkNopeHeadDim: 128, qkRopeHeadDim: 64, vHeadDim: 128)),
        denseLayers: 3, denseIntermediate: 18432,
        moe: MoEFFN(routedExperts: 256, sharedExperts: 1, expertIntermediate: 2048, expertsPerToken: 8, groups: 8, topKGroups: 4),
        mtpModules: 1, weightPrecision: .fp8, kvCachePrecision: .bf16
    )
    static let denseModel = ModelArchitecture(
        id: "dense", name: "Dense", hidden: 8192, layers: 80, vocabulary: 128256, tiedEmbeddings: false,
        attention: .gqa(GQAAttention(heads: 64, kvHeads: 8, headDim: 128)), denseLayers: 80, denseIntermediate: 28672,
        moe: nil, mtpModules: 0, weightPrecision: .bf16, kvCachePrecision: .bf16
    )
    static let gpu = GPUSpec(
        id: "h800", name: "H800", peakFLOPS: [.fp8: 1979e12, .bf16: 989e12], memoryBytes: 80e9,
        memoryBandwidthBytesPerSecond: 3.35e12, streamingMultiprocessors: 132, nvlinkBidirectionalBytesPerSecond: 400e9,
        gemm: GemmEfficiency(maxEfficiency: 0.7547, halfEfficiencyRows: 90.7, halfEfficiencyDepth: 452,
                             streamingBandwidthBytesPerSecond: 2.929e12, launchOverhead: .microseconds(4.62)),
        attention: AttentionKernel(computeFLOPS: 660e12, prefillComputeFLOPS: 650e12, memoryBandwidthBytesPerSecond: 3e12),
        elementwiseBandwidthBytesPerSecond: 1e12, family: "gh100",
        power: GPUPowerModel(idle: Power(watts: 75), busy: Power(watts: 125), compute: Power(watts: 1400),
                             memory: Power(watts: 600), communication: Power(watts: 50), tdp: Power(watts: 700))
    )
    static let node = NodeSpec(
        id: "h800", name: "node", gpu: gpu, gpusPerNode: 8, nicsPerNode: 8, nicBitsPerSecond: 400e9,
        allToAll: AllToAllModel(nvlinkBytesPerSecond: 161.5e9, infinibandBytesPerSecond: 50e9, baseLatency: .microseconds(29.4),
                                latencyPerDoubling: .microseconds(10.3), gpusPerNode: 8),
        hostIdle: Power(watts: 1400), rated: Power(watts: 10200)
    )
    static let site = SiteSpec(id: "default", name: "site", pue: 1.27)

    static func decodeModel(_ model: ModelArchitecture = deepseekV3, ep: Int = 144, redundant: Int = 32) -> StepCostModel {
        StepCostModel(model: model, node: node, site: site, deployment: Deployment(
            expertParallel: ep, redundantExperts: redundant, microBatches: 2, placementImbalance: 1.05))
    }
}
