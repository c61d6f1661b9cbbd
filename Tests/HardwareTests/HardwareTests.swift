import Hardware
import Testing
import Units

@Suite struct GemmModelTests {
    let gpu = Fixture.gpu

    @Test(arguments: [16.0, 64, 128, 512, 4096])
    func moreRowsNeverLowerThroughput(rows: Double) {
        let a = gpu.cost(of: Kernel(name: "a", shape: .gemm(rows: rows, outputs: 4096, depth: 7168, groups: 1), precision: .fp8))
        let b = gpu.cost(of: Kernel(name: "b", shape: .gemm(rows: rows * 2, outputs: 4096, depth: 7168, groups: 1), precision: .fp8))
        #expect(b.flops / b.time.seconds >= a.flops / a.time.seconds)
        #expect(b.time >= a.time)
    }

    @Test func throughputNeverExceedsPeak() {
        for rows in stride(from: 1.0, through: 65536, by: 997) {
            let c = gpu.cost(of: Kernel(name: "g", shape: .gemm(rows: rows, outputs: 7168, depth: 16384, groups: 1), precision: .fp8))
            #expect(c.flops / c.time.seconds < gpu.peak(.fp8))
            #expect(c.bytes / c.time.seconds < gpu.memoryBandwidthBytesPerSecond)
        }
    }

    @Test func bf16IsSlowerThanFP8ForTheSameShape() {
        let shape = Kernel.Shape.gemm(rows: 4096, outputs: 4096, depth: 4096, groups: 1)
        let fp8 = gpu.cost(of: Kernel(name: "f", shape: shape, precision: .fp8))
        let bf16 = gpu.cost(of: Kernel(name: "b", shape: shape, precision: .bf16))
        #expect(bf16.time > fp8.time)
        #expect(bf16.flops == fp8.flops)
    }

    @Test func emptyKernelCostsNothing() {
        #expect(gpu.cost(of: Kernel(name: "e", shape: .gemm(rows: 0, outputs: 10, depth: 10, groups: 1), precision: .fp8)) == .zero)
        #expect(gpu.cost(of: Kernel(name: "e", shape: .elementwise(bytes: 0), precision: .bf16)) == .zero)
    }

    @Test func fewerSMsTakeLonger() {
        let k = Kernel(name: "g", shape: .gemm(rows: 8192, outputs: 4096, depth: 7168, groups: 4), precision: .fp8)
        #expect(gpu.cost(of: k, computeShare: 112.0 / 132).time > gpu.cost(of: k).time)
    }
}

@Suite struct AllToAllTests {
    let a2a = Fixture.allToAll

    @Test func remoteShareFollowsNodeCount() {
        #expect(a2a.remoteFraction(ep: 8) == 0)
        #expect(a2a.remoteFraction(ep: 16) == 0.5)
        #expect(a2a.remoteFraction(ep: 32) == 0.75)
    }

    @Test(arguments: [8, 16, 32, 64, 144, 320])
    func moreBytesTakeLonger(ep: Int) {
        #expect(a2a.time(ep: ep, bytesPerGPU: 2e6) > a2a.time(ep: ep, bytesPerGPU: 1e6))
        #expect(a2a.time(ep: ep, bytesPerGPU: 0) == .zero)
    }

    @Test func crossingNodesIsSlowerThanStayingInside() {
        let bytes = 7.5e6
        #expect(a2a.time(ep: 16, bytesPerGPU: bytes) > a2a.time(ep: 8, bytesPerGPU: bytes))
        #expect(a2a.latency(ep: 64) > a2a.latency(ep: 8))
    }

    @Test func analyticalBoundMatchesTheFormula() {
        // (1 B + 2 B) × 32 × 9 × 7000 / 50 GB/s
        let t = AllToAllModel.analyticalBound(tokens: 32, expertsPerToken: 9, hidden: 7000, dispatchBytesPerElement: 1, combineBytesPerElement: 2, bandwidthBytesPerSecond: 50e9)
        #expect(abs(t.microseconds - 120.96) < 1e-9)
    }
}

@Suite struct PowerTests {
    let power = Fixture.gpu.power

    @Test func busyPowerIsMonotoneAndCapped() {
        var previous = power.busyPower(computeUtilisation: 0, memoryUtilisation: 0)
        #expect(previous > power.idle)
        for u in stride(from: 0.1, through: 1.0, by: 0.1) {
            let p = power.busyPower(computeUtilisation: u, memoryUtilisation: u)
            #expect(p >= previous)
            #expect(p <= power.tdp)
            previous = p
        }
    }

    @Test func memoryBoundDrawsLessThanComputeBound() {
        let decodeLike = power.busyPower(computeUtilisation: 0.15, memoryUtilisation: 0.6)
        let prefillLike = power.busyPower(computeUtilisation: 0.7, memoryUtilisation: 0.2)
        #expect(decodeLike < prefillLike)
    }
}

@Suite struct SpecValidationTests {
    @Test func fixturesAreValid() {
        #expect(Fixture.gpu.validate().isEmpty)
        #expect(Fixture.node.validate().isEmpty)
    }

    @Test func everyProblemIsReportedWithItsField() {
        var gpu = Fixture.gpu
        gpu.memoryBytes = -1
        gpu.peakFLOPS[.bf16] = nil
        gpu.power.idle = Power(watts: 800)
        let fields = Set(gpu.validate().map(\.field))
        #expect(fields.isSuperset(of: ["memory.capacityGB", "peakTFLOPS.bf16", "power.idleWatts"]))
    }

    @Test func nodeRatingMustCoverItsParts() {
        var node = Fixture.node
        node.rated = Power(watts: 5000)
        #expect(node.validate().map(\.field).contains("ratedWatts"))
    }

    @Test func siteRejectsPUEBelowOne() {
        #expect(SiteSpec(id: "s", name: "s", pue: 0.9).validate().map(\.field) == ["pue"])
        #expect(SiteSpec(id: "s", name: "s", pue: 1.2).validate().isEmpty)
    }
}
