import Units

/// The embodied (manufacturing) emissions of one GPU, amortised over its service life.
///
/// LLMCarbon (Faiz et al., ICLR 2024) models a GPU's embodied carbon as die area × carbon per area
/// plus memory capacity × carbon per gigabyte; the figures and the lifetime are data
/// (`Data/embodied/`, sources in `Data/SOURCES.md`). A request is charged for the GPU-time it used.
public struct EmbodiedModel: Hashable, Sendable {
    /// Identifier (`llmcarbon`).
    public var id: String
    /// Processor die area, in cm².
    public var dieAreaSquareCentimetres: Double
    /// Manufacturing emissions per cm² of die, in kgCO₂e.
    public var kilogramsPerSquareCentimetre: Double
    /// Memory on the package, in GB.
    public var memoryGigabytes: Double
    /// Manufacturing emissions per GB of memory, in kgCO₂e.
    public var kilogramsPerGigabyte: Double
    /// Service life over which the emissions are spread, in years.
    public var lifetimeYears: Double
    /// Where the figures come from.
    public var source: String

    /// Creates an embodied model.
    public init(
        id: String, dieAreaSquareCentimetres: Double, kilogramsPerSquareCentimetre: Double, memoryGigabytes: Double,
        kilogramsPerGigabyte: Double, lifetimeYears: Double, source: String
    ) {
        self.id = id
        self.dieAreaSquareCentimetres = dieAreaSquareCentimetres
        self.kilogramsPerSquareCentimetre = kilogramsPerSquareCentimetre
        self.memoryGigabytes = memoryGigabytes
        self.kilogramsPerGigabyte = kilogramsPerGigabyte
        self.lifetimeYears = lifetimeYears
        self.source = source
    }

    /// Total embodied emissions of one GPU.
    public var perGPU: CarbonMass {
        CarbonMass(grams: 1e3 * (dieAreaSquareCentimetres * kilogramsPerSquareCentimetre + memoryGigabytes * kilogramsPerGigabyte))
    }

    /// Seconds in the service life, in 365-day years (8,760 h), as the SCI specification's worked example counts them.
    public var lifetimeSeconds: Double { lifetimeYears * 365 * 86_400 }

    /// The share of one GPU's embodied emissions that `gpuSeconds` of use carries (SCI: TE × TiR / EL).
    public func share(gpuSeconds: Double) -> CarbonMass {
        CarbonMass(grams: perGPU.grams * gpuSeconds / lifetimeSeconds)
    }

    /// Every problem with the figures, by field name.
    public func validate() -> [(field: String, message: String)] {
        var problems: [(String, String)] = []
        for (field, value) in [
            ("dieAreaCm2", dieAreaSquareCentimetres), ("kgPerCm2", kilogramsPerSquareCentimetre),
            ("memoryGB", memoryGigabytes), ("kgPerGB", kilogramsPerGigabyte),
        ] where !(value.isFinite && value >= 0) {
            problems.append((field, "expected a non-negative number, got \(value)"))
        }
        if !(lifetimeYears.isFinite && lifetimeYears > 0) {
            problems.append(("lifetimeYears", "expected a positive number of years, got \(lifetimeYears)"))
        }
        return problems
    }
}
