import Units

/// Grid carbon intensity: grams of CO₂-equivalent emitted per kilowatt-hour drawn.
public struct CarbonIntensity: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The intensity in gCO₂e/kWh.
    public var gramsPerKWh: Double

    /// Creates an intensity of `gramsPerKWh` gCO₂e/kWh.
    @inlinable
    public init(gramsPerKWh: Double) { self.gramsPerKWh = gramsPerKWh }

    /// Converts a WattTime-style figure in pounds per MWh (1 lb = 453.59237 g; REFERENCE.md §6).
    public static func poundsPerMWh(_ value: Double) -> CarbonIntensity {
        CarbonIntensity(gramsPerKWh: value * 453.59237 / 1000)
    }

    public static func < (a: CarbonIntensity, b: CarbonIntensity) -> Bool { a.gramsPerKWh < b.gramsPerKWh }
    public var description: String { "\(gramsPerKWh) g/kWh" }
}

/// A mass of CO₂-equivalent emissions, in grams.
public struct CarbonMass: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The mass in grams.
    public var grams: Double

    /// Creates a mass of `grams` grams.
    public init(grams: Double) { self.grams = grams }
    /// No emissions.
    public static let zero = CarbonMass(grams: 0)

    /// The mass in kilograms.
    public var kilograms: Double { grams / 1e3 }

    public static func < (a: CarbonMass, b: CarbonMass) -> Bool { a.grams < b.grams }
    public static func + (a: CarbonMass, b: CarbonMass) -> CarbonMass { CarbonMass(grams: a.grams + b.grams) }
    public static func += (a: inout CarbonMass, b: CarbonMass) { a.grams += b.grams }
    public var description: String { "\(grams) g" }
}

extension Energy {
    /// The emissions of drawing this energy at `intensity`.
    public func emissions(at intensity: CarbonIntensity) -> CarbonMass {
        CarbonMass(grams: kilowattHours * intensity.gramsPerKWh)
    }
}

/// Which grid signal an intensity is: the average of the generation mix, or the marginal
/// generator's rate (what one more kWh would emit).
public enum CarbonSignal: String, CaseIterable, Codable, Hashable, Sendable {
    case average
    case marginal
}

/// Which emissions an intensity counts: combustion at the power plant only (`direct`, the usual
/// basis of GHG Protocol Scope 2 location-based factors), or the whole life cycle of the plants
/// and fuels (`lifecycle`, Electricity Maps' default). `unspecified` when a source does not say.
public enum EmissionFactorType: String, CaseIterable, Codable, Hashable, Sendable {
    case direct
    case lifecycle
    case unspecified
}
