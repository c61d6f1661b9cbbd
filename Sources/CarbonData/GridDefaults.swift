import Accounting

/// A region's annual average grid intensity, from a published data set.
public struct GridAnnualFactor: Hashable, Sendable, Codable {
    public var region: String
    public var name: String
    public var gramsPerKWh: Double
    public var factor: EmissionFactorType
    public var year: Int?
    /// A source id from Data/SOURCES.md.
    public var source: String

    public init(region: String, name: String, gramsPerKWh: Double, factor: EmissionFactorType, year: Int?, source: String) {
        self.region = region
        self.name = name
        self.gramsPerKWh = gramsPerKWh
        self.factor = factor
        self.year = year
        self.source = source
    }
}

/// A typical day: the mean intensity of each UTC hour over a year.
public struct GridProfile: Hashable, Sendable, Codable {
    public var region: String
    public var factor: EmissionFactorType
    public var year: Int
    public var source: String
    /// 24 values, hour 0 to 23 UTC.
    public var hourlyMeanUTC: [Double]

    public init(region: String, factor: EmissionFactorType, year: Int, source: String, hourlyMeanUTC: [Double]) {
        precondition(hourlyMeanUTC.count == 24, "a daily profile has 24 hourly values")
        self.region = region
        self.factor = factor
        self.year = year
        self.source = source
        self.hourlyMeanUTC = hourlyMeanUTC
    }

    /// Hourly points covering [from, to), each the profile's value for its UTC hour: a
    /// climatological forecast for when no real forecast is at hand.
    public func points(from: Double, to: Double) -> [TimedValue] {
        var t = (from / 3600).rounded(.down) * 3600
        var out: [TimedValue] = []
        while t < to {
            let hour = Int((t.truncatingRemainder(dividingBy: 86_400) + 86_400).truncatingRemainder(dividingBy: 86_400) / 3600)
            out.append(TimedValue(start: t, duration: 3600, value: hourlyMeanUTC[hour]))
            t += 3600
        }
        return out
    }

    public var series: SeriesMetadata {
        SeriesMetadata(region: region, signal: .average, factor: factor, kind: .forecast, source: "\(source) daily profile", resolutionSeconds: 3600, origin: "Data/grids/profiles.yaml")
    }
}

/// The grid defaults shipped in Data/grids (derived statistics; see Data/SOURCES.md).
public struct GridDefaults: Hashable, Sendable {
    public var annual: [GridAnnualFactor]
    public var profiles: [GridProfile]

    /// Sources in the order a default is picked when several give a region: the zone-level
    /// measurement first, then official national inventories, then the global table.
    public static let preference = ["electricitymaps-2023", "mee-2023", "egrid-2023", "ecologits-2025"]

    public init(annual: [GridAnnualFactor], profiles: [GridProfile]) {
        self.annual = annual
        self.profiles = profiles
    }

    static func rank(_ source: String) -> Int { preference.firstIndex(of: source) ?? preference.count }

    /// The annual factor for `region` (case-insensitive), of `factor` type when given, from the
    /// most preferred source.
    public func annual(region: String, factor: EmissionFactorType? = nil) -> GridAnnualFactor? {
        annual.filter { $0.region.uppercased() == region.uppercased() && (factor == nil || $0.factor == factor) }
            .min { (Self.rank($0.source), $0.factor.rawValue) < (Self.rank($1.source), $1.factor.rawValue) }
    }

    public func profile(region: String, factor: EmissionFactorType? = nil) -> GridProfile? {
        profiles.filter { $0.region.uppercased() == region.uppercased() && (factor == nil || $0.factor == factor) }
            .min { $0.factor.rawValue < $1.factor.rawValue }
    }
}
