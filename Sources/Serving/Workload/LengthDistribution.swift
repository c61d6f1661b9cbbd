import Accounting
import Units
import Foundation

/// A distribution of token counts (prompt or output lengths), sampled with a seeded generator.
public enum LengthDistribution: Hashable, Sendable {
    /// Always `n`.
    case fixed(Int)
    /// Uniform over `min...max`.
    case uniform(min: Int, max: Int)
    /// Log-normal with arithmetic mean `mean` and log-space standard deviation `sigma`, clamped to `min...max`.
    case lognormal(mean: Double, sigma: Double, min: Int, max: Int)
    /// Drawn uniformly from observed values (for example a trace's lengths).
    case empirical([Int])

    /// Draws one length.
    public func sample(_ rng: inout SplitMix64) -> Int {
        switch self {
        case .fixed(let n):
            return n
        case .uniform(let lo, let hi):
            return lo + Int(rng.next() % UInt64(hi - lo + 1))
        case .lognormal(let mean, let sigma, let lo, let hi):
            let mu = log(mean) - sigma * sigma / 2
            let x = exp(mu + sigma * rng.normal())
            // Clamped before converting: a tail draw beyond Int's range is `hi`, never a trap.
            return Int(Swift.min(Swift.max(x.rounded(), Double(lo)), Double(hi)))
        case .empirical(let values):
            return values[Int(rng.next() % UInt64(values.count))]
        }
    }

    /// The expected value (before clamping, for log-normal).
    public var mean: Double {
        switch self {
        case .fixed(let n): return Double(n)
        case .uniform(let lo, let hi): return Double(lo + hi) / 2
        case .lognormal(let mean, _, _, _): return mean
        case .empirical(let values): return Double(values.reduce(0, +)) / Double(values.count)
        }
    }

    /// The largest value it can produce.
    public var maximum: Int {
        switch self {
        case .fixed(let n): return n
        case .uniform(_, let hi): return hi
        case .lognormal(_, _, _, let hi): return hi
        case .empirical(let values): return values.max() ?? 0
        }
    }

    /// Problems with the parameters, by field name relative to the distribution.
    public func validate() -> [(field: String, message: String)] {
        let most = TraceLimits.tokens
        switch self {
        case .fixed(let n):
            return (1...most).contains(n) ? [] : [("tokens", "expected 1 to \(most), got \(n)")]
        case .uniform(let lo, let hi):
            return lo >= 1 && hi >= lo && hi <= most ? [] : [("min", "expected 1 ≤ min ≤ max ≤ \(most), got \(lo)…\(hi)")]
        case .lognormal(let mean, let sigma, let lo, let hi):
            var p: [(String, String)] = []
            if !(mean.isFinite && mean >= 1 && mean <= Double(most)) { p.append(("mean", "expected 1 to \(most) tokens, got \(mean)")) }
            if !(sigma.isFinite && sigma >= 0 && sigma <= 4) { p.append(("sigma", "expected 0 to 4, got \(sigma)")) }
            if !(lo >= 1 && hi >= lo && hi <= most) { p.append(("min", "expected 1 ≤ min ≤ max ≤ \(most), got \(lo)…\(hi)")) }
            return p
        case .empirical(let values):
            return values.isEmpty || values.contains { $0 < 1 || $0 > most } ? [("values", "expected a non-empty list of lengths from 1 to \(most)")] : []
        }
    }
}
