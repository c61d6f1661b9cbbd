import Accounting
import CarbonData
import Foundation
import Hummingbird
import Ledger
import Reports
import Scheduling
import Serving

struct RunDetailJSON: Encodable, Sendable {
    var run: RunOverview
    var storedRequests: Int
    var storedIntervals: Int
    var simulatedSeconds: Double
    var summary: RunSummary?
}

struct CarbonJSON: Encodable, Sendable {
    var series: [StoredSeries]
    var shownId: Int64?
    var points: [TimedValue]
}

/// `POST /api/schedule`: a job to plan on the ledger's carbon series.
struct ScheduleJob: Decodable, Sendable {
    var region: String
    var windowMinutes: Double
    var start: String?
    var end: String?
    var energyKWh: Double?
    var signal: CarbonSignal?
}

struct SchedulePlanJSON: Encodable, Sendable {
    typealias Window = PlanWindow
    var region: String
    var seriesId: Int64
    var best: Window
    var allBest: [Window]
    var startingNow: Window
    var savingPercent: Double
    var emissionsKg: Double?
    var emissionsStartingNowKg: Double?
    var windowsCompared: Int
}

extension JouleServer {
    func addAPIRoutes(to router: Router<BasicRequestContext>) {
        let ledger = self.ledger
        let server = self
        let api = router.group("api")
        api.get("health") { _, _ in JSONBody(value: ["status": "ok"]) }
        // Overviews are read from the runs and their batches, never the request rows: not gated.
        api.get("runs") { _, _ in
            JSONBody(value: try ledger.overviews())
        }
        api.get("runs/:id") { _, context in
            let id = try context.parameters.require("id", as: Int64.self)
            let run = try Self.lookup { try ledger.run(id) }
            let progress = try ledger.progress(run: id)
            let summary = run.summary.flatMap { try? JSONDecoder().decode(RunSummary.self, from: Data($0.utf8)) }
            return JSONBody(value: RunDetailJSON(
                run: try ledger.overview(run), storedRequests: progress.storedRequests, storedIntervals: progress.storedIntervals,
                simulatedSeconds: progress.checkpoint?.time ?? 0, summary: summary
            ))
        }
        api.get("runs/:id/requests") { request, context in
            let id = try context.parameters.require("id", as: Int64.self)
            let q = Query(request: request)
            var cursor: Int64? = nil
            if let text = q.string("cursor") {
                guard let c = Int64(text), c >= 0 else { throw HTTPError(.badRequest, message: "cursor: expected a cursor from a previous page, got '\(text)'") }
                cursor = c
            }
            let query = RequestQuery(
                from: try q.time("from"), to: try q.time("to"), minimumLatencySeconds: try q.double("minLatencySeconds", minimum: 0),
                minimumJoules: try q.double("minEnergyWh", minimum: 0).map { $0 * 3600 }, after: cursor, limit: try q.int("limit", range: 1...1000) ?? 100
            )
            let page = try Self.lookup { try ledger.requests(run: id, query) }
            return RequestPageBody(page: RequestPageJSON(items: page.items, nextCursor: page.next.map(String.init)))
        }
        api.get("runs/:id/requests/:requestId") { _, context in
            let id = try context.parameters.require("id", as: Int64.self)
            let requestId = try context.parameters.require("requestId", as: Int.self)
            return JSONBody(value: try Self.lookup { try ledger.breakdown(request: requestId, run: id) })
        }
        api.get("compare") { request, _ in
            let q = Query(request: request)
            guard let baseline = q.string("baseline").flatMap(Int64.init) else { throw HTTPError(.badRequest, message: "baseline: expected a run id") }
            let candidates = q.strings("candidate").compactMap(Int64.init)
            guard !candidates.isEmpty, candidates.count == q.strings("candidate").count else {
                throw HTTPError(.badRequest, message: "candidate: expected one or more run ids")
            }
            // Each run is read whole (seconds of CPU for a large run): the work per request is capped.
            guard candidates.count <= Self.mostCompared else {
                throw HTTPError(.badRequest, message: "candidate: at most \(Self.mostCompared) runs per comparison, got \(candidates.count)")
            }
            // Off the request's task: cancelled when the client leaves or past the server's limit.
            let comparison = try await server.bounded(request) {
                let metrics = try ([baseline] + candidates).map { id in
                    try Task.checkCancellation()
                    return try Self.lookup { try RunMetrics.load(ledger, run: id) }
                }
                guard metrics.allSatisfy({ $0.requests > 0 }) else { throw HTTPError(.badRequest, message: "every compared run needs finished requests") }
                try Task.checkCancellation()
                let comparison = try Comparison.build(ledger, metrics: metrics, location: ledger.location)
                try Task.checkCancellation()
                return comparison
            }
            return JSONBody(value: comparison)
        }
        api.get("carbon") { request, _ in
            let q = Query(request: request)
            let region = try q.required("region", q.string("region"))
            let kind = try q.string("kind").map { k -> SeriesKind in
                guard let v = SeriesKind(rawValue: k) else { throw HTTPError(.badRequest, message: "kind: expected actual or forecast, got '\(k)'") }
                return v
            }
            let filter = SeriesFilter(region: region, kind: kind)
            let all = try ledger.matchingSeries(filter)
            let (from, to) = (try q.time("from"), try q.time("to"))
            if let from, let to {
                guard to > from, to - from <= Self.longestRange else {
                    throw HTTPError(.badRequest, message: "from, to: expected a range of at most 366 days with to after from")
                }
            }
            let newest = try ledger.newestSeries(filter, from: from, to: to)
            if let n = newest?.series.points.count, n > Self.mostPoints {
                throw HTTPError(.badRequest, message: "the series has \(n) points, more than \(Self.mostPoints) per request: narrow it with from and to")
            }
            return JSONBody(value: CarbonJSON(series: all, shownId: newest?.stored.id, points: newest?.series.points ?? []))
        }
        api.post("schedule") { request, context in
            try self.authorize(request)
            let job: ScheduleJob
            do {
                job = try await request.decode(as: ScheduleJob.self, context: context)
            } catch {
                throw HTTPError(.badRequest, message: "expected a JSON job {region, windowMinutes, start?, end?, energyKWh?, signal?}: \(error)")
            }
            guard job.windowMinutes.isFinite, job.windowMinutes >= 1.0 / 60, job.windowMinutes <= 366 * 1440 else {
                throw HTTPError(.badRequest, message: "windowMinutes: expected 0.0167 (one second) to 527040 minutes (366 days), got \(job.windowMinutes)")
            }
            if let energy = job.energyKWh, !(energy.isFinite && energy >= 0 && energy <= 1e12) {
                throw HTTPError(.badRequest, message: "energyKWh: expected 0 to 1e12 kWh, got \(energy)")
            }
            func time(_ text: String?, _ field: String) throws -> Double? {
                guard let text else { return nil }
                guard let t = WallClock.iso8601(text) else { throw HTTPError(.badRequest, message: "\(field): expected an ISO 8601 time, got '\(text)'") }
                return t
            }
            let s = try time(job.start, "start"), e = try time(job.end, "end")
            guard let found = try ledger.planningSeries(region: job.region, signal: job.signal ?? .average) else {
                throw HTTPError(.notFound, message: "no carbon-intensity series for region \(job.region) in the ledger")
            }
            do {
                let plan = try CarbonPlanner.plan([found.series], duration: job.windowMinutes * 60, start: s, end: e)
                let r = plan.chosen
                let w = PlanWindow.init
                let emissions = job.energyKWh.map { plan.emissionsKg(energyKWh: $0) }
                return JSONBody(value: SchedulePlanJSON(
                    region: job.region, seriesId: found.stored.id, best: w(r.chosen), allBest: r.best.map(w), startingNow: w(r.startingNow),
                    savingPercent: plan.savingPercent, emissionsKg: emissions?.planned, emissionsStartingNowKg: emissions?.startingNow,
                    windowsCompared: plan.windowsCompared
                ))
            } catch let error as CarbonPlanError {
                throw HTTPError(.badRequest, message: error.description)
            }
        }
    }

    /// The most candidate runs one `GET /api/compare` reads.
    static let mostCompared = 4
    /// The widest `from`–`to` range, and the most points, one `GET /api/carbon` returns.
    static let longestRange = 366 * 86_400.0
    static let mostPoints = 100_000

    /// Maps the ledger's "not found" errors to 404, the rest to 500 with the message.
    static func lookup<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let error as LedgerError {
            switch error {
            case .unknownRun, .unknownRequest: throw HTTPError(.notFound, message: error.description)
            case .ambiguousRequest: throw HTTPError(.badRequest, message: error.description)
            default: throw HTTPError(.internalServerError, message: error.description)
            }
        }
    }
}
