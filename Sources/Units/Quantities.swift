/// Physical quantities as small value types, so that a unit lives in the type and not in a comment.
///
/// Each stores its value in the SI base unit named by its property (`seconds`, `watts`, `joules`).
/// Arithmetic is limited to what is dimensionally meaningful: `Power × TimeSpan = Energy`,
/// `Energy / TimeSpan = Power`, sums of like quantities, and scaling by a plain number.

/// A span of time, in seconds.
public struct TimeSpan: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The span in seconds.
    public var seconds: Double

    /// Creates a span of `seconds` seconds.
    public init(seconds: Double) { self.seconds = seconds }
    /// Creates a span of `milliseconds` milliseconds.
    public static func milliseconds(_ value: Double) -> TimeSpan { TimeSpan(seconds: value / 1e3) }
    /// Creates a span of `microseconds` microseconds.
    public static func microseconds(_ value: Double) -> TimeSpan { TimeSpan(seconds: value / 1e6) }
    /// Creates a span of `hours` hours.
    public static func hours(_ value: Double) -> TimeSpan { TimeSpan(seconds: value * 3600) }
    /// No time at all.
    public static let zero = TimeSpan(seconds: 0)

    /// The span in milliseconds.
    public var milliseconds: Double { seconds * 1e3 }
    /// The span in microseconds.
    public var microseconds: Double { seconds * 1e6 }
    /// The span in hours.
    public var hours: Double { seconds / 3600 }

    public static func < (a: TimeSpan, b: TimeSpan) -> Bool { a.seconds < b.seconds }
    public static func + (a: TimeSpan, b: TimeSpan) -> TimeSpan { TimeSpan(seconds: a.seconds + b.seconds) }
    public static func - (a: TimeSpan, b: TimeSpan) -> TimeSpan { TimeSpan(seconds: a.seconds - b.seconds) }
    public static func += (a: inout TimeSpan, b: TimeSpan) { a.seconds += b.seconds }
    public static func * (a: TimeSpan, k: Double) -> TimeSpan { TimeSpan(seconds: a.seconds * k) }
    public static func * (k: Double, a: TimeSpan) -> TimeSpan { TimeSpan(seconds: a.seconds * k) }
    public static func / (a: TimeSpan, k: Double) -> TimeSpan { TimeSpan(seconds: a.seconds / k) }
    public static func / (a: TimeSpan, b: TimeSpan) -> Double { a.seconds / b.seconds }
    public var description: String { "\(seconds) s" }
}

/// A rate of energy use, in watts.
public struct Power: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The power in watts.
    public var watts: Double

    /// Creates a power of `watts` watts.
    public init(watts: Double) { self.watts = watts }
    /// Creates a power of `kilowatts` kilowatts.
    public static func kilowatts(_ value: Double) -> Power { Power(watts: value * 1e3) }
    /// No power at all.
    public static let zero = Power(watts: 0)

    /// The power in kilowatts.
    public var kilowatts: Double { watts / 1e3 }

    public static func < (a: Power, b: Power) -> Bool { a.watts < b.watts }
    public static func + (a: Power, b: Power) -> Power { Power(watts: a.watts + b.watts) }
    public static func - (a: Power, b: Power) -> Power { Power(watts: a.watts - b.watts) }
    public static func * (a: Power, k: Double) -> Power { Power(watts: a.watts * k) }
    public static func * (k: Double, a: Power) -> Power { Power(watts: a.watts * k) }
    public static func * (p: Power, t: TimeSpan) -> Energy { Energy(joules: p.watts * t.seconds) }
    public static func * (t: TimeSpan, p: Power) -> Energy { Energy(joules: p.watts * t.seconds) }
    public var description: String { "\(watts) W" }
}

/// An amount of energy, in joules.
public struct Energy: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The energy in joules.
    public var joules: Double

    /// Creates an energy of `joules` joules.
    public init(joules: Double) { self.joules = joules }
    /// Creates an energy of `kilowattHours` kWh.
    public static func kilowattHours(_ value: Double) -> Energy { Energy(joules: value * 3.6e6) }
    /// No energy at all.
    public static let zero = Energy(joules: 0)

    /// The energy in kilowatt-hours.
    public var kilowattHours: Double { joules / 3.6e6 }

    public static func < (a: Energy, b: Energy) -> Bool { a.joules < b.joules }
    public static func + (a: Energy, b: Energy) -> Energy { Energy(joules: a.joules + b.joules) }
    public static func - (a: Energy, b: Energy) -> Energy { Energy(joules: a.joules - b.joules) }
    public static func += (a: inout Energy, b: Energy) { a.joules += b.joules }
    public static func * (a: Energy, k: Double) -> Energy { Energy(joules: a.joules * k) }
    public static func * (k: Double, a: Energy) -> Energy { Energy(joules: a.joules * k) }
    public static func / (a: Energy, k: Double) -> Energy { Energy(joules: a.joules / k) }
    public static func / (e: Energy, t: TimeSpan) -> Power { Power(watts: e.joules / t.seconds) }
    public var description: String { "\(joules) J" }
}
