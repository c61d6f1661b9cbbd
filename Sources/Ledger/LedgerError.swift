import GRDB

/// Why the ledger could not do what was asked.
public enum LedgerError: Error, CustomStringConvertible, Sendable {
    /// The database file cannot be opened or created.
    case cannotOpen(path: String, reason: String)
    /// The disk (or the configured size limit) is full: the batch in hand was rolled back.
    case full(path: String, committedBatches: Int)
    /// The database refused a write (read-only file or folder, I/O error).
    case writeFailed(path: String, reason: String)
    /// No run with this id.
    case unknownRun(Int64)
    /// No request with this id (in this run, when one was named).
    case unknownRequest(id: Int, run: Int64?)
    /// A batch holds two records of one request: nothing of it was written.
    case duplicateRequest(id: Int, run: Int64)
    /// A request id is stored in several runs and none was named.
    case ambiguousRequest(id: Int, runs: [Int64])
    /// A stored run cannot be resumed.
    case cannotResume(run: Int64, reason: String)
    /// `JOULE_AUDIT_KEY` is set but unusable.
    case badAuditKey(String)
    /// An anchor file or URL cannot be read or written.
    case anchor(String)
    /// Another live process is writing this run (a daemon job is one writer).
    case leaseHeld(WriterLease, heartbeatAgo: Double)
    /// A value outside the range every import checks: the ledger stores nothing an import would refuse.
    case outOfRange(String)
    /// A stored value that is not of its column's type: the row was edited outside Joule.
    case unreadable(table: String, row: Int64?, column: String, value: String)
    /// Another live process writes under this writer name in a shared ledger.
    case writerTaken(name: String, holder: WriterLease, heartbeatAgo: Double)
    /// `--db` or `JOULE_DB` names neither a path nor a usable postgres:// URL.
    case badLocation(text: String, reason: String)
    /// The database server could not be reached or refused the request (the batch in hand is kept
    /// by a writer that retries).
    case unavailable(location: String, reason: String)

    public var description: String {
        switch self {
        case .cannotOpen(let path, let reason):
            return "cannot open the ledger at \(path): \(reason)"
        case .full(let path, let committed):
            return "the ledger at \(path) is full (disk or size limit): the batch in hand was rolled back; the \(committed) batches committed before it are intact"
        case .writeFailed(let path, let reason):
            return "cannot write to the ledger at \(path): \(reason)"
        case .unknownRun(let id):
            return "no run \(id) in the ledger (list them with `joule runs`)"
        case .unknownRequest(let id, let run):
            return "no request \(id)" + (run.map { " in run \($0)" } ?? " in the ledger")
        case .duplicateRequest(let id, let run):
            return "request \(id) appears twice in one batch for run \(run): the batch was refused and nothing of it written"
        case .ambiguousRequest(let id, let runs):
            return "request \(id) is in runs \(runs.map(String.init).joined(separator: ", ")): name one with --run"
        case .cannotResume(let run, let reason):
            return "run \(run) cannot be resumed: \(reason)"
        case .badAuditKey(let why): return why
        case .anchor(let why), .outOfRange(let why): return why
        case .unreadable(let table, let row, let column, let value):
            return "\(table)\(row.map { " row \($0)" } ?? ""), column \(column): the stored value \(value.prefix(80)) is not of the column's type; "
                + "the ledger was edited outside Joule (`joule audit verify` shows what changed)"
        case .writerTaken(let name, let holder, let ago):
            return "the writer name \(name) is held by \(holder) (last commit \(String(format: "%.1f", ago)) s ago): stop that process first, or set another JOULE_WRITER"
        case .badLocation(let text, let reason):
            return "cannot use \(text) as a ledger: \(reason)"
        case .unavailable(let location, let reason):
            return "the ledger at \(location) is unavailable: \(reason)"
        case .leaseHeld(let lease, let ago):
            return "run \(lease.run) is being written by \(lease) (last commit \(String(format: "%.1f", ago)) s ago): stop that writer first, or give this job another name"
        }
    }

    /// Whether retrying can cure it: the database server is away for now.
    public var isTransient: Bool {
        if case .unavailable = self { return true }
        return false
    }

    /// Translates a GRDB error met while writing to `path`.
    static func writing(_ error: Error, path: String, committedBatches: @autoclosure () -> Int) -> Error {
        guard let db = error as? DatabaseError else { return error }
        switch db.resultCode {
        case .SQLITE_FULL: return LedgerError.full(path: path, committedBatches: committedBatches())
        case .SQLITE_READONLY, .SQLITE_IOERR, .SQLITE_CANTOPEN, .SQLITE_PERM:
            return LedgerError.writeFailed(path: path, reason: db.message ?? "\(db.resultCode)")
        default: return error
        }
    }
}

extension Row {
    /// The value of `column` as `T`, or `LedgerError.unreadable` naming the table, row and column
    /// when the stored value is not of that type (a row edited outside Joule): never a trap.
    func value<T: DatabaseValueConvertible>(_ column: String, in table: String) throws -> T {
        do {
            return try decode(T.self, forColumn: column)
        } catch {
            throw LedgerError.unreadable(table: table, row: try? decode(Int64?.self, forColumn: "id"), column: column, value: "\(self[column] as DatabaseValue? ?? .null)")
        }
    }
}
