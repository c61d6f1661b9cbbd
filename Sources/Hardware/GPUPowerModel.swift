import Units

/// A GPU's electrical draw as a function of what it is doing.
///
///     P = idle                                     when the GPU has no work
///     P = min(tdp, idle + active + compute × uC + memory × uM)   while it works
///
/// `uC` is the fraction of the step the tensor cores would need at peak rate (Σ FLOPs / peak ÷ time),
/// `uM` the fraction of HBM bandwidth used (Σ bytes ÷ time ÷ bandwidth). Decode, being
/// memory-bound, has low `uC` and draws well below TDP; compute-bound prefill approaches TDP.
/// The coefficients are assumptions cross-checked against Splitwise's H100 constants and
/// ML.ENERGY measurements (REFERENCE.md §3); see `Data/SOURCES.md`.
public struct GPUPowerModel: Hashable, Sendable {
    /// Draw of a powered, idle GPU.
    public var idle: Power
    /// Extra draw of a GPU that is busy at all (clocks up, SMs and caches active).
    public var active: Power
    /// Extra draw at full tensor-core utilisation.
    public var compute: Power
    /// Extra draw at full HBM bandwidth.
    public var memory: Power
    /// The board power limit.
    public var tdp: Power

    /// Creates a power model.
    public init(idle: Power, active: Power, compute: Power, memory: Power, tdp: Power) {
        self.idle = idle
        self.active = active
        self.compute = compute
        self.memory = memory
        self.tdp = tdp
    }

    /// Draw while working at compute utilisation `computeUtilisation` and memory utilisation
    /// `memoryUtilisation` (each clamped to 0...1).
    public func busyPower(computeUtilisation: Double, memoryUtilisation: Double) -> Power {
        let uC = min(max(computeUtilisation, 0), 1)
        let uM = min(max(memoryUtilisation, 0), 1)
        let raw = idle + active + compute * uC + memory * uM
        return min(raw, tdp)
    }

    /// Problems with the coefficients (idle below TDP, all non-negative).
    public func validate(prefix: String) -> [SpecProblem] {
        var check = SpecChecker(prefix: prefix)
        check.positive(tdp.watts, "tdpWatts")
        check.nonNegative(idle.watts, "idleWatts")
        check.nonNegative(active.watts, "activeWatts")
        check.nonNegative(compute.watts, "computeWatts")
        check.nonNegative(memory.watts, "memoryWatts")
        check.require(idle < tdp, "idleWatts", "expected idle power below tdpWatts (\(tdp.watts)), got \(idle.watts)")
        return check.problems
    }
}
