import Accounting
import Serving

/// Buffers one run's records, intervals and latest checkpoint, and commits them to the ledger as
/// one audited batch when asked. Used from the thread that runs the simulation.
public final class RunRecorder {
    public let ledger: Ledger
    public let run: Int64
    public let startEpochSeconds: Double
    /// Request rows of this run committed so far (those stored before it was made included).
    public private(set) var committedRequests: Int
    public private(set) var batches = 0
    private var buffer = LedgerBatch()

    public init(ledger: Ledger, run: Int64, startEpochSeconds: Double, alreadyStored: Int = 0) {
        self.ledger = ledger
        self.run = run
        self.startEpochSeconds = startEpochSeconds
        committedRequests = alreadyStored
    }

    public func add(_ record: RequestRecord) { buffer.records.append(record) }
    public func add(_ interval: ClusterInterval) { buffer.intervals.append(interval) }
    /// The checkpoint that follows the rows added so far.
    public func set(_ checkpoint: Checkpoint) { buffer.checkpoint = checkpoint }

    /// Requests waiting to be committed.
    public var pendingRequests: Int { buffer.records.count }
    public var hasPending: Bool { !buffer.isEmpty }

    /// Commits what is buffered (nothing when empty). On failure the buffer is kept and nothing of
    /// it is stored.
    @discardableResult
    public func commit(at wallClock: Double) throws -> AuditBatch? {
        guard !buffer.isEmpty else { return nil }
        let entry = try ledger.append(buffer, run: run, startEpochSeconds: startEpochSeconds, at: wallClock)
        committedRequests += entry.requestCount
        batches += 1
        buffer.removeAll()
        return entry
    }
}
