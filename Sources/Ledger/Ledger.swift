import Foundation
import GRDB
import Accounting
import Serving

/// Joule's ledger: runs, their request records and cluster intervals, carbon-intensity points,
/// and the audit chain, in one SQLite file (WAL mode) through GRDB.
///
/// Writes go through `append(_:run:)`: one transaction per batch, with prepared statements, and an
/// audit-chain entry hashing the batch's rows with the previous entry. What `append` returned
/// from has been committed with `synchronous = FULL`: it survives a crash of the process or of
/// the machine. Thread-safe: writes are serialised by SQLite, reads run concurrently.
public final class Ledger: Sendable {
    /// The database file.
    public let path: String
    let pool: DatabasePool
    /// Authenticates the audit chain (batches and entries carry an HMAC) when set.
    let auditKey: AuditKey?

    /// The version of Joule that writes runs, stored with each run.
    public static let codeVersion = "joule 0.5.0"

    /// Opens the ledger at `path`, creating it (and migrating its schema) unless `mustExist`.
    ///
    /// - Parameter maximumBytes: a size limit; a write that would pass it fails as a full disk does.
    /// - Throws: `LedgerError.cannotOpen` naming the path and the reason.
    /// - Parameter auditKey: the chain's HMAC key; by default `JOULE_AUDIT_KEY`'s, if set.
    public init(path: String, mustExist: Bool = false, maximumBytes: Int? = nil, auditKey: AuditKey?? = nil) throws {
        self.path = path
        self.auditKey = try auditKey ?? AuditKey.fromEnvironment()
        let fm = FileManager.default
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        if mustExist && !fm.fileExists(atPath: path) {
            throw LedgerError.cannotOpen(path: path, reason: "no such file (record a run first: `joule simulate --db \(path)` or `joule daemon`)")
        }
        guard fm.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw LedgerError.cannotOpen(path: path, reason: "the folder \(folder) does not exist")
        }
        if !fm.fileExists(atPath: path) && !fm.isWritableFile(atPath: folder) {
            throw LedgerError.cannotOpen(path: path, reason: "the folder \(folder) is not writable")
        }
        var configuration = Configuration()
        configuration.busyMode = .timeout(30)
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
            if !db.configuration.readonly {
                // The writer's page cache holds a whole batch and the right edges of its B-trees:
                // with SQLite's default 2 MB, a large batch spills and re-reads its own pages.
                // 64 MB (SQLite's unit here is KiB when negative); readers keep the default.
                try db.execute(sql: "PRAGMA cache_size = -65536")
            }
            if let maximumBytes {
                let pageSize = try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
                try db.execute(sql: "PRAGMA max_page_count = \(max(maximumBytes / pageSize, 1))")
            }
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try LedgerSchema.migrator(key: self.auditKey).migrate(pool)
        } catch let error as DatabaseError {
            throw LedgerError.cannotOpen(path: path, reason: error.message ?? "\(error.resultCode)")
        }
    }

    /// Runs `body` in a write transaction, translating a full disk or a refused write.
    func write<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try pool.write(body)
        } catch {
            throw LedgerError.writing(error, path: path, committedBatches: (try? self.batchCount()) ?? 0)
        }
    }

    /// Audit batches committed so far.
    public func batchCount() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM auditBatch") ?? 0 }
    }

    /// Runs `body` with a read-only view of the database: inside the Ledger module only (every
    /// query others need is a named method of `LedgerStore`).
    func read<T>(_ body: (Database) throws -> T) throws -> T {
        try pool.read(body)
    }
}
