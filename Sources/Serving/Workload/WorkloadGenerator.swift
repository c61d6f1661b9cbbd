import Accounting
import Units
/// A seeded synthetic workload: arrivals from a renewal process shaped by a daily profile, lengths
/// from distributions, and a share of each prompt found in the prefix cache.
public struct GeneratorSpec: Hashable, Sendable {
    /// Mean arrival rate over a day, in requests per second.
    public var ratePerSecond: Double
    /// Gap distribution.
    public var arrivals: ArrivalProcess
    /// Rate multiplier by time of day (normalised to a daily mean of 1 when the stream is built).
    public var profile: DailyProfile
    /// Prompt lengths.
    public var prompt: LengthDistribution
    /// Output lengths.
    public var output: LengthDistribution
    /// Share of each prompt served from the prefix cache (0 ≤ f < 1); at least one token is always computed.
    public var cachedFraction: Double

    /// Creates a generator spec.
    public init(
        ratePerSecond: Double, arrivals: ArrivalProcess = .poisson, profile: DailyProfile = .flat,
        prompt: LengthDistribution, output: LengthDistribution, cachedFraction: Double = 0
    ) {
        self.ratePerSecond = ratePerSecond
        self.arrivals = arrivals
        self.profile = profile
        self.prompt = prompt
        self.output = output
        self.cachedFraction = cachedFraction
    }

    /// Problems, by field relative to the generator.
    public func validate() -> [(field: String, message: String)] {
        var p: [(String, String)] = []
        // One request in 11.6 days up to a million a second: beyond either end a run either never
        // sees a request or cannot be simulated in memory.
        if !(ratePerSecond.isFinite && (1e-6...1e6).contains(ratePerSecond)) {
            p.append(("ratePerSecond", "expected 1e-6 to 1e6 requests per second, got \(ratePerSecond)"))
        }
        if case .gamma(let cv) = arrivals, !(cv.isFinite && cv > 0 && cv <= 100) {
            p.append(("arrivals.cv", "expected a coefficient of variation above 0 and at most 100, got \(cv)"))
        }
        p += profile.validate().map { ("dailyProfile\($0.field)", $0.message) }
        p += prompt.validate().map { ("prompt.\($0.field)", $0.message) }
        p += output.validate().map { ("output.\($0.field)", $0.message) }
        if !(0..<1).contains(cachedFraction) { p.append(("cachedFraction", "expected a share from 0 up to (not including) 1, got \(cachedFraction)")) }
        return p
    }
}

/// The request stream a `GeneratorSpec` describes, for a run starting at `startEpochSeconds`.
///
/// Arrivals use time rescaling: gaps of mean 1 are drawn in "operational time" and mapped through
/// the integral of the rate, so a daily profile changes the rate exactly at its steps.
public struct GeneratedStream: RequestStream {
    private let spec: GeneratorSpec
    private let profile: DailyProfile
    private let startEpoch: Double
    private var rng: SplitMix64
    private var now = 0.0
    private var nextID = 0

    /// Creates the stream.
    public init(_ spec: GeneratorSpec, startEpochSeconds: Double, seed: UInt64) {
        self.spec = spec
        self.profile = spec.profile.normalised
        self.startEpoch = startEpochSeconds
        self.rng = SplitMix64(seed: seed)
    }

    public var isFinite: Bool { false }

    public mutating func next() -> ServingRequest? {
        var remaining = spec.arrivals.unitGap(&rng)
        while true {
            let (factor, until) = profile.segment(atEpochSeconds: startEpoch + now)
            let rate = spec.ratePerSecond * factor
            let span = until - startEpoch - now
            if rate > 0 && remaining <= rate * span {
                now += remaining / rate
                break
            }
            remaining -= rate * span
            now = until - startEpoch
        }
        let prompt = spec.prompt.sample(&rng)
        let output = spec.output.sample(&rng)
        let cached = min(Int((Double(prompt) * spec.cachedFraction).rounded()), prompt - 1)
        defer { nextID += 1 }
        return ServingRequest(id: nextID, arrival: now, promptTokens: prompt, cachedTokens: cached, outputTokens: output)
    }
}
