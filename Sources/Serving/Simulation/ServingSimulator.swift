import Accounting
import Hardware
import MoE

/// Why a simulation cannot run.
public enum SimulationError: Error, Hashable, CustomStringConvertible {
    /// The scenario is inconsistent; every problem is listed by field.
    case invalidScenario([String])
    /// A request needs more KV cache than one decode rank holds.
    case requestTooLarge(id: Int, kvTokens: Int, rankCapacity: Int)
    /// A generated workload never ends by itself, so the run needs a duration.
    case durationRequired

    public var description: String {
        switch self {
        case .invalidScenario(let problems): return problems.joined(separator: "\n")
        case .requestTooLarge(let id, let need, let capacity):
            return "request \(id) needs \(need) tokens of KV cache, but one decode rank holds \(capacity); give decode more GPUs or cap the lengths"
        case .durationRequired:
            return "a generated workload runs until stopped: give the scenario a duration (or pass --duration SECONDS)"
        }
    }
}

/// A discrete-event simulation of serving an MoE model on a cluster, with exact per-request energy
/// and carbon accounting.
///
/// It advances by batch steps, never by single tokens. Events are ordered by (time, kind, sequence):
/// interval closes, then node-schedule changes, then step ends, KV arrivals, and arrivals. A decode
/// step's cost is shared by its batch through per-unit running totals (O(1) per step and per
/// request); prefill steps split by tokens computed. Idle and host energy are attributed by the
/// scenario's `AttributionPolicy` at each interval close, so that the records of a run add up to
/// what the cluster drew. Pure and deterministic: the same scenario, workload and seed give the same
/// records in the same order.
public struct ServingSimulator {
    let scenario: ServingScenario
    var models: [UnitModel]
    var units: [UnitState] = []
    /// Global unit indices of each pool.
    var poolUnits: [[Int]] = []
    var routing: any RoutingPolicy
    var flights: [Flight] = []
    var freeSlots: [Int32] = []
    var heap = MinHeap<ScheduledEvent>()
    var sequence = 0
    var awaiting: [Int32] = []
    var carry = Draw()
    var stats = RunStatistics()
    var now = 0.0
    var intervalStart = 0.0
    let pue: Double
    /// How idle energy is shared over requests: the scenario's policy, as its linear weight.
    let weigh: LinearWeight
    /// The grid intensity in use: the scenario's, until a run's `pace` hook supplies a newer series.
    var carbon: CarbonSeries
    /// Records and intervals emitted so far, for checkpoints.
    var recordsEmitted = 0
    var intervalsEmitted = 0

    /// Prepares a simulation of `scenario`, validating it whole.
    public init(scenario: ServingScenario) throws {
        let problems = scenario.validate()
        guard problems.isEmpty else { throw SimulationError.invalidScenario(problems.map { "\($0.field): \($0.message)" }) }
        self.scenario = scenario
        self.pue = scenario.site.pue
        self.weigh = LinearWeight(scenario.attribution)
        self.carbon = scenario.carbon
        models = scenario.topology.pools.map { UnitModel(pool: $0, model: scenario.model, node: scenario.node, site: scenario.site) }
        if let shared = scenario.stepCosts {
            for i in models.indices { models[i].adopt(shared) }
        }
        routing = scenario.routing.make()
        for (p, pool) in scenario.topology.pools.enumerated() {
            var indices: [Int] = []
            for _ in 0..<pool.units {
                indices.append(units.count)
                units.append(UnitState(pool: p, role: pool.role))
            }
            poolUnits.append(indices)
        }
    }

    /// The pool requests arrive at (prefill or colocated) and the pool that decodes.
    var entryPool: Int { 0 }
    var decodePool: Int { models.count - 1 }

    /// The largest request (prompt + output tokens) one decode rank can hold.
    public var decodeRankCapacity: Int { models[decodePool].kvTokensPerRank }

    /// Runs `stream` to the end (a trace) or to the scenario's duration, handing each finished
    /// request's record to `onRecord` as soon as its last accounting interval closes, each unit's
    /// energy per interval to `onInterval`, and then the requests still in flight (flagged) to
    /// `onRecord`. `progress` receives the share done (0…1) every few thousand events.
    public mutating func run<S: RequestStream>(
        _ stream: inout S,
        onRecord: (RequestRecord) -> Void,
        onInterval: (ClusterInterval) -> Void = { _ in },
        progress: ((Double) -> Void)? = nil,
        expectedRequests: Int? = nil
    ) throws -> RunSummary {
        let hooks = RunHooks(progress: progress, expectedRequests: expectedRequests)
        guard case .finished(let summary) = try run(&stream, onRecord: onRecord, onInterval: onInterval, hooks: hooks) else {
            preconditionFailure("a run without a pace hook cannot stop early")
        }
        return summary
    }

    /// Runs `stream` as `run(_:onRecord:onInterval:progress:expectedRequests:)` does, with `hooks`
    /// to pace it, stop it, swap its carbon-intensity series and receive a checkpoint after every
    /// interval close. A stopped run neither closes its open interval nor settles the requests in
    /// flight: its last checkpoint says what they hold, and a deterministic re-run resumes it.
    public mutating func run<S: RequestStream>(
        _ stream: inout S,
        onRecord: (RequestRecord) -> Void,
        onInterval: (ClusterInterval) -> Void,
        hooks: RunHooks
    ) throws -> RunOutcome {
        let end = scenario.duration ?? .infinity
        if !stream.isFinite && scenario.duration == nil && !hooks.unbounded { throw SimulationError.durationRequired }
        applySchedule(at: 0)
        var nextArrival = stream.next()
        var boundary = scenario.intervalSeconds
        var scheduleChange = nextScheduleChange(after: 0)
        var events = 0
        var live = 0
        while true {
            if nextArrival == nil && live == 0 && heap.isEmpty && scenario.duration == nil { break }
            let tHeap = heap.top?.time ?? .infinity
            let tArrival = nextArrival?.arrival ?? .infinity
            let t = min(tHeap, tArrival, boundary, scheduleChange)
            if t >= end {
                now = end
                break
            }
            precondition(t.isFinite, "the simulation has nothing left to do but has not ended (live requests: \(live))")
            if let pace = hooks.pace {
                switch pace(t) {
                case .proceed: break
                case .stop: return .stopped(at: now)
                case .useCarbon(let series): carbon = series
                }
            }
            now = t
            events += 1
            if let progress = hooks.progress, events & 0x3FFF == 0 {
                if end.isFinite {
                    progress(now / end)
                } else if let n = hooks.expectedRequests, n > 0 {
                    progress(Double(stats.finished) / Double(n))
                }
            }
            if boundary <= t {
                closeInterval(at: boundary, onRecord: onRecord, onInterval: onInterval)
                boundary += scenario.intervalSeconds
                hooks.onCheckpoint?(checkpoint())
            } else if scheduleChange <= t {
                applySchedule(at: t)
                scheduleChange = nextScheduleChange(after: t)
            } else if tHeap <= tArrival, let event = heap.pop() {
                switch event.kind {
                case .stepEnd: live -= endStep(unit: Int(event.subject))
                case .kvArrived: kvArrived(slot: event.subject, unit: Int(event.target))
                }
            } else if let request = nextArrival {
                try arrive(request)
                live += 1
                nextArrival = stream.next()
            }
        }
        for u in units.indices where units[u].inService { accrue(u, to: now) }
        closeInterval(at: now, onRecord: onRecord, onInterval: onInterval)
        let inFlight = drainInFlight(onRecord: onRecord)
        hooks.onCheckpoint?(checkpoint())
        hooks.progress?(1)
        if let shared = scenario.stepCosts {
            for m in models { m.publish(to: shared) }
        }
        return .finished(summary(inFlight: inFlight))
    }

    // MARK: - Arrivals and routing

    mutating func allocate(_ flight: Flight) -> Int32 {
        if let slot = freeSlots.popLast() {
            flights[Int(slot)] = flight
            return slot
        }
        flights.append(flight)
        return Int32(flights.count - 1)
    }

    mutating func arrive(_ request: ServingRequest) throws {
        let need = request.promptTokens + request.outputTokens
        if request.outputTokens > 1 || models[decodePool].pool.role == .colocated, need > models[decodePool].kvTokensPerRank {
            throw SimulationError.requestTooLarge(id: request.id, kvTokens: need, rankCapacity: models[decodePool].kvTokensPerRank)
        }
        stats.arrived += 1
        let slot = allocate(Flight(request: request))
        let candidates = poolUnits[entryPool].filter { units[$0].inService && !units[$0].draining }
        let colocated = models[entryPool].pool.role == .colocated
        let loads = candidates.map { u -> Double in
            colocated
                ? Double(units[u].reserved + units[u].queuedNeed) / Double(max(models[entryPool].kvTokens, 1))
                : Double(units[u].queuedTokens)
        }
        let u = candidates[routing.choose(loads: loads)]
        flights[Int(slot)].prefillUnit = Int32(u)
        units[u].prefillQueue.append(slot)
        units[u].queuedTokens += request.computedTokens
        units[u].queuedNeed += need
        startStepIfIdle(u)
    }

    mutating func routeToDecode(_ slot: Int32) -> Int {
        let candidates = poolUnits[decodePool].filter { units[$0].inService && !units[$0].draining }
        let capacity = Double(max(models[decodePool].kvTokens, 1))
        let loads = candidates.map { Double(units[$0].reserved + units[$0].pendingReserved) / capacity }
        return candidates[routing.choose(loads: loads)]
    }

    mutating func schedule(_ kind: ScheduledEvent.Kind, at time: Double, subject: Int32, target: Int32 = -1) {
        sequence += 1
        heap.push(ScheduledEvent(time: time, kind: kind, sequence: sequence, subject: subject, target: target))
    }

    // MARK: - Node schedule

    func nextScheduleChange(after t: Double) -> Double {
        guard let s = scenario.schedule else { return .infinity }
        return s.nodes(atEpochSeconds: scenario.startEpochSeconds + t).until - scenario.startEpochSeconds
    }

    /// Puts units in or out of service to follow the schedule at `t`. Units leaving drain first.
    mutating func applySchedule(at t: Double) {
        let nodes = scenario.schedule?.nodes(atEpochSeconds: scenario.startEpochSeconds + t).nodes
        for indices in poolUnits {
            let target = nodes.map { scenario.schedule!.units(peakUnits: indices.count, nodes: $0) } ?? indices.count
            for (rank, u) in indices.enumerated() {
                if rank < target {
                    if !units[u].inService {
                        units[u].inService = true
                        units[u].accruedUntil = t
                    }
                    units[u].draining = false
                } else if units[u].inService && !units[u].draining {
                    units[u].draining = true
                    retireIfDrained(u)
                }
            }
        }
    }

    mutating func retireIfDrained(_ u: Int) {
        guard units[u].draining, units[u].isEmpty else { return }
        accrue(u, to: now)
        units[u].inService = false
        units[u].draining = false
    }
}
