import Foundation

/// A small, fast, seeded pseudo-random generator (SplitMix64, Steele, Lea & Flood 2014).
/// The same seed gives the same stream on every platform; pass it `inout`.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// Creates a generator from `seed`.
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform number in [0, 1) with 53 random bits.
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// A uniform number in (0, 1], safe for logarithms.
    public mutating func openUnit() -> Double { 1 - unit() }

    /// A standard normal variate (Box–Muller; one of the pair is discarded to keep the state simple).
    public mutating func normal() -> Double {
        let u1 = openUnit()
        let u2 = unit()
        return (-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)
    }

    /// An exponential variate with mean `mean`.
    public mutating func exponential(mean: Double) -> Double { -mean * log(openUnit()) }

    /// A gamma variate with shape `k` and scale `theta` (Marsaglia & Tsang 2000; boosted for k < 1).
    public mutating func gamma(shape k: Double, scale theta: Double) -> Double {
        precondition(k > 0 && theta > 0, "gamma needs a positive shape and scale, got \(k), \(theta)")
        if k < 1 {
            let u = openUnit()
            return gamma(shape: k + 1, scale: theta) * pow(u, 1 / k)
        }
        let d = k - 1.0 / 3
        let c = 1 / (9 * d).squareRoot()
        while true {
            var x: Double
            var v: Double
            repeat {
                x = normal()
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = openUnit()
            if log(u) < 0.5 * x * x + d - d * v + d * log(v) { return d * v * theta }
        }
    }
}
