import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Ledger
import Measured
import Accounting
import Serving

struct Audit: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check the ledger: tampering, one request's cost, and whether a run's books balance.",
        discussion: """
        Examples:
          joule audit verify --db joule.sqlite
          joule audit anchor --db joule.sqlite --out anchors/2026-12-03.json
          joule audit verify --db joule.sqlite --anchor anchors/2026-12-03.json
          joule audit request 1042 --db joule.sqlite
          joule audit reconcile --run 1 --db joule.sqlite --json
        """,
        subcommands: [Verify.self, Anchor.self, Request.self, Reconcile.self]
    )

    struct Verify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Recompute the audit chain and every row's digest; report what was changed outside Joule.",
            discussion: """
            Every committed batch of request and interval rows is hashed (SHA-256 over a canonical \
            encoding of each row) together with the previous batch's hash; every write to a run, its \
            status events, a carbon series (with its samples) or a scheduled job is an entry in a \
            second chain. This recomputes both and reports the first rows, batches or entries \
            changed, removed or inserted outside Joule, and exits non-zero if any.

            A chain cannot see its own tail cut off, or the whole ledger replaced: check it against an \
            anchor kept elsewhere (`joule audit anchor`). With JOULE_AUDIT_KEY set, every batch and \
            entry must carry an HMAC made with that key, so a chain rewritten without the key fails. \
            docs/ledger.md lists what is detected with and without each.

            Examples:
              joule audit verify --db joule.sqlite
              joule audit verify --db joule.sqlite --anchor anchor.json
              JOULE_AUDIT_KEY=... joule audit verify --db joule.sqlite
            """
        )
        @OptionGroup var ledger: LedgerOptions
        @Option(help: "An anchor file from `joule audit anchor`: the ledger must extend it.") var anchor: String?
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            let anchored = try failing { try anchor.map(Self.readAnchor) }
            let result = try failing { try ledger.open(mustExist: true).verify(limit: 20, anchor: anchored) }
            if json {
                print(try jsonText(result))
            } else if result.ok {
                print("ok: \(result.batches.formatted()) batches, \(result.requestRows.formatted()) request rows and \(result.intervalRows.formatted()) interval rows verify")
                print("ok: \(result.entries.formatted()) entries over runs, run events, carbon series and scheduled jobs verify")
                if result.prunedBatches > 0 {
                    print("pruned: the request rows of \(result.prunedBatches.formatted()) batches were removed by a recorded pruning (joule ledger prune); their digests still check the rest")
                }
                if let head = result.headHash { print("head hash \(head)") }
                print(result.authenticated ? "authenticated: every batch and entry carries a valid HMAC (JOULE_AUDIT_KEY)" : "not authenticated: JOULE_AUDIT_KEY is not set, so a rewritten chain would verify")
                print(result.anchored ? "anchored: the ledger extends \(anchor!)" : "not anchored: a cut tail or a wipe shows only against an anchor (joule audit anchor)")
            } else {
                print("TAMPERED: \(result.problems.count)\(result.truncated ? "+" : "") problem(s), earliest first:")
                for p in result.problems { print("  \(p)") }
            }
            if !result.ok { throw ExitCode(1) }
        }
    }

    struct Anchor: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the audit chains' heads as an anchor, to keep outside the ledger.",
            discussion: """
            `joule audit verify --anchor FILE` later checks that the ledger still extends it: a cut \
            tail, a rewritten history or a wiped ledger is then caught. Write it where the ledger's \
            writer cannot change it: another host, object storage, a ticket.

            Examples:
              joule audit anchor --db joule.sqlite
              joule audit anchor --db joule.sqlite --out /mnt/anchors/joule-$(date +%F).json
              joule audit anchor --db joule.sqlite --out https://anchors.example.org/joule   # POSTed as JSON
            """
        )
        @OptionGroup var ledger: LedgerOptions
        @Option(help: "A file to write the anchor to, or an http(s) URL to POST it to (default: standard output only).") var out: String?

        func run() throws {
            let a = try failing { try ledger.open(mustExist: true).anchor(at: Date().timeIntervalSince1970) }
            let text = try jsonText(a)
            print(text)
            guard let out else { return }
            if out.hasPrefix("http://") || out.hasPrefix("https://") {
                try failing { try Self.post(Data(text.utf8), to: out) }
                FileHandle.standardError.write(Data("anchor posted to \(out)\n".utf8))
            } else {
                try failing {
                    do {
                        try Data((text + "\n").utf8).write(to: URL(fileURLWithPath: out), options: .atomic)
                    } catch {
                        throw LedgerError.anchor("--out \(out): cannot write the anchor (\((error as NSError).localizedDescription))")
                    }
                }
                FileHandle.standardError.write(Data("anchor written to \(out)\n".utf8))
            }
        }

        static func post(_ body: Data, to address: String) throws {
            guard let url = URL(string: address) else { throw LedgerError.anchor("--out \(address): not a URL") }
            var request = URLRequest(url: url, timeoutInterval: 30)
            request.httpMethod = "POST"
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = body
            let done = DispatchSemaphore(value: 0)
            nonisolated(unsafe) var outcome: Result<Int, Error> = .success(0)
            URLSession.shared.dataTask(with: request) { _, response, error in
                if let error { outcome = .failure(error) } else { outcome = .success((response as? HTTPURLResponse)?.statusCode ?? 0) }
                done.signal()
            }.resume()
            done.wait()
            switch outcome {
            case .failure(let error): throw LedgerError.anchor("--out \(address): \(error.localizedDescription)")
            case .success(let code) where !(200..<300).contains(code): throw LedgerError.anchor("--out \(address): the server answered HTTP \(code)")
            case .success: break
            }
        }
    }

    struct Request: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Explain what one request cost: its shares, overheads, intensity and totals.",
            discussion: """
            A measured run's request is named by its log's request_id (a vLLM id such as \
            cmpl-8f2e… is looked up by the number Joule stored it under).

            Examples:
              joule audit request 1042 --db joule.sqlite --run 1
              joule audit request cmpl-8f2e41c0-0 --db joule.sqlite --run 3
            """
        )
        @OptionGroup var ledger: LedgerOptions
        @Argument(help: "The request id (as the workload numbered it, or a measured log's request_id).") var request: String
        @Option(name: .customLong("run"), help: "The run (needed when several runs have this request id).") var runID: Int64?
        @Flag(help: "Print the breakdown as JSON.") var json = false

        func run() throws {
            let id = Int(request) ?? MeasuredRequestID.number(for: request)
            let b = try failing { try ledger.open(mustExist: true).breakdown(request: id, run: runID) }
            print(json ? try jsonText(b) : b.text)
        }
    }

    struct Reconcile: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Σ request energy against the cluster intervals' energy for a run; non-zero exit past 1e-9.",
            discussion: """
            For a run still going (or stopped), the energy already drawn by requests not yet finished \
            and the idle energy not yet attributed are taken from its last checkpoint.

            Example:
              joule audit reconcile --run 1 --db joule.sqlite
            """
        )
        @OptionGroup var ledger: LedgerOptions
        @Option(name: .customLong("run"), help: "The run to reconcile.") var runID: Int64
        @Option(help: "The largest relative residual that passes.") var tolerance = 1e-9
        @Flag(help: "Print the result as JSON.") var json = false

        func run() throws {
            let r = try failing { try ledger.open(mustExist: true).reconcile(run: runID, tolerance: tolerance) }
            if json {
                print(try jsonText(r))
            } else {
                func kwh(_ v: Double) -> String { v.formatted(.number.precision(.fractionLength(6))) + " kWh" }
                print("""
                Run \(r.run) (\(r.mode.rawValue), \(r.status.rawValue)): \(r.requestRows.formatted()) request rows (\(r.inFlightRows.formatted()) flagged in flight), \(r.intervalRows.formatted()) interval rows
                  requests stored                  \(kwh(r.requestsKWh))\(r.prunedRequestRows > 0 ? "  (\(r.prunedRequestRows.formatted()) pruned rows counted from their rollups)" : "")
                + drawn by requests not finished   \(kwh(r.pendingKWh))  (\(r.pendingRequests.formatted()) requests at the last checkpoint)
                + idle energy not yet attributed   \(kwh(r.unattributedKWh))
                = cluster intervals                \(kwh(r.intervalsKWh))
                relative residual \(r.relativeResidual.formatted(.number.precision(.significantDigits(2)))) (tolerance \(r.tolerance)); rows match the last checkpoint: \(r.checkpointRecords == r.requestRows + r.prunedRequestRows && r.checkpointIntervals == r.intervalRows ? "yes" : "NO (\(r.checkpointRecords) requests, \(r.checkpointIntervals) intervals expected)")
                \(r.rollupRequests.map { n in "request rollups: \(n.formatted()) requests, \(kwh(r.rollupKWh ?? 0)) (\(r.rollupsMatch ? "match the rows" : "DO NOT MATCH the rows"))" } ?? "request rollups: none (recorded before rollups)")
                \(r.balances ? "balanced" : "NOT BALANCED")
                """)
            }
            if !r.balances { throw ExitCode(1) }
        }
    }
}

extension RequestBreakdown {
    var text: String {
        let r = record
        func j(_ v: Double) -> String { v.formatted(.number.precision(.fractionLength(3)).grouping(.automatic)) }
        func g(_ v: Double) -> String { v.formatted(.number.precision(.significantDigits(4))) }
        func pct(_ v: Double) -> String { r.facilityJoules > 0 ? (100 * v / r.facilityJoules).formatted(.number.precision(.fractionLength(1))) + " %" : "–" }
        func s(_ v: Double?) -> String { v.map { $0.formatted(.number.precision(.fractionLength(3))) + " s" } ?? "–" }
        let kWh = r.facilityJoules / 3.6e6
        let arrivedAt = WallClock.string(startEpochSeconds + r.arrival)
        let rows: [(String, Double)] = [
            ("GPU: its share of its steps", r.gpuActiveJoules),
            ("GPU idle: its share", r.gpuIdleJoules),
            ("host: in steps and idle", r.hostJoules),
            ("PUE overhead (×\(pue.formatted(.number.precision(.fractionLength(3)))))", r.facilityOverheadJoules),
        ]
        let table = rows.map { "  \($0.0.padding(toLength: 34, withPad: " ", startingAt: 0))\(j($0.1).leftPad(14)) J  \(pct($0.1).leftPad(7))" }
        return """
        Request \(r.id) of run \(run) (\(scenario), \(mode == .measured ? "measured: metered GPU energy" : "simulated")), committed in audit batch \(batch)\(r.inFlight ? "; still in flight when the run ended" : "")
          arrived \(arrivedAt) (+\(s(r.arrival)) into the run) · prefill unit \(r.prefillUnit.map(String.init) ?? "–") · decode unit \(r.decodeUnit.map(String.init) ?? "–")
          tokens: \(r.promptTokens.formatted()) prompt (\(r.cachedTokens.formatted()) cached) · \(r.outputTokens.formatted()) output
          queue wait \(s(r.queueWait)) · TTFT \(s(r.ttft)) · TPOT \(s(r.tpot)) · end-to-end \(s(r.endToEnd))
        Energy
        \(table.joined(separator: "\n"))
          \("facility total".padding(toLength: 34, withPad: " ", startingAt: 0))\(j(r.facilityJoules).leftPad(14)) J  = \(kWh.formatted(.number.precision(.significantDigits(4)))) kWh; mean power \(j(r.meanPowerWatts)) W
          (parts add up to the total to \(partsResidual.formatted(.number.precision(.significantDigits(2)))) relative)
        Carbon
          grid intensity used      \(r.intensityGramsPerKWh.formatted(.number.precision(.fractionLength(1)))) gCO2e/kWh (time-weighted over its steps)
          operational              \(g(r.operationalCarbonGrams)) g = energy × intensity at the time each part was drawn
          embodied                 \(g(r.embodiedCarbonGrams)) g = \(j(r.gpuSeconds)) GPU-seconds × \(embodiedGramsPerGPUSecond.formatted(.number.precision(.significantDigits(4)))) g per GPU-second
          total                    \(g(r.totalCarbonGrams)) gCO2e
        \(trainingLines)
        """
    }

    /// The request's share of its model's training, beside (not inside) its operational and embodied carbon.
    private var trainingLines: String {
        guard let t = record.training else { return "Training share\n  none charged (the scenario names no training plan)" }
        let tokens = t.tokens.formatted(.number.precision(.fractionLength(0)))
        return """
        Training share (amortised by tokens served; not part of SCI's operational or embodied terms)
          tokens charged           \(tokens) (prompt and output)
          energy                   \(t.facilityJoules.formatted(.number.precision(.significantDigits(4)))) J at the training facility
          carbon                   \(t.carbonGrams.formatted(.number.precision(.significantDigits(4)))) gCO2e
          GPU time                 \(t.gpuSeconds.formatted(.number.precision(.significantDigits(4)))) GPU-seconds
        """
    }
}

extension String {
    func leftPad(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}

extension Audit.Verify {
    static func readAnchor(_ path: String) throws -> AuditAnchor {
        guard let data = FileManager.default.contents(atPath: path) else { throw LedgerError.anchor("--anchor \(path): cannot read the file") }
        do {
            return try JSONDecoder().decode(AuditAnchor.self, from: data)
        } catch {
            throw LedgerError.anchor("--anchor \(path): not an anchor from `joule audit anchor` (\(error))")
        }
    }
}
