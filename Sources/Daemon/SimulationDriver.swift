import Accounting
import Catalog
import Foundation
import Ledger
import Logging
import MoE
import Serving
import ServiceLifecycle

/// One daemon job, ready to run: its scenario read and prepared, and its identity in the ledger.
public struct JobPlan: Sendable {
    public var job: DaemonJob
    /// The run's name in the ledger.
    public var name: String
    public var loaded: LoadedScenario
    public var prepared: PreparedRun
    /// The settings that change what is simulated, as canonical JSON (stored with the run and hashed).
    public var overrides: String
    /// Whether the run has no end of its own (a generated workload without a duration).
    public var unbounded: Bool

    /// Reads and prepares `job`'s scenario.
    public static func make(_ job: DaemonJob, library: SpecLibrary, dataDirectory: String) throws -> JobPlan {
        let path = try Catalog.scenarioPath(job.scenario, dataDirectory: dataDirectory)
        let loaded = try Catalog.loadScenario(at: path, library: library, dataDirectory: dataDirectory)
        var prepared = try Catalog.prepare(loaded, overrides: RunOverrides(duration: job.duration, seed: job.seed))
        if let interval = job.intervalSeconds ?? (job.pacing == .realtime ? 1 : nil) {
            prepared.scenario.intervalSeconds = interval
        }
        let start: String
        switch job.effectiveStart {
        case .now: start = "now"
        case .scenario: start = "scenario"
        case .at(let epoch):
            start = String(epoch)
            prepared.scenario.startEpochSeconds = epoch
        }
        let overrides = RunSpec.canonicalOverrides([
            "duration": prepared.scenario.duration.map { String($0) } ?? "none",
            "intervalSeconds": String(prepared.scenario.intervalSeconds),
            "seed": String(prepared.scenario.seed),
            "start": start,
        ])
        return JobPlan(
            job: job, name: job.name ?? loaded.scenario.name, loaded: loaded, prepared: prepared, overrides: overrides,
            unbounded: prepared.generator != nil && prepared.scenario.duration == nil
        )
    }
}

/// Reads the wall clock and sleeps; injected so that tests can drive time.
public struct DaemonClock: Sendable {
    public var now: @Sendable () -> Double
    public var sleep: @Sendable (Double) -> Void

    public static let system = DaemonClock(
        now: {
            var ts = timespec()
            clock_gettime(CLOCK_REALTIME, &ts)
            return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
        },
        sleep: { seconds in
            guard seconds > 0 else { return }
            usleep(UInt32(min(seconds, 1) * 1e6))
        }
    )
}

/// Runs one job into the ledger on a thread of its own: paced, committing at least every
/// `commitSeconds` of wall time, resuming the newest interrupted or stopped run of the same job,
/// and on graceful shutdown committing the batch in hand and marking the run stopped.
public final class SimulationDriver: Service, Sendable {
    let plan: JobPlan
    let ledger: any LedgerStore
    let feed: CarbonFeed
    let jobs: JobTracker
    let commitSeconds: Double
    let progressSeconds: Double
    /// Prune request rows older than this many days (back from the newest batch's end); nil keeps them.
    let retainRequestDays: Double?
    let clock: DaemonClock
    let logger: Logger
    let stop = StopSignal()

    public init(
        plan: JobPlan, ledger: any LedgerStore, feed: CarbonFeed, jobs: JobTracker, commitSeconds: Double, progressSeconds: Double,
        retainRequestDays: Double? = nil, clock: DaemonClock = .system, logger: Logger
    ) {
        self.retainRequestDays = retainRequestDays
        self.plan = plan
        self.ledger = ledger
        self.feed = feed
        self.jobs = jobs
        self.commitSeconds = commitSeconds
        self.progressSeconds = progressSeconds
        self.clock = clock
        var logger = logger
        logger[metadataKey: "job"] = "\(plan.name)"
        self.logger = logger
    }

    public func run() async throws {
        defer { jobs.finish() }
        try await withGracefulShutdownHandler {
            try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
                    let thread = Thread { [self] in
                        do {
                            try drive()
                            continuation.resume()
                        } catch {
                            continuation.resume(throwing: error)
                        }
                    }
                    thread.name = "joule-sim-\(plan.name)"
                    thread.stackSize = 16 << 20
                    thread.start()
                }
            } onCancel: {
                stop.raise()
            }
        } onGracefulShutdown: {
            self.stop.raise()
        }
    }

    /// Asks the job to stop (as a signal does).
    public func requestStop() { stop.raise() }

    /// Wall seconds between the retention's prunes (and one at the first commit).
    static let pruneEverySeconds = 600.0

    /// Prunes request rows of batches that ended more than `days` before the newest batch's end.
    /// A failure is logged and the run goes on: retention never costs data recorded.
    func retain(days: Double, now: Double) {
        do {
            guard let newest = try ledger.newestBatchEnd() else { return }
            let result = try ledger.prune(before: newest - days * 86_400, at: now)
            if result.batches > 0 {
                logger.info("pruned request rows past the retention", metadata: [
                    "retainRequestDays": "\(days)", "before": "\(isoTime(result.beforeEpochSeconds))", "requestRows": "\(result.requestRows)",
                    "batches": "\(result.batches)", "pruning": "\(result.pruning ?? 0)",
                ])
            }
        } catch {
            logger.warning("retention could not prune; keeping the rows", metadata: ["error": "\(error)"])
        }
    }

    /// The run this job writes into, and what of it is already stored.
    struct Attempt {
        var run: Int64
        var startEpochSeconds: Double
        var stored: Ledger.RunProgress
    }

    /// Runs the job to its end or until stopped. Synchronous: it owns its thread.
    func drive() throws {
        guard var attempt = try openRun(resumedFrom: nil) else { return }
        while true {
            switch try simulate(attempt) {
            case .done:
                return
            case .diverged(let atRecord):
                let message = "replay diverged from the stored records at record \(atRecord) (the code or data changed): continued as a new run"
                logger.warning("cannot resume run", metadata: ["run": "\(attempt.run)", "reason": "\(message)"])
                try ledger.setStatus(.failed, run: attempt.run, at: clock.now(), message: message)
                guard let next = try openRun(resumedFrom: attempt.run, forceNew: true) else { return }
                attempt = next
            }
        }
    }

    private func spec(start: Double, resumedFrom: Int64?) -> RunSpec {
        RunSpec(
            name: plan.name, source: "daemon", scenarioFile: plan.loaded.file, scenarioText: plan.loaded.text, overrides: plan.overrides,
            seed: plan.prepared.scenario.seed, startEpochSeconds: start, intervalSeconds: plan.prepared.scenario.intervalSeconds,
            pacing: plan.job.pacing.description, resumedFrom: resumedFrom
        )
    }

    /// The run to write into: the newest stopped or interrupted run of this job, or a new one; nil
    /// when the job's newest run has already finished (a finished job is not run again unless its
    /// settings change or `resume` is off).
    func openRun(resumedFrom: Int64?, forceNew: Bool = false) throws -> Attempt? {
        let probe = spec(start: 0, resumedFrom: nil)
        if plan.job.resume && !forceNew, let old = try ledger.newestRun(scenarioHash: probe.scenarioHash, name: plan.name),
           old.status != .failed {
            if old.status == .finished {
                logger.info("job already finished; nothing to do (set resume: false to run it again)", metadata: ["run": "\(old.id!)"])
                return nil
            }
            let stored = try ledger.progress(run: old.id!)
            let consistent = stored.checkpoint.map { $0.records == stored.storedRequests && $0.intervals == stored.storedIntervals } ?? (stored.storedRequests == 0)
            if consistent {
                try ledger.setStatus(.running, run: old.id!, at: clock.now(), message: "resumed")
                logger.info("resuming run", metadata: [
                    "run": "\(old.id!)", "storedRequests": "\(stored.storedRequests)",
                    "simulatedSeconds": "\(stored.checkpoint?.time ?? 0)", "status": "\(old.status.rawValue)",
                ])
                return Attempt(run: old.id!, startEpochSeconds: old.startEpochSeconds, stored: stored)
            }
            try ledger.setStatus(.failed, run: old.id!, at: clock.now(), message: "its rows do not match its last checkpoint: not resumable")
            return try openRun(resumedFrom: old.id!, forceNew: true)
        }
        let start: Double
        switch plan.job.effectiveStart {
        case .now: start = clock.now().rounded(.down)
        case .scenario, .at: start = plan.prepared.scenario.startEpochSeconds
        }
        let id = try ledger.beginRun(spec(start: start, resumedFrom: resumedFrom), at: clock.now())
        try ledger.store(plan.prepared.scenario.carbon, at: clock.now())
        logger.info("started run", metadata: [
            "run": "\(id)", "scenario": "\(plan.loaded.scenario.name)", "pacing": "\(plan.job.pacing)",
            "start": "\(isoTime(start))", "db": "\(ledger.location)",
        ])
        return Attempt(run: id, startEpochSeconds: start, stored: .empty)
    }

    enum Ending {
        case done
        case diverged(atRecord: Int)
    }

    /// One pass of the simulation: replays what is stored (without writing it), then runs on.
    private func simulate(_ attempt: Attempt) throws -> Ending {
        var prepared = plan.prepared
        prepared.scenario.startEpochSeconds = attempt.startEpochSeconds
        let run = attempt.run
        let skipRecords = attempt.stored.storedRequests
        let skipIntervals = attempt.stored.storedIntervals
        let resumeTime = attempt.stored.checkpoint?.time ?? 0
        let speed = plan.job.pacing.speed

        let recorder = RunRecorder(ledger: ledger, run: run, startEpochSeconds: attempt.startEpochSeconds, alreadyStored: skipRecords)
        var emittedRecords = 0
        var emittedIntervals = 0
        var diverged: Int?
        var writeError: Error?
        var lastCommit = clock.now()
        var lastProgress = lastCommit
        var progressRecords = skipRecords
        var anchor: (wall: Double, sim: Double)?
        var carbonVersion = 0
        var simTime = resumeTime

        // While the run goes on, batches are committed on the recorder's writer thread; the last
        // commit (at the end, or on the way out) waits for it.
        var lastPrune = -Double.infinity
        // While the database is away (a PostgreSQL ledger restarting, the network down) the batch
        // stays in hand, the run goes on, and commits are retried with backoff (1 s doubling to 30 s).
        var retryAt = -Double.infinity
        var backoff = 1.0
        var outage: (since: Double, error: LedgerError)?
        func commit(_ now: Double, background: Bool = false) {
            guard writeError == nil, now >= retryAt else { return }
            do {
                if let entry = try recorder.commit(at: now, background: background) {
                    logger.trace("committed", metadata: ["batch": "\(entry.seq)", "requests": "\(entry.requestCount)", "intervals": "\(entry.intervalCount)"])
                }
                lastCommit = now
                if let o = outage {
                    logger.notice("ledger reachable again; the batches kept in hand are being committed", metadata: [
                        "run": "\(run)", "outageSeconds": "\(Int(now - o.since))", "storedRequests": "\(recorder.committedRequests)",
                    ])
                    outage = nil
                    backoff = 1
                    retryAt = -Double.infinity
                }
            } catch let error as LedgerError where error.isTransient {
                if outage == nil { outage = (now, error) } else { outage?.error = error }
                logger.warning("ledger unavailable; keeping the batch in hand and retrying", metadata: [
                    "run": "\(run)", "error": "\(error)", "retryInSeconds": "\(backoff)", "pendingRequests": "\(recorder.pendingRequests)",
                ])
                retryAt = now + backoff
                backoff = min(backoff * 2, 30)
                lastCommit = now
            } catch {
                writeError = error
            }
            if outage == nil, let days = retainRequestDays, now - lastPrune >= Self.pruneEverySeconds {
                lastPrune = now
                retain(days: days, now: now)
            }
        }
        /// The last commit: retried while the database is away, until it returns or the daemon is
        /// asked to stop (the run then resumes from its last committed batch on the next start).
        func finalCommit() {
            retryAt = -Double.infinity
            commit(clock.now())
            while outage != nil && writeError == nil && !stop.isRaised {
                clock.sleep(max(0.05, min(retryAt - clock.now(), 1)))
                commit(clock.now())
            }
            if let o = outage, writeError == nil { writeError = o.error }
        }

        let hooks = RunHooks(
            pace: { [self] t in
                simTime = t
                if diverged != nil || writeError != nil || stop.isRaised { return .stop }
                var decision = PaceDecision.proceed
                if let newer = feed.newer(than: carbonVersion) {
                    carbonVersion = newer.version
                    decision = .useCarbon(newer.series)
                }
                if t <= resumeTime && skipRecords > 0 { return decision }
                var now = clock.now()
                if anchor == nil {
                    anchor = (now, resumeTime)
                    if skipRecords > 0 { logger.info("caught up with the stored run; continuing", metadata: ["run": "\(run)", "simulatedSeconds": "\(resumeTime)"]) }
                }
                if speed.isFinite, let a = anchor {
                    let target = a.wall + (t - a.sim) / speed
                    while now < target {
                        if stop.isRaised { return .stop }
                        if now - lastCommit >= commitSeconds { commit(now, background: true) }
                        clock.sleep(min(target - now, 0.05, max(lastCommit + commitSeconds - now, 0.001)))
                        now = clock.now()
                    }
                }
                if now - lastCommit >= commitSeconds || recorder.pendingRequests >= 50_000 { commit(now, background: true) }
                if now - lastProgress >= progressSeconds {
                    logger.info("progress", metadata: [
                        "run": "\(run)", "simulatedSeconds": "\(Int(t))", "at": "\(isoTime(attempt.startEpochSeconds + t))",
                        "storedRequests": "\(recorder.committedRequests)",
                        "requestsPerSecond": "\(Int(Double(recorder.committedRequests - progressRecords) / (now - lastProgress)))",
                    ])
                    lastProgress = now
                    progressRecords = recorder.committedRequests
                }
                return writeError == nil ? decision : .stop
            },
            onCheckpoint: { cp in
                if cp.time > resumeTime || skipRecords == 0 { recorder.set(cp) }
            },
            unbounded: plan.unbounded
        )
        let outcome: RunOutcome
        do {
            outcome = try prepared.run(
                onRecord: { r in
                    emittedRecords += 1
                    if emittedRecords <= skipRecords {
                        if emittedRecords == skipRecords && r.id != attempt.stored.lastRequestID { diverged = emittedRecords }
                        return
                    }
                    recorder.add(r)
                },
                onInterval: { i in
                    emittedIntervals += 1
                    if emittedIntervals > skipIntervals { recorder.add(i) }
                },
                hooks: hooks
            )
        } catch {
            finalCommit()
            try? ledger.setStatus(.failed, run: run, at: clock.now(), message: "\(error)")
            throw error
        }
        if let at = diverged { return .diverged(atRecord: at) }
        finalCommit()
        if let writeError {
            logger.error("ledger write failed; stopping (the run resumes once the ledger can be written again)", metadata: [
                "run": "\(run)", "error": "\(writeError)",
            ])
            try? ledger.setStatus(.stopped, run: run, at: clock.now(), message: "\(writeError)")
            throw writeError
        }
        switch outcome {
        case .finished(let summary):
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            let json = (try? encoder.encode(summary)).flatMap { String(data: $0, encoding: .utf8) }
            try ledger.setStatus(.finished, run: run, at: clock.now(), message: nil, summary: json)
            logger.info("run finished", metadata: ["run": "\(run)", "storedRequests": "\(recorder.committedRequests)", "simulatedSeconds": "\(summary.simulatedSeconds)"])
        case .stopped:
            try ledger.setStatus(.stopped, run: run, at: clock.now(), message: "stopped at simulated second \(simTime)")
            logger.info("run stopped; resume it by starting the daemon again", metadata: [
                "run": "\(run)", "storedRequests": "\(recorder.committedRequests)", "simulatedSeconds": "\(Int(simTime))",
            ])
        }
        return .done
    }
}

/// `epochSeconds` as ISO 8601 in UTC, to the second.
func isoTime(_ epochSeconds: Double) -> String {
    WallClock.string(epochSeconds.rounded(.down))
}
