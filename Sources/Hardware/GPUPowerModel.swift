import Units

/// A GPU's electrical draw as a function of what it is doing, with the board power limit.
///
///     demand = busy + compute × u_C + memory × u_M + communication × u_L     while it works
///     P      = min(demand, tdp)                                              (idle: P = idle)
///
/// `u_C` is the share of the step the tensor cores would need at their dense peak (Σ FLOPs / peak
/// ÷ time), `u_M` the share of HBM bandwidth used (Σ bytes ÷ time ÷ bandwidth) and `u_L` the share
/// of the step the GPU's links are busy with collectives (all-to-all, all-reduce: the SMs they
/// hold, the NVLink and NIC traffic they drive). Each coefficient is an energy per operation
/// expressed as the watts it adds at full rate, so a step's dynamic energy does not depend on how
/// long it takes.
///
/// **The TDP-bound regime.** When the demand exceeds the board limit, the clocks throttle (FlashMLA
/// reports ~1.6 GHz and ~865 of 990 BF16 TFLOPS sustained on H800). The model keeps the energy per
/// operation and stretches the step until the draw equals the limit (`throttle`).
///
/// `busy`, `compute`, `memory` and `communication` are fitted to ML.ENERGY's H100 measurements by
/// `joule calibrate --fit` (`Data/calibration/fitted.yaml`); `idle` and `tdp` come from the GPU's
/// data file (`Data/SOURCES.md`).
public struct GPUPowerModel: Hashable, Sendable {
    /// Draw of a powered, idle GPU.
    public var idle: Power
    /// Draw of a GPU that is working at all (clocks up, SMs and caches active), before activity terms.
    public var busy: Power
    /// Extra draw at full tensor-core rate.
    public var compute: Power
    /// Extra draw at full HBM bandwidth.
    public var memory: Power
    /// Extra draw while collectives run for the whole step.
    public var communication: Power
    /// The board power limit.
    public var tdp: Power

    /// Creates a power model.
    public init(idle: Power, busy: Power, compute: Power, memory: Power, communication: Power, tdp: Power) {
        self.idle = idle
        self.busy = busy
        self.compute = compute
        self.memory = memory
        self.communication = communication
        self.tdp = tdp
    }

    /// What the GPU would draw at these activity shares without a power limit (each clamped to 0...1).
    public func demand(computeUtilisation: Double, memoryUtilisation: Double, linkUtilisation: Double = 0) -> Power {
        func clamp(_ u: Double) -> Double { min(max(u.isFinite ? u : 0, 0), 1) }
        return busy + compute * clamp(computeUtilisation) + memory * clamp(memoryUtilisation) + communication * clamp(linkUtilisation)
    }

    /// Draw while working (the demand, capped at TDP).
    public func busyPower(computeUtilisation: Double, memoryUtilisation: Double, linkUtilisation: Double = 0) -> Power {
        min(demand(computeUtilisation: computeUtilisation, memoryUtilisation: memoryUtilisation, linkUtilisation: linkUtilisation), tdp)
    }

    /// The step stretch (≥ 1) that brings a demand down to the power limit at constant energy per
    /// operation: `busy + (demand − busy) / s = tdp`.
    public func throttle(demand: Power) -> Double {
        guard demand > tdp, tdp > busy else { return 1 }
        return (demand - busy).watts / (tdp - busy).watts
    }

    /// Problems with the coefficients (idle and busy below TDP, all non-negative).
    public func validate(prefix: String) -> [SpecProblem] {
        var check = SpecChecker(prefix: prefix)
        check.positive(tdp.watts, "tdpWatts")
        check.nonNegative(idle.watts, "idleWatts")
        check.nonNegative(busy.watts, "busyWatts")
        check.nonNegative(compute.watts, "computeWatts")
        check.nonNegative(memory.watts, "memoryWatts")
        check.nonNegative(communication.watts, "communicationWatts")
        check.require(idle < tdp, "idleWatts", "expected idle power below tdpWatts (\(tdp.watts)), got \(idle.watts)")
        check.require(busy < tdp, "busyWatts", "expected the busy floor below tdpWatts (\(tdp.watts)), got \(busy.watts)")
        return check.problems
    }
}
