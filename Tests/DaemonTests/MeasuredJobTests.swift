import Catalog
import Foundation
import Ledger
import Logging
import Testing

@testable import Daemon

@Suite("The daemon's measured jobs")
struct MeasuredJobTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/measured").path
    static let data = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Data").path

    @Test("A measured job reads from its configuration, and bad values name the key")
    func configuration() throws {
        let c = try DaemonConfiguration.parse("""
            jobs:
              - name: node-a
                measure: {power: "http://node-a:9400/metrics", requests: spans.csv, grid: DE, engineGPUs: "0-3", windowSeconds: 120, settleSeconds: 30}
            server: {port: 0, spansOut: spans.csv}
            """, file: "d.yaml")
        let m = try #require(c.jobs.first?.measure)
        #expect(m.grid == "DE" && m.engineGPUs == [0, 1, 2, 3] && m.windowSeconds == 120 && m.settleSeconds == 30 && c.serverSpansOut == "spans.csv")
        for (text, field) in [
            ("jobs:\n  - measure: {power: p, requests: r, grid: DE}\n", "jobs"),
            ("jobs:\n  - name: a\n    measure: {power: p, requests: r, grid: DE, windowSeconds: 5}\n", "windowSeconds"),
            ("jobs:\n  - name: a\n    measure: {power: p, requests: r, grid: DE, policy: fair}\n", "policy"),
            ("jobs:\n  - name: a\n    measure: {power: p, requests: r}\n", "grid"),
            ("jobs:\n  - name: a\n    measure: {power: p, requests: r, grid: DE, engineGPUs: x}\n", "engineGPUs"),
        ] {
            #expect { try DaemonConfiguration.parse(text, file: "d.yaml") } throws: { "\($0)".contains(field) && "\($0)".contains("d.yaml") }
        }
    }

    @Test("A window is recorded as a measured run of the requests that overlap it")
    func window() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("joule-measured-job-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let ledger = try Ledger(path: "\(folder)/l.sqlite")
        var spec = MeasuredJobSpec(power: "\(Self.fixtures)/dcgm-small.prom", requests: "\(Self.fixtures)/requests-small.csv", grid: "CN")
        spec.windowSeconds = 2
        spec.intervalSeconds = 1
        let driver = MeasuredDriver(
            name: "node-a", spec: spec, ledger: ledger, library: try Catalog.load(from: Self.data), dataDirectory: Self.data, clock: .system,
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
        )
        // The fixtures start at 2025-06-01T12:00:00Z; the window [12:00:00.5, 12:00:02.5] holds requests a, c,1 and b.
        await driver.recordWindow(1_748_779_200.5, dump: nil)
        let runs = try ledger.runs()
        #expect(runs.count == 1 && runs[0].mode == .measured && runs[0].source == "daemon-measure" && runs[0].status == .finished)
        #expect(try ledger.progress(run: runs[0].id!).storedRequests == 3)
        #expect(try ledger.reconcile(run: runs[0].id!).balances)
        // A window with no telemetry is logged and skipped, never a crash.
        await driver.recordWindow(1_900_000_000, dump: nil)
        #expect(try ledger.runs().count == 1)
    }

    @Test("Trimming a scrape dump keeps whole scrapes from the cut on")
    func trim() {
        let dump = Data("# scrape 2025-06-01T12:00:00Z\na 1\n# scrape 2025-06-01T12:00:01Z\na 2\n# scrape 2025-06-01T12:00:02Z\na 3\n".utf8)
        let kept = String(decoding: MeasuredDriver.trimmed(dump, before: 1_748_779_201), as: UTF8.self)
        #expect(kept == "# scrape 2025-06-01T12:00:01Z\na 2\n# scrape 2025-06-01T12:00:02Z\na 3\n")
    }
}
