import Accounting
import Foundation
import GRDB

/// Who is writing a `running` run: the process that last set it running (recorded in that
/// `runEvent`), and its heartbeat, the run's `updatedAt` (every commit moves it).
public struct WriterLease: Sendable, Hashable, Codable, CustomStringConvertible {
    public var run: Int64
    public var host: String?
    public var pid: Int?
    public var heartbeatAt: Double

    /// A writer on another host is presumed gone once its heartbeat is this old.
    public static let foreignTimeoutSeconds = 120.0

    /// This process, as a lease names it.
    static var currentHost: String { ProcessInfo.processInfo.hostName }
    static var currentPID: Int { Int(getpid()) }

    /// Whether the holder is still there: on this host, its process exists; elsewhere, its
    /// heartbeat is recent. (A pid reused by another process on this host reads as alive.)
    public func isAlive(now: Double) -> Bool {
        guard let host, let pid else { return now - heartbeatAt < Self.foreignTimeoutSeconds }
        if host == Self.currentHost {
            if pid == Self.currentPID { return true }
            return kill(pid_t(pid), 0) == 0 || errno == EPERM
        }
        return now - heartbeatAt < Self.foreignTimeoutSeconds
    }

    public var description: String {
        "pid \(pid.map(String.init) ?? "?") on \(host ?? "an unknown host")"
    }
}

extension Ledger {
    /// The lease of run `id` if it is `running`.
    static func lease(run id: Int64, _ db: Database) throws -> WriterLease? {
        guard let row = try Row.fetchOne(db, sql: """
            SELECT r.updatedAt, e.host, e.pid FROM run r
            LEFT JOIN runEvent e ON e.id = (SELECT max(id) FROM runEvent WHERE runId = r.id AND status = 'running')
            WHERE r.id = ? AND r.status = 'running'
            """, arguments: [id]) else { return nil }
        return WriterLease(run: id, host: try row.value("host", in: "runEvent"), pid: try row.value("pid", in: "runEvent"), heartbeatAt: try row.value("updatedAt", in: "run"))
    }

    public func lease(run id: Int64) throws -> WriterLease? {
        try pool.read { db in try Ledger.lease(run: id, db) }
    }

    /// Marks `failed` every run left `running` by a writer that is gone (a killed `simulate --db`),
    /// with a message naming it, and a `failed` event. Daemon runs are left: the daemon resumes
    /// them when it starts again. Returns the leases it ended.
    @discardableResult
    public func failAbandonedRuns(at wallClock: Double) throws -> [WriterLease] {
        try write { db in
            var marked: [WriterLease] = []
            for id in try Int64.fetchAll(db, sql: "SELECT id FROM run WHERE status = 'running' AND source != 'daemon' ORDER BY id") {
                guard let lease = try Ledger.lease(run: id, db), !lease.isAlive(now: wallClock) else { continue }
                let last = WallClock.string(lease.heartbeatAt)
                try db.execute(sql: "UPDATE run SET status = 'failed', updatedAt = ?, endedAt = ?, message = ? WHERE id = ?", arguments: [
                    wallClock, wallClock, "abandoned: its writer (\(lease)) stopped without closing it; last commit \(last)", id,
                ])
                try Ledger.recordStatus(.failed, run: id, message: "abandoned by \(lease)", at: wallClock, key: auditKey, db)
                marked.append(lease)
            }
            return marked
        }
    }

    /// Refuses to take over `run` while another live writer holds it.
    static func claim(run id: Int64, at wallClock: Double, _ db: Database) throws {
        if let lease = try lease(run: id, db), lease.isAlive(now: wallClock),
           !(lease.host == WriterLease.currentHost && lease.pid == WriterLease.currentPID) {
            throw LedgerError.leaseHeld(lease, heartbeatAgo: wallClock - lease.heartbeatAt)
        }
    }
}
