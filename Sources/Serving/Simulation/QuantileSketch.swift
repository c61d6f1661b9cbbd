import Accounting
import Foundation

/// Quantiles of a stream in bounded memory: values land in geometric buckets 1 % wide, so any
/// quantile is reported within 0.5 % of a value that was seen (relative accuracy, like DDSketch).
public struct QuantileSketch: Sendable {
    private static let gamma = 1.01
    private static let logGamma = log(gamma)
    private var buckets: [Int: Int] = [:]
    private var zeros = 0
    /// Values added.
    public private(set) var count = 0
    /// Smallest and largest values added.
    public private(set) var minimum = Double.infinity
    public private(set) var maximum = -Double.infinity

    public init() {}

    /// Adds a non-negative value.
    public mutating func add(_ x: Double) {
        count += 1
        minimum = min(minimum, x)
        maximum = max(maximum, x)
        if x <= 1e-12 { zeros += 1; return }
        buckets[Int((log(x) / Self.logGamma).rounded(.up)), default: 0] += 1
    }

    /// The `q`-quantile (0…1), or nil when empty: the bucket holding the rank ⌈q·n⌉ value.
    public func quantile(_ q: Double) -> Double? {
        guard count > 0 else { return nil }
        let rank = max(1, Int((q * Double(count)).rounded(.up)))
        if rank <= zeros { return 0 }
        var seen = zeros
        for key in buckets.keys.sorted() {
            seen += buckets[key] ?? 0
            if seen >= rank {
                let mid = 2 * pow(Self.gamma, Double(key)) / (Self.gamma + 1)
                return min(max(mid, minimum), maximum)
            }
        }
        return maximum
    }
}
