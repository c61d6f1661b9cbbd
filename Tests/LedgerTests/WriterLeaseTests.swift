import Foundation
import GRDB
@testable import Ledger
import Testing

/// A run left `running` by a dead process, and a second writer on a live one (issue "Hardening").
@Suite("Ledger: writer leases")
struct WriterLeaseTests {
    static func runSpec(source: String) -> RunSpec {
        RunSpec(name: "job-a", source: source, scenarioFile: "x.yaml", scenarioText: "x", overrides: "{}", seed: 1, startEpochSeconds: 0, intervalSeconds: 60)
    }

    /// The pid of a process that has exited.
    static func deadPID() throws -> Int {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        return Int(p.processIdentifier)
    }

    @Test("A simulate run whose process is gone is marked failed, naming it, by the next writer; the audit still verifies")
    func abandonedRunsFail() throws {
        let folder = TemporaryFolder()
        let path = folder.file("l.sqlite")
        let ledger = try Ledger(path: path)
        let gone = try ledger.beginRun(Self.runSpec(source: "simulate"), at: 100)
        let live = try ledger.beginRun(Self.runSpec(source: "simulate"), at: 100)
        let dead = try Self.deadPID()
        // As the dead writer left it (a Joule write: the lease names the process that began the run).
        try ledger.write { db in
            try db.execute(sql: "UPDATE runEvent SET pid = ? WHERE runId = ?", arguments: [dead, gone])
            try Ledger.recordEntry(.runEvent, try Int64.fetchOne(db, sql: "SELECT id FROM runEvent WHERE runId = ?", arguments: [gone])!, at: 100, key: nil, db)
        }
        let marked = try ledger.failAbandonedRuns(at: 200)
        #expect(marked.map(\.run) == [gone])
        let run = try ledger.run(gone)
        #expect(run.status == .failed)
        #expect(run.message?.contains("pid \(dead) on \(ProcessInfo.processInfo.hostName)") == true)
        #expect(try ledger.run(live).status == .running)
        #expect(try ledger.verify().ok)
        #expect(try ledger.failAbandonedRuns(at: 300).isEmpty)
    }

    @Test("A second daemon on a job another live writer holds gets an error naming the holder; a stale foreign lease is taken over")
    func secondWriterRefused() throws {
        let folder = TemporaryFolder()
        let ledger = try Ledger(path: folder.file("l.sqlite"))
        let first = try ledger.beginRun(Self.runSpec(source: "daemon"), at: 1000)
        try ledger.write { db in try db.execute(sql: "UPDATE runEvent SET host = 'gpu-host-7', pid = 4242 WHERE runId = ?", arguments: [first]) }
        #expect {
            _ = try ledger.beginRun(Self.runSpec(source: "daemon"), at: 1010)
        } throws: { error in
            let m = "\(error)"
            return m.contains("run \(first) is being written by pid 4242 on gpu-host-7") && m.contains("10.0 s ago")
        }
        #expect { try ledger.setStatus(.running, run: first, at: 1010, message: "resumed", summary: nil) } throws: { "\($0)".contains("gpu-host-7") }
        // Two minutes without a commit from another host: the lease has lapsed.
        try ledger.setStatus(.running, run: first, at: 1000 + WriterLease.foreignTimeoutSeconds + 1, message: "resumed", summary: nil)
        #expect(try ledger.lease(run: first)?.host == ProcessInfo.processInfo.hostName)
    }
}
