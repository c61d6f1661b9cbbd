import Accounting
import Crypto
import Foundation
import GRDB

/// The secret that authenticates the audit chain: with it, every batch and entry carries an
/// HMAC-SHA256 of its hash, so a chain rewritten by someone without the key fails `audit verify`.
/// Read from `JOULE_AUDIT_KEY` (at least 16 bytes of text) by every command that opens a ledger.
public struct AuditKey: Sendable {
    let key: SymmetricKey

    public init(_ text: String) throws {
        guard text.utf8.count >= 16 else {
            throw LedgerError.badAuditKey("JOULE_AUDIT_KEY must be at least 16 bytes of text, got \(text.utf8.count)")
        }
        key = SymmetricKey(data: Data(text.utf8))
    }

    /// The key in `JOULE_AUDIT_KEY`, if set (nil when unset or empty).
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> AuditKey? {
        guard let text = environment["JOULE_AUDIT_KEY"], !text.isEmpty else { return nil }
        return try AuditKey(text)
    }

    func mac(_ hash: Data) -> Data { Data(HMAC<SHA256>.authenticationCode(for: hash, using: key)) }

    func verifies(_ mac: Data?, of hash: Data) -> Bool {
        guard let mac else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(mac, authenticating: hash, using: key)
    }
}

/// A point in the audit chains to check a ledger against later: `joule audit anchor` writes one,
/// `joule audit verify --anchor FILE` checks that the ledger still extends it. Kept outside the
/// ledger, it turns a cut tail or a wipe, which no chain can see from inside, into a finding.
public struct AuditAnchor: Codable, Sendable, Hashable {
    /// Request/interval batches, and the hash of the last.
    public var batches: Int64
    public var batchHead: String?
    /// Entries for every other table (runs, their events, series, jobs), and the hash of the last.
    public var entries: Int64
    public var entryHead: String?
    public var ledger: String
    public var takenAt: String
    /// In a ledger several writers share (PostgreSQL), each writer's chain heads: the totals
    /// above count every writer's batches and entries, and the heads are per writer.
    public var writers: [WriterAnchor]? = nil
}

/// One writer's chain heads in an anchor.
public struct WriterAnchor: Codable, Sendable, Hashable {
    public var writer: String
    public var batches: Int64
    public var batchHead: String?
    public var entries: Int64
    public var entryHead: String?
}

/// The tables the entry chain covers besides requests and intervals (which batches cover).
enum AuditSubject: String, CaseIterable {
    /// A run's row, with the seq and hash of its last batch (so a cut batch tail shows).
    case run
    /// Status changes: appended, never updated.
    case runEvent
    /// A series' row with all of its samples.
    case intensitySeries
    case scheduledJob
    /// A pruning of request rows (`Ledger.prune`).
    case requestPruning

    /// The current digest of row `id`, or nil when it is gone.
    func digest(_ id: Int64, _ db: Database) throws -> Data? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM \(rawValue) WHERE id = ?", arguments: [id]) else { return nil }
        var e = CanonicalEncoder()
        e.beginRow(table: rawValue)
        Self.encode(row, &e)
        switch self {
        case .run:
            let last = try Row.fetchOne(db, sql: "SELECT seq, hash FROM auditBatch WHERE runId = ? ORDER BY seq DESC LIMIT 1", arguments: [id])
            e.text("lastBatch")
            e.stored(last?["seq"] ?? DatabaseValue.null)
            e.stored(last?["hash"] ?? DatabaseValue.null)
        case .intensitySeries:
            let samples = try Row.fetchCursor(db, sql: "SELECT * FROM intensitySample WHERE seriesId = ? ORDER BY startEpochSeconds", arguments: [id])
            while let s = try samples.next() {
                e.text("sample")
                Self.encode(s, &e)
            }
        case .runEvent, .scheduledJob, .requestPruning: break
        }
        return Data(SHA256.hash(data: e.bytes))
    }

    /// Every column by name and value, NULLs left out: a column a later migration adds (NULL in
    /// older rows) leaves their digests as they were, and the names keep the encoding unambiguous.
    static func encode(_ row: Row, _ e: inout CanonicalEncoder) {
        for (name, value) in row where !value.isNull {
            e.text(name)
            e.stored(value)
        }
    }
}

/// One entry in the chain over runs, run events, series and jobs.
struct AuditEntry: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "auditEntry"
    var seq: Int64
    var subject: String
    var subjectId: Int64
    /// `write` (the row as it now is) or `delete`.
    var action: String
    var committedAt: Double
    var digest: Data
    var previousHash: Data
    var hash: Data
    var mac: Data?

    func computeHash() -> Data {
        var e = CanonicalEncoder()
        e.text("auditEntry")
        e.integer(seq)
        e.text(subject)
        e.integer(subjectId)
        e.text(action)
        e.real(committedAt)
        var h = SHA256()
        h.update(data: previousHash)
        h.update(data: e.bytes)
        h.update(data: digest)
        return Data(h.finalize())
    }
}

extension Ledger {
    /// Appends an entry recording row `id` of `subject` as it now stands (inside the caller's
    /// write transaction, so the row and its entry commit together).
    static func recordEntry(_ subject: AuditSubject, _ id: Int64, at wallClock: Double, key: AuditKey?, _ db: Database) throws {
        let head = try Row.fetchOne(db, sql: "SELECT seq, hash FROM auditEntry ORDER BY seq DESC LIMIT 1")
        let digest = try subject.digest(id, db)
        var entry = AuditEntry(
            seq: (head?["seq"] ?? 0) + 1, subject: subject.rawValue, subjectId: id, action: digest == nil ? "delete" : "write",
            committedAt: wallClock, digest: digest ?? Data(), previousHash: head?["hash"] ?? AuditBatch.genesis, hash: Data(), mac: nil
        )
        entry.hash = entry.computeHash()
        entry.mac = key?.mac(entry.hash)
        try entry.insert(db)
    }

    /// Appends a status event for run `id` and re-records the run (one transaction with the change).
    static func recordStatus(_ status: RunStatus, run id: Int64, message: String?, at wallClock: Double, key: AuditKey?, _ db: Database) throws {
        // A `running` event is the writer's lease: it names this process.
        let running = status == .running
        try db.execute(
            sql: "INSERT INTO runEvent (runId, at, status, message, host, pid) VALUES (?, ?, ?, ?, ?, ?)",
            arguments: [id, wallClock, status.rawValue, message, running ? WriterLease.currentHost : nil, running ? WriterLease.currentPID : nil]
        )
        try recordEntry(.runEvent, db.lastInsertedRowID, at: wallClock, key: key, db)
        try recordEntry(.run, id, at: wallClock, key: key, db)
    }

    /// The ledger's chain heads now, to keep outside it.
    public func anchor(at wallClock: Double) throws -> AuditAnchor {
        try pool.read { db in
            let batch = try Row.fetchOne(db, sql: "SELECT seq, hash FROM auditBatch ORDER BY seq DESC LIMIT 1")
            let entry = try Row.fetchOne(db, sql: "SELECT seq, hash FROM auditEntry ORDER BY seq DESC LIMIT 1")
            return AuditAnchor(
                batches: batch?["seq"] ?? 0, batchHead: (batch?["hash"] as Data?).map { hex($0) },
                entries: entry?["seq"] ?? 0, entryHead: (entry?["hash"] as Data?).map { hex($0) },
                ledger: path, takenAt: WallClock.string(wallClock)
            )
        }
    }

    /// Checks the entry chain and every covered table against it; reports through `report`.
    func verifyEntries(_ db: Database, report: (AuditProblem) -> Void) throws -> (count: Int, head: Data?) {
        var previous = AuditBatch.genesis
        var expected: Int64 = 1
        var count = 0
        var latest: [String: [Int64: AuditEntry]] = [:]
        let cursor = try AuditEntry.order(Column("seq")).fetchCursor(db)
        while let entry = try cursor.next() {
            count += 1
            if entry.seq != expected {
                report(AuditProblem(kind: .brokenChain, table: "auditEntry", rowID: entry.seq, batch: nil, detail: "entries \(expected)…\(entry.seq - 1) are missing"))
            }
            if entry.previousHash != previous {
                report(AuditProblem(kind: .brokenChain, table: "auditEntry", rowID: entry.seq, batch: nil, detail: "its previous hash does not match entry \(entry.seq - 1)"))
            }
            if entry.computeHash() != entry.hash {
                report(AuditProblem(kind: .changedBatch, table: "auditEntry", rowID: entry.seq, batch: nil, detail: "its fields or digest were changed"))
            }
            if let key = auditKey, !key.verifies(entry.mac, of: entry.hash) {
                report(AuditProblem(
                    kind: .unauthenticated, table: "auditEntry", rowID: entry.seq, batch: nil,
                    detail: entry.mac == nil ? "it carries no HMAC" : "its HMAC does not match (written without this JOULE_AUDIT_KEY)"
                ))
            }
            latest[entry.subject, default: [:]][entry.subjectId] = entry
            previous = entry.hash
            expected = entry.seq + 1
        }
        for subject in AuditSubject.allCases {
            let entries = latest[subject.rawValue] ?? [:]
            let ids = try Int64.fetchAll(db, sql: "SELECT id FROM \(subject.rawValue) ORDER BY id")
            let present = Set(ids)
            for id in ids {
                guard let entry = entries[id], entry.action == "write" else {
                    report(AuditProblem(kind: .insertedRow, table: subject.rawValue, rowID: id, batch: nil, detail: "no audit entry records this row"))
                    continue
                }
                if try subject.digest(id, db) != entry.digest {
                    let why = subject == .run ? " (its fields, or the batches it last committed)" : subject == .intensitySeries ? " (its fields or samples)" : ""
                    report(AuditProblem(kind: .changedRow, table: subject.rawValue, rowID: id, batch: nil, detail: "differs from entry \(entry.seq)\(why)"))
                }
            }
            for (id, entry) in entries.sorted(by: { $0.key < $1.key }) where entry.action == "write" && !present.contains(id) {
                report(AuditProblem(kind: .removedRow, table: subject.rawValue, rowID: id, batch: nil, detail: "recorded by entry \(entry.seq), now gone"))
            }
        }
        return (count, count > 0 ? previous : nil)
    }
}
