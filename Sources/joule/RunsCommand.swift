import Accounting
import ArgumentParser
import Foundation
import Ledger

struct Runs: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the runs in the ledger, newest first.",
        discussion: """
        Examples:
          joule runs --db joule.sqlite
          joule runs --db postgres://joule@db.example:5432/joule   # a fleet ledger: each run's writer too
        """
    )
    @OptionGroup var ledger: LedgerOptions
    @Flag(help: "Print the runs as JSON.") var json = false

    func run() throws {
        let lines = try failing { try ledger.open(mustExist: true).overviews() }
        if json {
            print(try jsonText(lines))
            return
        }
        // A fleet ledger names each run's writer (the daemon that wrote it).
        let fleet = lines.contains { $0.writer != nil }
        print("  id  name                          mode       source          status     from                    seconds      requests" + (fleet ? "  writer" : ""))
        for l in lines {
            let start = WallClock.string(l.startEpochSeconds)
            print(
                String(l.id).leftPad(4) + "  " + l.name.padding(toLength: 30, withPad: " ", startingAt: 0) + l.mode.rawValue.padding(toLength: 11, withPad: " ", startingAt: 0) + l.source.padding(toLength: 16, withPad: " ", startingAt: 0)
                    + l.status.padding(toLength: 11, withPad: " ", startingAt: 0) + start + String(format: "%.0f", l.simulatedSeconds).leftPad(10)
                    + l.requests.formatted().leftPad(14) + (fleet ? "  " + (l.writer ?? "—") : "") + (l.message.map { "  (\($0))" } ?? "")
            )
        }
    }
}
