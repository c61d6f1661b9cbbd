import Accounting

/// What a run's pace hook tells the simulator before each event.
public enum PaceDecision: Sendable {
    /// Go on.
    case proceed
    /// Stop before this event; the run returns `RunOutcome.stopped`.
    case stop
    /// Go on with this carbon-intensity series from now on (a refreshed forecast, say).
    case useCarbon(CarbonSeries)
}

/// How a run ended.
public enum RunOutcome: Sendable {
    /// It reached its end and settled everything.
    case finished(RunSummary)
    /// Its pace hook stopped it at this simulated time.
    case stopped(at: Double)
}

/// Optional hooks into a run.
public struct RunHooks {
    /// Called before each event with its simulated time (pacing, stopping, carbon refresh).
    public var pace: ((Double) -> PaceDecision)?
    /// Called after every interval close and once at the end of a finished run.
    public var onCheckpoint: ((Checkpoint) -> Void)?
    /// Receives the share done (0…1) every few thousand events.
    public var progress: ((Double) -> Void)?
    /// The number of requests a trace holds, for progress when the run has no duration.
    public var expectedRequests: Int?
    /// Lets a generated workload run without a duration (until `pace` stops it).
    public var unbounded: Bool

    public init(
        pace: ((Double) -> PaceDecision)? = nil, onCheckpoint: ((Checkpoint) -> Void)? = nil,
        progress: ((Double) -> Void)? = nil, expectedRequests: Int? = nil, unbounded: Bool = false
    ) {
        self.pace = pace
        self.onCheckpoint = onCheckpoint
        self.progress = progress
        self.expectedRequests = expectedRequests
        self.unbounded = unbounded
    }
}
