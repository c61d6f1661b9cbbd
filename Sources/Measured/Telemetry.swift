import Accounting

/// Why a telemetry file or request log cannot be read. Every case names the file and, where there
/// is one, the line (from 1) and the field.
public struct MeasuredInputError: Error, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var field: String?
    public var message: String

    public init(file: String, line: Int? = nil, field: String? = nil, _ message: String) {
        self.file = file
        self.line = line
        self.field = field
        self.message = message
    }

    public var description: String {
        var s = file
        if let line { s += ":\(line)" }
        if let field { s += ", field '\(field)'" }
        return s + ": " + message
    }
}

/// Something a reader or the attribution noticed in measured input and worked around: reported in
/// every measured run's summary, never silent.
public struct MeasuredIssue: Hashable, Sendable, Codable, CustomStringConvertible {
    public enum Kind: String, Hashable, Sendable, Codable, CaseIterable {
        /// Samples further apart than the run's usual spacing: energy across it is interpolated.
        case gap
        /// An energy counter went down (a driver reload or GPU reset): the step is not counted.
        case counterReset = "counter-reset"
        /// An energy counter wrapped at its width: the step is counted modulo the width.
        case counterWrap = "counter-wrap"
        /// Timestamps went backwards, or the request log and the telemetry disagree in time.
        case skew
        /// A sample without a value (`[N/A]`, `NaN`): left out.
        case missingValue = "missing-value"
        /// A request whose spans lack a time or token count.
        case missingSpan = "missing-span"
        /// A request on GPUs the telemetry does not have, or outside the telemetry's time range.
        case uncovered
        /// A line that could not be read, skipped with `--skip-bad-lines`.
        case skippedLine = "skipped-line"
    }

    public var kind: Kind
    /// The GPU index or request id it concerns, when one.
    public var subject: String?
    public var message: String

    public init(_ kind: Kind, subject: String? = nil, _ message: String) {
        self.kind = kind
        self.subject = subject
        self.message = message
    }

    public var description: String { "\(kind.rawValue)\(subject.map { " (\($0))" } ?? ""): \(message)" }
}

/// How a GPU track's energy was obtained.
public enum EnergyBasis: String, Hashable, Sendable, Codable {
    /// Differences of the GPU's cumulative energy counter (preferred where present).
    case counter
    /// Power samples integrated by the trapezoid rule.
    case integratedPower = "integrated-power"
}

/// One GPU's measured energy as a cumulative curve: joules drawn since the first sample, at each
/// sample time, linear between samples. Energy over any span is a difference of two
/// interpolations, so spans that tile a range add up to its energy exactly (to rounding).
public struct GPUEnergyTrack: Hashable, Sendable {
    /// The GPU's index on its node (`nvidia-smi`'s `index`, DCGM's `gpu` label), or its place in the file.
    public var gpu: Int
    public var uuid: String?
    public var basis: EnergyBasis
    /// Epoch seconds, strictly increasing, at least two.
    public private(set) var times: [Double]
    /// Joules since `times[0]`, non-decreasing.
    public private(set) var joules: [Double]

    public init(gpu: Int, uuid: String?, basis: EnergyBasis, times: [Double], joules: [Double]) {
        precondition(times.count == joules.count && times.count >= 2, "a GPU energy track needs two or more samples")
        self.gpu = gpu
        self.uuid = uuid
        self.basis = basis
        self.times = times
        self.joules = joules
    }

    public var start: Double { times[0] }
    public var end: Double { times[times.count - 1] }
    public var totalJoules: Double { joules[joules.count - 1] }

    /// Cumulative joules at `t` (clamped to the track).
    public func cumulative(at t: Double) -> Double {
        if t <= times[0] { return 0 }
        if t >= end { return totalJoules }
        var low = 0
        var high = times.count - 1
        while high - low > 1 {
            let mid = (low + high) / 2
            if times[mid] <= t { low = mid } else { high = mid }
        }
        let f = (t - times[low]) / (times[high] - times[low])
        return joules[low] + f * (joules[high] - joules[low])
    }

    /// Joules drawn over [a, b] (the part inside the track).
    public func energy(from a: Double, to b: Double) -> Double { b > a ? cumulative(at: b) - cumulative(at: a) : 0 }

    /// Mean power over the track.
    public var meanWatts: Double { totalJoules / (end - start) }

    /// Typical spacing of samples: their median gap.
    public var medianSpacing: Double {
        let gaps = zip(times.dropFirst(), times).map { $0 - $1 }.sorted()
        return gaps[gaps.count / 2]
    }
}

/// What a telemetry reader produced: a track per GPU and what it noticed.
public struct PowerTelemetry: Sendable {
    public var format: String
    public var origin: String
    public var tracks: [GPUEnergyTrack]
    public var issues: [MeasuredIssue]
    public var samples: Int

    public init(format: String, origin: String, tracks: [GPUEnergyTrack], issues: [MeasuredIssue], samples: Int) {
        self.format = format
        self.origin = origin
        self.tracks = tracks.sorted { $0.gpu < $1.gpu }
        self.issues = issues
        self.samples = samples
    }

    /// The time every track covers (nil when they do not overlap).
    public var commonRange: (start: Double, end: Double)? {
        guard let s = tracks.map(\.start).max(), let e = tracks.map(\.end).min(), e > s else { return nil }
        return (s, e)
    }

    public var totalJoules: Double { tracks.reduce(0) { $0 + $1.totalJoules } }

    /// The part of every track within [from, to] (tracks that do not reach into it left out), with
    /// the cut ends interpolated: what a window of a longer recording drew.
    public func clipped(from a: Double, to b: Double) -> PowerTelemetry {
        var copy = self
        copy.tracks = tracks.compactMap { t in
            let lo = max(a, t.start), hi = min(b, t.end)
            guard hi > lo else { return nil }
            let inner = t.times.filter { $0 > lo && $0 < hi }
            let times = [lo] + inner + [hi]
            let base = t.cumulative(at: lo)
            return GPUEnergyTrack(gpu: t.gpu, uuid: t.uuid, basis: t.basis, times: times, joules: times.map { t.cumulative(at: $0) - base })
        }
        return copy
    }

    /// Shifts every time by `seconds` (a known clock offset between telemetry and request log).
    public func shifted(by seconds: Double) -> PowerTelemetry {
        guard seconds != 0 else { return self }
        var copy = self
        copy.tracks = tracks.map { GPUEnergyTrack(gpu: $0.gpu, uuid: $0.uuid, basis: $0.basis, times: $0.times.map { $0 + seconds }, joules: $0.joules) }
        return copy
    }
}

/// Builds GPU tracks from raw samples, sample by sample, with the checks every format shares:
/// order, gaps, and counter resets and wraps.
struct TrackBuilder {
    struct Sample {
        var time: Double
        var watts: Double?
        var counterJoules: Double?
        var line: Int
    }

    var samples: [Int: [Sample]] = [:]
    var uuids: [Int: String] = [:]
    var issues: [MeasuredIssue] = []
    let file: String

    init(file: String) { self.file = file }

    mutating func add(gpu: Int, uuid: String?, _ sample: Sample) {
        samples[gpu, default: []].append(sample)
        if let uuid, uuids[gpu] == nil { uuids[gpu] = uuid }
    }

    /// Counters that fit in 32 bits of millijoules wrap at this many joules.
    static let wrap32Joules = Double(UInt64(1) << 32) / 1000

    /// The tracks: counters where every sample of a GPU has one, else integrated power.
    mutating func build(format: String) throws -> PowerTelemetry {
        var tracks: [GPUEnergyTrack] = []
        var total = 0
        for gpu in samples.keys.sorted() {
            var list = samples[gpu]!
            total += list.count
            // Times must increase: a step back is clock skew (reported; the sample is dropped).
            var ordered: [Sample] = []
            for s in list {
                if let last = ordered.last, s.time <= last.time {
                    issues.append(MeasuredIssue(.skew, subject: "GPU \(gpu)", "line \(s.line): time \(WallClock.fractionalString(s.time)) is not after the sample before (\(WallClock.fractionalString(last.time))); sample dropped"))
                    continue
                }
                ordered.append(s)
            }
            list = ordered
            let useCounter = list.allSatisfy { $0.counterJoules != nil }
            let usable = useCounter ? list : list.filter { $0.watts != nil }
            guard usable.count >= 2 else {
                throw MeasuredInputError(file: file, field: "GPU \(gpu)", "expected at least two samples with a value, got \(usable.count)")
            }
            var times = [usable[0].time]
            var joules = [0.0]
            for (a, b) in zip(usable, usable.dropFirst()) {
                var step: Double
                if useCounter {
                    step = b.counterJoules! - a.counterJoules!
                    if step < 0 {
                        if a.counterJoules! > 0.9 * Self.wrap32Joules && a.counterJoules! <= Self.wrap32Joules && b.counterJoules! < 0.1 * Self.wrap32Joules {
                            step += Self.wrap32Joules
                            issues.append(MeasuredIssue(.counterWrap, subject: "GPU \(gpu)", "line \(b.line): the energy counter wrapped at 2^32 mJ; counted across the wrap"))
                        } else {
                            // A reset: the counter restarted from zero at an unknown moment; count what it shows since.
                            step = b.counterJoules!
                            issues.append(MeasuredIssue(.counterReset, subject: "GPU \(gpu)", "line \(b.line): the energy counter went down from \(a.counterJoules!) J to \(b.counterJoules!) J; counted as a reset to zero"))
                        }
                    }
                } else {
                    step = (a.watts! + b.watts!) / 2 * (b.time - a.time)
                }
                times.append(b.time)
                joules.append(joules[joules.count - 1] + step)
            }
            let track = GPUEnergyTrack(gpu: gpu, uuid: uuids[gpu], basis: useCounter ? .counter : .integratedPower, times: times, joules: joules)
            let spacing = track.medianSpacing
            for (a, b) in zip(times, times.dropFirst()) where b - a > max(5 * spacing, spacing + 1) {
                issues.append(MeasuredIssue(.gap, subject: "GPU \(gpu)", "no sample for \(format1(b - a)) s from \(WallClock.fractionalString(a)) (usual spacing \(format1(spacing)) s); energy across it \(useCounter ? "from the counter" : "interpolated")"))
            }
            tracks.append(track)
        }
        guard !tracks.isEmpty else { throw MeasuredInputError(file: file, "no GPU samples") }
        return PowerTelemetry(format: format, origin: file, tracks: tracks, issues: issues, samples: total)
    }
}

func format1(_ v: Double) -> String {
    let r = (v * 1000).rounded() / 1000
    return r == r.rounded() && abs(r) < 1e15 ? String(Int(r)) : String(r)
}
