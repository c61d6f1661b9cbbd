import Accounting
import Foundation

/// Quantiles of a stream in bounded memory, mergeable: values land in log-linear buckets (each
/// power of two split into 128 equal steps, read straight off the value's bits), so any quantile is
/// reported within 0.4 % of a value that was seen (relative accuracy, like DDSketch or an HDR
/// histogram). Counts live in one array indexed by bucket: adding a value is a shift and an
/// increment, with no hashing and no logarithm.
public struct QuantileSketch: Sendable, Hashable {
    /// Mantissa bits that select a bucket within a power of two: 2^7 = 128 steps, each under 0.79 %
    /// wide, so the bucket's harmonic midpoint is within 0.39 % of anything in it.
    static let mantissaBits = 7
    private static let shift = UInt64(52 - mantissaBits)
    /// At or below this a value counts as zero (a latency or energy that small is a zero).
    public static let zeroThreshold = 1e-12

    /// `counts[i]` holds values whose bucket key is `base + i`.
    private var counts: [UInt32] = []
    private var base = 0
    private var zeros = 0
    /// Values added.
    public private(set) var count = 0
    /// Smallest and largest values added.
    public private(set) var minimum = Double.infinity
    public private(set) var maximum = -Double.infinity

    public init() {}

    /// The bucket of a positive finite value: its exponent and top mantissa bits.
    @inline(__always) static func key(_ x: Double) -> Int { Int(truncatingIfNeeded: x.bitPattern >> shift) }

    /// The smallest value of bucket `key`.
    static func lowerBound(_ key: Int) -> Double { Double(bitPattern: UInt64(key) << shift) }

    /// Adds a non-negative value (negative and NaN values count as zero; +∞ lands in the top bucket).
    @inline(__always)
    public mutating func add(_ x: Double) {
        count += 1
        if x < minimum { minimum = x }
        if x > maximum { maximum = x }
        guard x > Self.zeroThreshold else { zeros += 1; return }
        let k = Self.key(x)
        let i = k - base
        if i >= 0 && i < counts.count {
            counts[i] &+= 1
        } else {
            grow(toHold: k)
            counts[k - base] &+= 1
        }
    }

    /// Widens the array to hold `key`, with room to spare so growth is rare.
    private mutating func grow(toHold key: Int) {
        let step = 1 << Self.mantissaBits
        if counts.isEmpty {
            base = key - step
            counts = Array(repeating: 0, count: 4 * step)
            return
        }
        let low = min(base, key - step), high = max(base + counts.count, key + step + 1)
        var wider = [UInt32](repeating: 0, count: high - low)
        wider.replaceSubrange((base - low)..<(base - low + counts.count), with: counts)
        counts = wider
        base = low
    }

    /// Adds every value `other` holds: the result is the sketch of both streams.
    public mutating func merge(_ other: QuantileSketch) {
        guard other.count > 0 else { return }
        count += other.count
        zeros += other.zeros
        minimum = min(minimum, other.minimum)
        maximum = max(maximum, other.maximum)
        for (i, c) in other.counts.enumerated() where c > 0 {
            let k = other.base + i
            if k - base < 0 || k - base >= counts.count { grow(toHold: k) }
            counts[k - base] &+= c
        }
    }

    /// The `q`-quantile (0…1), or nil when empty: the bucket holding the rank ⌈q·n⌉ value, as the
    /// bucket's harmonic midpoint clamped to the values seen.
    public func quantile(_ q: Double) -> Double? {
        guard count > 0 else { return nil }
        let rank = max(1, Int((q * Double(count)).rounded(.up)))
        if rank <= zeros { return max(minimum, 0) }
        var seen = zeros
        for (i, c) in counts.enumerated() where c > 0 {
            seen += Int(c)
            if seen >= rank {
                return min(max(Self.representative(key: base + i), minimum), maximum)
            }
        }
        return maximum
    }

    /// The value a bucket stands for: its harmonic midpoint, within 0.39 % of anything in it.
    public static func representative(key: Int) -> Double {
        let lo = lowerBound(key), hi = lowerBound(key + 1)
        return hi.isFinite ? 2 * lo * hi / (lo + hi) : lo
    }

    /// The non-empty buckets as (key, count), in key order: the sketch's portable form, with
    /// `zeros`, `count`, `minimum` and `maximum`.
    public var buckets: [(key: Int, count: Int)] {
        counts.enumerated().compactMap { $0.element > 0 ? (base + $0.offset, Int($0.element)) : nil }
    }

    public var zeroCount: Int { zeros }

    /// Rebuilds a sketch from its portable form; nil when the parts do not agree (a count that is
    /// not the sum of its buckets, a bucket key outside the positive finite doubles).
    public init?(buckets: [(key: Int, count: Int)], zeros: Int, minimum: Double, maximum: Double) {
        let maxKey = Self.key(.greatestFiniteMagnitude)
        guard zeros >= 0, buckets.allSatisfy({ $0.count > 0 && $0.count <= Int(UInt32.max) && $0.key > 0 && $0.key <= maxKey }) else { return nil }
        let total = buckets.reduce(zeros) { $0 + $1.count }
        guard total == 0 || (minimum <= maximum && !minimum.isNaN) else { return nil }
        self.init()
        for b in buckets {
            if b.key - base < 0 || b.key - base >= counts.count { grow(toHold: b.key) }
            counts[b.key - base] &+= UInt32(b.count)
        }
        self.zeros = zeros
        count = total
        if total > 0 { self.minimum = minimum; self.maximum = maximum }
    }

    /// Two sketches are equal when they hold the same counts in the same buckets and the same
    /// extremes, however their arrays were grown.
    public static func == (a: QuantileSketch, b: QuantileSketch) -> Bool {
        a.count == b.count && a.zeros == b.zeros && a.minimum.bitPattern == b.minimum.bitPattern
            && a.maximum.bitPattern == b.maximum.bitPattern && a.buckets.elementsEqual(b.buckets) { $0 == $1 }
    }

    public func hash(into h: inout Hasher) {
        h.combine(count)
        h.combine(zeros)
        for b in buckets {
            h.combine(b.key)
            h.combine(b.count)
        }
    }
}
