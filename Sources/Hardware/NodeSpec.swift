import Units

/// A server of several GPUs joined by NVLink, with one InfiniBand NIC per GPU, and its host.
public struct NodeSpec: Hashable, Sendable {
    /// Identifier used on the command line (`--hardware h800`).
    public var id: String
    /// Human-readable name.
    public var name: String
    /// The GPU model the node carries.
    public var gpu: GPUSpec
    /// GPUs per node.
    public var gpusPerNode: Int
    /// InfiniBand NICs per node.
    public var nicsPerNode: Int
    /// Line rate of one NIC, in bits per second.
    public var nicBitsPerSecond: Double
    /// The fitted expert-parallel all-to-all model.
    public var allToAll: AllToAllModel
    /// Host draw (CPUs, DRAM, NICs, NVSwitch, fans, conversion losses) when the node's GPUs are idle.
    public var hostIdle: Power
    /// The server's rated maximum input power: what it draws with every GPU at TDP.
    public var rated: Power

    /// Creates a node spec.
    public init(
        id: String, name: String, gpu: GPUSpec, gpusPerNode: Int, nicsPerNode: Int, nicBitsPerSecond: Double,
        allToAll: AllToAllModel, hostIdle: Power, rated: Power
    ) {
        self.id = id
        self.name = name
        self.gpu = gpu
        self.gpusPerNode = gpusPerNode
        self.nicsPerNode = nicsPerNode
        self.nicBitsPerSecond = nicBitsPerSecond
        self.allToAll = allToAll
        self.hostIdle = hostIdle
        self.rated = rated
    }

    /// The rating's share left to the host when every GPU draws its TDP.
    public var hostAtRating: Power { rated - gpu.power.tdp * Double(gpusPerNode) }

    /// Host watts added per watt the GPUs draw above idle: the host (fans, power conversion, CPUs
    /// feeding the GPUs) rises linearly from `hostIdle` with the GPUs at idle to the rest of the
    /// server's rating with every GPU at TDP.
    public var hostPerGPUWatt: Double {
        let span = (gpu.power.tdp - gpu.power.idle).watts * Double(gpusPerNode)
        return span > 0 ? max(0, (hostAtRating - hostIdle).watts) / span : 0
    }

    /// Host draw while the node's GPUs each draw `gpuPower` on average.
    public func hostPower(gpuPower: Power) -> Power {
        let above = max(0, (gpuPower - gpu.power.idle).watts) * Double(gpusPerNode)
        return hostIdle + Power(watts: above * hostPerGPUWatt)
    }

    /// Every problem with the spec (the GPU's own problems are reported by the GPU file).
    public func validate() -> [SpecProblem] {
        var check = SpecChecker()
        check.require(!id.isEmpty, "id", "expected a non-empty identifier")
        check.positive(gpusPerNode, "gpusPerNode")
        check.positive(nicsPerNode, "nics.count")
        check.positive(nicBitsPerSecond, "nics.gbps")
        check.merge(allToAll.validate(prefix: "allToAll"))
        check.require(
            allToAll.gpusPerNode == gpusPerNode, "gpusPerNode",
            "expected the all-to-all model's GPUs per node (\(allToAll.gpusPerNode)) to equal gpusPerNode (\(gpusPerNode))"
        )
        check.require(
            allToAll.infinibandBytesPerSecond * 8 <= nicBitsPerSecond * Double(nicsPerNode) / Double(max(gpusPerNode, 1)) * 1.0001,
            "allToAll.infinibandGBps",
            "expected at most the NIC line rate per GPU (\(nicBitsPerSecond * Double(nicsPerNode) / Double(max(gpusPerNode, 1)) / 8e9) GB/s)"
        )
        check.require(
            allToAll.nvlinkBytesPerSecond <= gpu.nvlinkBidirectionalBytesPerSecond / 2 * 1.0001,
            "allToAll.nvlinkGBps",
            "expected at most half the GPU's bidirectional NVLink bandwidth (\(gpu.nvlinkBidirectionalBytesPerSecond / 2e9) GB/s)"
        )
        check.nonNegative(hostIdle.watts, "host.idleWatts")
        check.positive(rated.watts, "ratedWatts")
        let floor = gpu.power.tdp * Double(gpusPerNode) + hostIdle
        check.require(
            floor <= rated * 1.0001, "ratedWatts",
            "expected the rating (\(rated.watts) W) to cover \(gpusPerNode) × GPU TDP + host.idleWatts = \(floor.watts) W"
        )
        return check.problems
    }
}

/// A data-centre site: what the facility adds on top of IT power.
public struct SiteSpec: Hashable, Sendable {
    /// Identifier (`default`).
    public var id: String
    /// Human-readable name.
    public var name: String
    /// Power usage effectiveness: facility energy ÷ IT energy (≥ 1).
    public var pue: Double

    /// Creates a site spec.
    public init(id: String, name: String, pue: Double) {
        self.id = id
        self.name = name
        self.pue = pue
    }

    /// Every problem with the spec.
    public func validate() -> [SpecProblem] {
        var check = SpecChecker()
        check.require(!id.isEmpty, "id", "expected a non-empty identifier")
        check.within(pue, 1...3, "pue")
        return check.problems
    }
}
