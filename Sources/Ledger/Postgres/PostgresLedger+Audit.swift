import Accounting
import Crypto
import Foundation
import Logging
import PostgresNIO

extension PostgresLedger: LedgerAudit {
    /// A batch as `verify` walks it: its writer, its global id (commit order), its own fields.
    private struct Stored {
        var id: Int64
        var writer: Int64
        var batch: AuditBatch
    }

    /// One table's rows in id order, streamed from the server, against the batches that name them.
    private struct Walk {
        let table: String
        let label: (PGRow) -> String
        var rows: PostgresRowSequence.AsyncIterator
        var current: PGRow?
        var count = 0
        /// Column name (lower case) → index in a row's values.
        var columns: [String: Int] = [:]
        var currentID: Int64? { current?[0].int64 }

        init(table: String, label: @escaping (PGRow) -> String, rows: PostgresRowSequence) async throws {
            self.table = table
            self.label = label
            self.rows = rows.makeAsyncIterator()
            try await advance()
            count = current == nil ? 0 : 1
            if let first = current {
                columns = Dictionary(uniqueKeysWithValues: first.names.enumerated().map { ($1, $0) })
            }
        }

        mutating func advance() async throws {
            current = try await rows.next().map(PGRow.init)
            if current != nil { count += 1 }
        }

        /// The digest of the current row over `names` (the batch's recorded columns); nil when a
        /// column is missing.
        func digest(_ names: [String]) -> Data? {
            guard let row = current else { return nil }
            var e = CanonicalEncoder()
            e.beginRow(table: table)
            for name in names {
                guard let k = columns[name.lowercased()] else { return nil }
                row[k].encode(&e)
            }
            return Data(SHA256.hash(data: e.bytes))
        }
    }

    public func verify(limit: Int, anchor: AuditAnchor?) throws -> AuditVerification {
        if let anchor, anchor.writers == nil {
            throw LedgerError.anchor("this anchor names one chain (it was taken of an SQLite ledger); a PostgreSQL ledger keeps one chain per writer: take its anchor with `joule audit anchor` on it")
        }
        let (logger, key) = (logger, auditKey)
        return try transaction { c in
            // One snapshot for the whole check, even while daemons write.
            try await c.query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", logger: logger)
            var problems: [AuditProblem] = []
            var truncated = false
            func report(_ p: AuditProblem) {
                if problems.count < limit { problems.append(p) } else { truncated = true }
            }
            let columns = ["id", "writerId", "seq"] + Self.batchColumns
            var batches: [Stored] = []
            for row in try await Self.fetch(c, "SELECT \(columns.joined(separator: ", ")) FROM auditBatch ORDER BY writerId, seq", logger: logger) {
                batches.append(Stored(id: row[0].int64 ?? 0, writer: row[1].int64 ?? 0, batch: try Self.batch(row)))
            }
            var names: [Int64: String] = [:]
            for row in try await Self.fetch(c, "SELECT id, name FROM writer", logger: logger) {
                names[row[0].int64 ?? 0] = row[1].string ?? "?"
            }
            let pruned = try await Self.prunedBatches(c, logger: logger)

            // Each writer's chain.
            var heads: [Int64: Data] = [:]
            var expected: [Int64: Int64] = [:]
            for s in batches {
                let b = s.batch
                let who = "writer \(names[s.writer] ?? String(s.writer))"
                let next = expected[s.writer] ?? 1
                if b.seq != next {
                    report(AuditProblem(kind: .brokenChain, table: "auditBatch", rowID: b.seq, batch: b.seq, detail: "\(who): batches \(next)…\(b.seq - 1) are missing"))
                }
                if b.previousHash != (heads[s.writer] ?? AuditBatch.genesis) {
                    report(AuditProblem(kind: .brokenChain, table: "auditBatch", rowID: b.seq, batch: b.seq, detail: "\(who): its previous hash does not match batch \(b.seq - 1)"))
                }
                if b.computeHash(previous: b.previousHash) != b.hash {
                    report(AuditProblem(kind: .changedBatch, table: "auditBatch", rowID: b.seq, batch: b.seq, detail: "\(who): its fields or row digests were changed"))
                }
                if let key, !key.verifies(b.mac, of: b.hash) {
                    report(AuditProblem(kind: .unauthenticated, table: "auditBatch", rowID: b.seq, batch: b.seq,
                                        detail: "\(who): " + (b.mac == nil ? "it carries no HMAC" : "its HMAC does not match (written without this JOULE_AUDIT_KEY)")))
                }
                let rollupCount = b.digestScheme >= 3 ? b.rollupCount : 0
                if b.rowDigests.count != b.digestBytes * (b.requestCount + b.intervalCount + rollupCount) {
                    report(AuditProblem(kind: .changedBatch, table: "auditBatch", rowID: b.seq, batch: b.seq,
                                        detail: "\(who): it holds \(b.rowDigests.count / b.digestBytes) row digests for \(b.requestCount + b.intervalCount + rollupCount) rows"))
                }
                heads[s.writer] = b.hash
                expected[s.writer] = b.seq + 1
            }

            // Each table's rows, in id order, against the batches that name them (any writer's).
            var counts: [Int] = []
            let tables: [(table: String, select: String, label: (PGRow) -> String)] = [
                (RequestRow.table, Self.requestSelect, { "request \($0["requestId"].int64 ?? 0) of run \($0["runId"].int64 ?? 0)" }),
                (IntervalRow.table, Self.intervalSelect, { "unit \($0["unit"].int64 ?? 0) at \($0["startSeconds"].double ?? 0) s of run \($0["runId"].int64 ?? 0)" }),
                (RollupRow.table, Self.rollupSelect, { "minute at \($0["minuteSeconds"].double ?? 0) s of run \($0["runId"].int64 ?? 0)" }),
            ]
            for (t, spec) in tables.enumerated() {
                var walk = try await Walk(table: spec.table, label: spec.label,
                                          rows: c.query(PostgresQuery(unsafeSQL: spec.select + " ORDER BY id"), logger: logger))
                // (first row, count, digest offset, covered columns, table hash) per batch, by first row.
                var spans: [(first: Int64, count: Int, offset: Int, names: [String], hash: Data?, stored: Stored)] = []
                for s in batches {
                    let b = s.batch
                    switch t {
                    case 0: if let f = b.firstRequestRow, b.requestCount > 0 {
                        spans.append((f, b.requestCount, 0, (b.requestColumns ?? "").split(separator: ",").map(String.init), b.requestsHash, s))
                    }
                    case 1: if let f = b.firstIntervalRow, b.intervalCount > 0 {
                        spans.append((f, b.intervalCount, b.requestCount, (b.intervalColumns ?? "").split(separator: ",").map(String.init), b.intervalsHash, s))
                    }
                    default: if let f = b.firstRollupRow, b.digestScheme >= 3, b.rollupCount > 0 {
                        spans.append((f, b.rollupCount, b.requestCount + b.intervalCount, (b.rollupColumns ?? "").split(separator: ",").map(String.init), b.rollupsHash, s))
                    }
                    }
                }
                spans.sort { $0.first < $1.first }
                for span in spans {
                    let b = span.stored.batch
                    let isPruned = t == 0 && pruned.contains(span.stored.id)
                    let width = b.digestBytes
                    var whole = SHA256()
                    var located = false
                    for k in 0..<span.count {
                        let id = span.first + Int64(k)
                        while let row = walk.current, let rowID = row[0].int64, rowID < id {
                            report(AuditProblem(kind: .insertedRow, table: spec.table, rowID: rowID, batch: nil, detail: "\(spec.label(row)) is in no committed batch"))
                            try await walk.advance()
                        }
                        guard walk.currentID == id else {
                            if isPruned { continue }
                            report(AuditProblem(kind: .removedRow, table: spec.table, rowID: id, batch: b.seq,
                                                detail: "row \(k + 1) of \(span.count) in batch \(b.seq) of run \(b.runId) is gone"))
                            located = true
                            continue
                        }
                        let start = b.rowDigests.startIndex + width * (span.offset + k)
                        let digest = walk.digest(span.names)
                        if let digest { whole.update(data: digest) }
                        if start + width > b.rowDigests.endIndex || digest.map({ $0.prefix(width) != b.rowDigests[start..<start + width] }) ?? true {
                            report(AuditProblem(kind: .changedRow, table: spec.table, rowID: id, batch: b.seq,
                                                detail: "\(walk.current.map(spec.label) ?? "") differs from what was committed"))
                            located = true
                        }
                        try await walk.advance()
                    }
                    if b.digestScheme >= 4, !located, !isPruned, Data(whole.finalize()) != span.hash {
                        report(AuditProblem(kind: .changedRow, table: spec.table, rowID: span.first, batch: b.seq,
                                            detail: "a row among \(spec.table) rows \(span.first)…\(span.first + Int64(span.count) - 1) of batch \(b.seq) differs from what was committed (its tag did not single it out)"))
                    }
                }
                while let row = walk.current {
                    report(AuditProblem(kind: .insertedRow, table: spec.table, rowID: row[0].int64 ?? 0, batch: nil,
                                        detail: "\(spec.label(row)) is after the last committed batch"))
                    try await walk.advance()
                }
                counts.append(walk.count)
            }

            // Each writer's entry chain, and every covered row against its latest entry.
            var entryHeads: [Int64: Data] = [:]
            var entryNext: [Int64: Int64] = [:]
            var latest: [String: [Int64: (seq: Int64, action: String, digest: Data)]] = [:]
            var entryCount = 0
            var lastEntryHash: Data?
            for row in try await Self.fetch(c, """
                SELECT id, writerId, seq, subject, subjectId, action, committedAt, digest, previousHash, hash, mac FROM auditEntry ORDER BY id
                """, logger: logger) {
                entryCount += 1
                let writer = row[1].int64 ?? 0
                let entry = AuditEntry(
                    seq: row[2].int64 ?? 0, subject: row[3].string ?? "", subjectId: row[4].int64 ?? 0, action: row[5].string ?? "",
                    committedAt: row[6].double ?? 0, digest: Data(row[7].bytes ?? []), previousHash: Data(row[8].bytes ?? []),
                    hash: Data(row[9].bytes ?? []), mac: row[10].bytes.map { Data($0) }
                )
                let who = "writer \(names[writer] ?? String(writer))"
                let next = entryNext[writer] ?? 1
                if entry.seq != next {
                    report(AuditProblem(kind: .brokenChain, table: "auditEntry", rowID: entry.seq, batch: nil, detail: "\(who): entries \(next)…\(entry.seq - 1) are missing"))
                }
                if entry.previousHash != (entryHeads[writer] ?? AuditBatch.genesis) {
                    report(AuditProblem(kind: .brokenChain, table: "auditEntry", rowID: entry.seq, batch: nil, detail: "\(who): its previous hash does not match entry \(entry.seq - 1)"))
                }
                if entry.computeHash() != entry.hash {
                    report(AuditProblem(kind: .changedBatch, table: "auditEntry", rowID: entry.seq, batch: nil, detail: "\(who): its fields or digest were changed"))
                }
                if let key, !key.verifies(entry.mac, of: entry.hash) {
                    report(AuditProblem(kind: .unauthenticated, table: "auditEntry", rowID: entry.seq, batch: nil,
                                        detail: "\(who): " + (entry.mac == nil ? "it carries no HMAC" : "its HMAC does not match (written without this JOULE_AUDIT_KEY)")))
                }
                latest[entry.subject, default: [:]][entry.subjectId] = (entry.seq, entry.action, entry.digest)
                entryHeads[writer] = entry.hash
                entryNext[writer] = entry.seq + 1
                lastEntryHash = entry.hash
            }
            for subject in AuditSubject.allCases {
                let entries = latest[subject.rawValue] ?? [:]
                let ids = try await Self.fetch(c, "SELECT id FROM \(subject.rawValue) ORDER BY id", logger: logger).compactMap { $0[0].int64 }
                for id in ids {
                    guard let entry = entries[id], entry.action == "write" else {
                        report(AuditProblem(kind: .insertedRow, table: subject.rawValue, rowID: id, batch: nil, detail: "no audit entry records this row"))
                        continue
                    }
                    if try await Self.digest(subject, id, c, logger: logger) != entry.digest {
                        let why = subject == .run ? " (its fields, or the batches it last committed)" : subject == .intensitySeries ? " (its fields or samples)" : ""
                        report(AuditProblem(kind: .changedRow, table: subject.rawValue, rowID: id, batch: nil, detail: "differs from entry \(entry.seq)\(why)"))
                    }
                }
                let present = Set(ids)
                for (id, entry) in entries.sorted(by: { $0.key < $1.key }) where entry.action == "write" && !present.contains(id) {
                    report(AuditProblem(kind: .removedRow, table: subject.rawValue, rowID: id, batch: nil, detail: "recorded by entry \(entry.seq), now gone"))
                }
            }
            // Each writer's chains against the anchor: still there, as long, with the same heads.
            for a in anchor?.writers ?? [] {
                guard let id = names.first(where: { $0.value == a.writer })?.key else {
                    report(AuditProblem(kind: .anchorMismatch, table: "writer", rowID: 0, batch: nil,
                                        detail: "writer \(a.writer), which the anchor (\(anchor!.takenAt)) names, is gone"))
                    continue
                }
                let head = batches.last { $0.writer == id }?.batch.seq ?? 0
                if head < a.batches {
                    report(AuditProblem(kind: .anchorMismatch, table: "auditBatch", rowID: head, batch: nil,
                                        detail: "writer \(a.writer)'s chain ends at batch \(head); the anchor (\(anchor!.takenAt)) has \(a.batches)"))
                } else if a.batches > 0, let b = batches.first(where: { $0.writer == id && $0.batch.seq == a.batches }), hex(b.batch.hash) != a.batchHead {
                    report(AuditProblem(kind: .anchorMismatch, table: "auditBatch", rowID: a.batches, batch: a.batches,
                                        detail: "writer \(a.writer): its hash differs from the anchor's head (\(a.batchHead ?? "none"))"))
                }
                let entry = try await Self.fetch(c, "SELECT max(seq) FROM auditEntry WHERE writerId = $1", [.integer(id)], logger: logger)[0][0].int64 ?? 0
                if entry < a.entries {
                    report(AuditProblem(kind: .anchorMismatch, table: "auditEntry", rowID: entry, batch: nil,
                                        detail: "writer \(a.writer)'s entries end at \(entry); the anchor (\(anchor!.takenAt)) has \(a.entries)"))
                } else if a.entries > 0, let hash = try await Self.fetch(c, "SELECT hash FROM auditEntry WHERE writerId = $1 AND seq = $2",
                                                                           [.integer(id), .integer(a.entries)], logger: logger).first?[0].bytes,
                          hex(hash) != a.entryHead {
                    report(AuditProblem(kind: .anchorMismatch, table: "auditEntry", rowID: a.entries, batch: nil,
                                        detail: "writer \(a.writer): its hash differs from the anchor's head (\(a.entryHead ?? "none"))"))
                }
            }
            let lastBatch = batches.max { $0.id < $1.id }
            return AuditVerification(
                batches: batches.count, requestRows: counts[0], intervalRows: counts[1], rollupRows: counts[2], prunedBatches: pruned.count,
                headHash: lastBatch.map { hex($0.batch.hash) }, entries: entryCount, entryHeadHash: lastEntryHash.map { hex($0) },
                authenticated: key != nil, anchored: anchor != nil, problems: problems, truncated: truncated
            )
        }
    }

    /// Every writer's chain heads now, to keep outside the ledger.
    public func anchor(at wallClock: Double) throws -> AuditAnchor {
        let rows = try fetch("""
            SELECT w.name,
                (SELECT seq FROM auditBatch WHERE writerId = w.id ORDER BY seq DESC LIMIT 1),
                (SELECT hash FROM auditBatch WHERE writerId = w.id ORDER BY seq DESC LIMIT 1),
                (SELECT seq FROM auditEntry WHERE writerId = w.id ORDER BY seq DESC LIMIT 1),
                (SELECT hash FROM auditEntry WHERE writerId = w.id ORDER BY seq DESC LIMIT 1)
            FROM writer w ORDER BY w.id
            """)
        let writers = rows.map { r in
            WriterAnchor(writer: r[0].string ?? "", batches: r[1].int64 ?? 0, batchHead: r[2].bytes.map { hex($0) },
                         entries: r[3].int64 ?? 0, entryHead: r[4].bytes.map { hex($0) })
        }.filter { $0.batches > 0 || $0.entries > 0 }
        return AuditAnchor(
            batches: writers.reduce(0) { $0 + $1.batches }, batchHead: nil, entries: writers.reduce(0) { $0 + $1.entries }, entryHead: nil,
            ledger: location, takenAt: WallClock.string(wallClock), writers: writers
        )
    }

    public func reconcile(run id: Int64, tolerance: Double) throws -> Reconciliation {
        let stored = try run(id)
        let logger = logger
        return try withConnection { c in
            let requests = try await Self.fetch(c, """
                SELECT count(*), coalesce(sum(inFlight), 0)::bigint, coalesce(sum(facilityJoules), 0) FROM request WHERE runId = $1
                """, [.integer(id)], logger: logger)[0]
            let intervals = try await Self.fetch(c, "SELECT count(*), coalesce(sum(facilityJoules), 0) FROM clusterInterval WHERE runId = $1",
                                                 [.integer(id)], logger: logger)[0]
            let last = try await Self.lastCheckpoint(run: id, c, logger: logger)
            let withoutRollups = try await Self.fetch(c, "SELECT count(*) FROM auditBatch WHERE runId = $1 AND requestCount > 0 AND digestScheme < 3",
                                                      [.integer(id)], logger: logger)[0][0].int64 ?? 0
            var rollups: PGRow?
            if withoutRollups == 0 {
                rollups = try await Self.fetch(c, """
                    SELECT coalesce(sum(requests + inFlight), 0)::bigint, coalesce(sum(facilityJoules), 0) + coalesce(sum(inFlightFacilityJoules), 0)
                    FROM requestRollup WHERE runId = $1
                    """, [.integer(id)], logger: logger)[0]
            }
            let pruned = try await Self.prunedBatches(c, logger: logger)
            var prunedRows = 0, prunedJoules = 0.0
            if !pruned.isEmpty {
                for b in try await Self.fetch(c, "SELECT id, firstRollupRow, rollupCount FROM auditBatch WHERE runId = $1 AND rollupCount > 0",
                                              [.integer(id)], logger: logger) where pruned.contains(b[0].int64 ?? 0) {
                    let first = b[1].int64 ?? 0, count = b[2].int64 ?? 0
                    let r = try await Self.fetch(c, """
                        SELECT coalesce(sum(requests + inFlight), 0)::bigint, coalesce(sum(facilityJoules), 0) + coalesce(sum(inFlightFacilityJoules), 0)
                        FROM requestRollup WHERE id BETWEEN $1 AND $2
                        """, [.integer(first), .integer(first + count - 1)], logger: logger)[0]
                    prunedRows += Int(r[0].int64 ?? 0)
                    prunedJoules += r[1].double ?? 0
                }
            }
            let batchCount = try await Self.fetch(c, "SELECT count(*) FROM auditBatch WHERE runId = $1", [.integer(id)], logger: logger)[0][0].int64 ?? 0
            let requestJoules = (requests[2].double ?? 0) + prunedJoules
            let intervalJoules = intervals[1].double ?? 0
            let pending = last?.pendingFacilityJoules ?? 0
            let unattributed = last?.unattributedFacilityJoules ?? 0
            let accounted = requestJoules + pending + unattributed
            let residual = intervalJoules > 0 ? abs(accounted - intervalJoules) / intervalJoules : (accounted == 0 ? 0 : .infinity)
            var result = Reconciliation(
                run: id, status: stored.status, requestRows: Int(requests[0].int64 ?? 0), inFlightRows: Int(requests[1].int64 ?? 0),
                intervalRows: Int(intervals[0].int64 ?? 0), requestsKWh: requestJoules / 3.6e6, pendingKWh: pending / 3.6e6,
                pendingRequests: last?.pendingRequests ?? 0, unattributedKWh: unattributed / 3.6e6, intervalsKWh: intervalJoules / 3.6e6,
                relativeResidual: residual, checkpointRecords: last?.records ?? 0, checkpointIntervals: last?.intervals ?? 0, tolerance: tolerance,
                batches: Int(batchCount), rollupRequests: rollups.map { Int($0[0].int64 ?? 0) }, rollupKWh: rollups.map { ($0[1].double ?? 0) / 3.6e6 },
                prunedRequestRows: prunedRows
            )
            result.mode = stored.mode
            return result
        }
    }
}
