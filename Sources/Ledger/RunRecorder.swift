import Accounting
import Dispatch
import Serving

/// Buffers one run's records, intervals and latest checkpoint, and commits them to the ledger as
/// one audited batch when asked. Used from the thread that runs the simulation.
///
/// A commit can go to a writer thread of the recorder's own (`background: true`), so the
/// simulation goes on while SQLite writes the previous batch. At most one batch is in the writer's
/// hands: the next commit first waits for it, which bounds memory and keeps batches in order. A
/// background commit that failed is thrown by the next commit, with its rows back in the buffer
/// ahead of those added since, so nothing is lost and nothing is stored twice.
public final class RunRecorder {
    public let ledger: any LedgerWriter
    public let run: Int64
    public let startEpochSeconds: Double
    /// Request rows of this run committed so far (those stored before it was made included).
    public private(set) var committedRequests: Int
    public private(set) var batches = 0
    private var buffer = LedgerBatch()
    private var inWriter: BackgroundCommit?
    private let writer = DispatchQueue(label: "joule.run-recorder")

    /// A batch in the writer's hands, and how its commit ended.
    private final class BackgroundCommit: @unchecked Sendable {
        let batch: LedgerBatch
        /// Set by the writer before it signals `done`; read only after waiting on it.
        var result: Result<AuditBatch, Error>?
        let done = DispatchSemaphore(value: 0)
        init(_ batch: LedgerBatch) { self.batch = batch }
    }

    public init(ledger: any LedgerWriter, run: Int64, startEpochSeconds: Double, alreadyStored: Int = 0) {
        self.ledger = ledger
        self.run = run
        self.startEpochSeconds = startEpochSeconds
        committedRequests = alreadyStored
    }

    deinit {
        // A recorder dropped with a batch in the writer's hands still lets it finish.
        inWriter?.done.wait()
    }

    public func add(_ record: RequestRecord) { buffer.records.append(record) }
    public func add(_ interval: ClusterInterval) { buffer.intervals.append(interval) }
    /// The checkpoint that follows the rows added so far.
    public func set(_ checkpoint: Checkpoint) { buffer.checkpoint = checkpoint }

    /// Requests waiting to be committed (not counting a batch in the writer's hands).
    public var pendingRequests: Int { buffer.records.count }
    public var hasPending: Bool { !buffer.isEmpty || inWriter != nil }

    /// Commits what is buffered (nothing when empty), after waiting for a background commit still
    /// in the writer's hands. Returns the last batch whose commit ended in this call.
    ///
    /// - Parameter background: hand the batch to the writer thread and return at once; it is
    ///   committed by the time the next `commit` returns. Otherwise commit it here.
    /// - Throws: the ledger's error, from this batch or from the background one before it. Nothing
    ///   of a failed batch is stored, and its rows stay buffered for the next commit.
    @discardableResult
    public func commit(at wallClock: Double, background: Bool = false) throws -> AuditBatch? {
        let settled = try settle()
        guard !buffer.isEmpty else { return settled }
        if background {
            let job = BackgroundCommit(buffer)
            buffer = LedgerBatch()
            buffer.records.reserveCapacity(job.batch.records.count)
            inWriter = job
            let (ledger, run, start) = (ledger, run, startEpochSeconds)
            writer.async {
                job.result = Result { try ledger.append(job.batch, run: run, startEpochSeconds: start, at: wallClock) }
                job.done.signal()
            }
            return settled
        }
        let entry = try ledger.append(buffer, run: run, startEpochSeconds: startEpochSeconds, at: wallClock)
        count(entry)
        buffer.removeAll()
        return entry
    }

    /// Waits for the batch in the writer's hands; on failure puts its rows back ahead of the buffer.
    private func settle() throws -> AuditBatch? {
        guard let job = inWriter else { return nil }
        job.done.wait()
        inWriter = nil
        switch job.result {
        case .success(let entry)?:
            count(entry)
            return entry
        case .failure(let error)?:
            var restored = job.batch
            restored.records += buffer.records
            restored.intervals += buffer.intervals
            restored.checkpoint = buffer.checkpoint ?? job.batch.checkpoint
            buffer = restored
            throw error
        case nil:
            preconditionFailure("a background commit signalled without a result")
        }
    }

    private func count(_ entry: AuditBatch) {
        committedRequests += entry.requestCount
        batches += 1
    }
}
