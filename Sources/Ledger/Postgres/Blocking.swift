import Foundation

/// Runs the async calls of postgres-nio from the ledger's synchronous API (`LedgerStore`).
///
/// The work runs as a task that prefers `BlockingExecutor`'s own threads, and the caller waits on
/// a semaphore. The task never needs Swift's cooperative pool, so a caller that is itself on that
/// pool (a server handler, the daemon) cannot starve it, however many wait at once; the network
/// I/O is on SwiftNIO's event loops.
final class BlockingExecutor: TaskExecutor, @unchecked Sendable {
    static let shared = BlockingExecutor(threads: 2)

    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []

    init(threads: Int) {
        for k in 0..<threads {
            let thread = Thread { [unowned self] in self.work() }
            thread.name = "joule-postgres-\(k)"
            thread.start()
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func work() {
        let executor = asUnownedTaskExecutor()
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: executor)
        }
    }
}

/// Holds a task's result for the thread that waits on it.
private final class Outcome<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}

/// Carries a value that is not `Sendable` into the task `blocking` waits for: the caller is
/// blocked until the task ends, so the value is never used from two threads at once.
struct Handed<T>: @unchecked Sendable {
    let value: T
}

/// Runs `body` to completion and returns its result, blocking the calling thread meanwhile.
func blocking<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws -> T {
    let outcome = Outcome<T>()
    let done = DispatchSemaphore(value: 0)
    Task(executorPreference: BlockingExecutor.shared) {
        do {
            outcome.result = .success(try await body())
        } catch {
            outcome.result = .failure(error)
        }
        done.signal()
    }
    done.wait()
    return try outcome.result!.get()
}
