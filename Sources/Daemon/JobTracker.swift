import Synchronization

/// Counts the daemon's jobs still running, so that helper services end with the last of them.
public final class JobTracker: Sendable {
    private let remaining: Mutex<Int>

    public init(jobs: Int) { remaining = Mutex(jobs) }

    /// Marks one job as ended.
    public func finish() { remaining.withLock { $0 -= 1 } }

    public var allDone: Bool { remaining.withLock { $0 <= 0 } }
}

/// A flag set once, from any thread: asks a simulation thread to stop.
public final class StopSignal: Sendable {
    private let flag = Atomic<Bool>(false)

    public init() {}

    public func raise() { flag.store(true, ordering: .releasing) }

    public var isRaised: Bool { flag.load(ordering: .acquiring) }
}
