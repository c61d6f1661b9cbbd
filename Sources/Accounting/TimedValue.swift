/// A value over a span of time: one forecast or measured intensity point, or one window's mean.
/// Times are seconds since 1970 (UTC); `value` is in the series' unit (gCO₂e/kWh for intensity).
public struct TimedValue: Hashable, Sendable, Codable {
    public var start: Double
    public var duration: Double
    public var value: Double

    public init(start: Double, duration: Double, value: Double) {
        self.start = start
        self.duration = duration
        self.value = value
    }

    public var end: Double { start + duration }
}
