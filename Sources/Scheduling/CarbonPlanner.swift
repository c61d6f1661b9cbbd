import Accounting
import CarbonData

/// A planned window as the CLI's and the API's JSON give it: ISO 8601 bounds and the mean.
public struct PlanWindow: Encodable, Sendable, Hashable {
    public var start: String
    public var end: String
    public var intensityGramsPerKWh: Double

    public init(_ v: TimedValue) {
        start = WallClock.string(v.start)
        end = WallClock.string(v.end)
        intensityGramsPerKWh = v.value
    }
}

/// One region's answer to a planning query.
public struct RegionWindowPlan: Sendable, Hashable {
    public var metadata: SeriesMetadata
    /// The plan: the first lowest window, or for an interruptible job the span of its slices with
    /// their mean.
    public var chosen: TimedValue
    /// Every window with the lowest mean, in time order.
    public var best: [TimedValue]
    /// An interruptible job's slices.
    public var slices: [TimedValue]?
    /// The window starting at the earliest start.
    public var startingNow: TimedValue
    public var windowsCompared: Int

    /// How far the plan lies below starting at once in this region, in percent.
    public var savingPercent: Double { CarbonPlan.percentBelow(chosen.value, startingNow.value) }
}

/// The answer to a planning query over one or more regions: the lowest region's plan, against
/// starting at once in the first region given.
public struct CarbonPlan: Sendable, Hashable {
    public var regions: [RegionWindowPlan]
    /// The region whose plan is lowest (the first listed among equals).
    public var winner: Int
    public var searchStart: Double
    public var searchEnd: Double
    public var duration: Double
    public var interruptible: Bool

    public var chosen: RegionWindowPlan { regions[winner] }
    /// Starting at once in the first region given: what the saving is measured against.
    public var baseline: TimedValue { regions[0].startingNow }
    public var savingPercent: Double { Self.percentBelow(chosen.chosen.value, baseline.value) }
    public var windowsCompared: Int { regions.reduce(0) { $0 + $1.windowsCompared } }

    /// A job of `energyKWh`'s emissions run as planned, and run at once (kg CO₂e).
    public func emissionsKg(energyKWh: Double) -> (planned: Double, startingNow: Double) {
        (energyKWh * chosen.chosen.value / 1000, energyKWh * baseline.value / 1000)
    }

    /// How far `value` lies below `reference`, in percent of it (0 when the reference is 0).
    public static func percentBelow(_ value: Double, _ reference: Double) -> Double {
        reference > 0 ? 100 * (reference - value) / reference : 0
    }
}

/// Why a planning query has no answer; `what` names the series.
public enum CarbonPlanError: Error, CustomStringConvertible {
    case noSeries
    case forecastEndsBeforeStart(what: String, end: Double, start: Double)
    case forecastStartsAfterDeadline(what: String, start: Double, deadline: Double)
    case search(what: String, WindowSearchError)
    case interruptible(what: String, InterruptibleSearch.Failure)

    public var description: String {
        switch self {
        case .noSeries: return "no carbon-intensity series to plan on"
        case .forecastEndsBeforeStart(let what, let end, let start):
            return "\(what): the forecast ends at \(WallClock.string(end)), not after the earliest start \(WallClock.string(start))"
        case .forecastStartsAfterDeadline(let what, let start, let deadline):
            return "\(what): the forecast starts at \(WallClock.string(start)), not before the deadline \(WallClock.string(deadline))"
        case .search(let what, let e):
            switch e {
            case .boundsOutsideData(let s, let e, let ds, let de):
                return "\(what): the search from \(WallClock.string(s)) to \(WallClock.string(e)) is not inside the data, which runs from \(WallClock.string(ds)) to \(WallClock.string(de))"
            case .startNotBeforeEnd(let s, let e):
                return "\(what): the deadline \(WallClock.string(e)) is not after the earliest start \(WallClock.string(s))"
            default:
                return "\(what): \(e)"
            }
        case .interruptible(let what, let e): return "\(what): \(e)"
        }
    }
}

/// Scheduling's one planner: the CLI, the API and the dashboard all answer through it, on series
/// chosen by the one rule (`LedgerQueries.planningSeries`), so they give the same window for the
/// same ledger and query.
public enum CarbonPlanner {
    /// Plans a job of `duration` seconds between `start` and `end` (nil: each series' own bounds)
    /// over each series (one per region): the Carbon Aware SDK's window semantics, or the lowest
    /// slices no shorter than `minimumSlice` for an interruptible job.
    public static func plan(
        _ series: [CarbonSeries], duration: Double, start: Double? = nil, end: Double? = nil, interruptible: Bool = false, minimumSlice: Double = 1800
    ) throws -> CarbonPlan {
        guard !series.isEmpty else { throw CarbonPlanError.noSeries }
        var regions: [RegionWindowPlan] = []
        for s in series {
            let what = "\(s.metadata.origin) (\(s.metadata.region))"
            if let start, start >= s.end { throw CarbonPlanError.forecastEndsBeforeStart(what: what, end: s.end, start: start) }
            if let end, end <= s.start { throw CarbonPlanError.forecastStartsAfterDeadline(what: what, start: s.start, deadline: end) }
            let search: WindowSearch.Plan
            do {
                search = try WindowSearch.plan(s.points, window: duration, start: start, end: end)
            } catch let e as WindowSearchError {
                throw CarbonPlanError.search(what: what, e)
            }
            var chosen = search.best[0]
            var slices: [TimedValue]?
            if interruptible {
                do {
                    let p = try InterruptibleSearch.plan(s.points, duration: duration, minimumSlice: minimumSlice, start: start, end: end)
                    slices = p.slices
                    chosen = TimedValue(start: p.slices[0].start, duration: p.slices.last!.end - p.slices[0].start, value: p.meanIntensity)
                } catch let e as InterruptibleSearch.Failure {
                    throw CarbonPlanError.interruptible(what: what, e)
                }
            }
            regions.append(RegionWindowPlan(
                metadata: s.metadata, chosen: chosen, best: search.best, slices: slices, startingNow: search.startingNow,
                windowsCompared: search.windows.count
            ))
        }
        let winner = regions.indices.min { (regions[$0].chosen.value, $0) < (regions[$1].chosen.value, $1) }!
        return CarbonPlan(
            regions: regions, winner: winner, searchStart: start ?? series.map(\.start).min()!, searchEnd: end ?? series.map(\.end).max()!,
            duration: duration, interruptible: interruptible
        )
    }
}
