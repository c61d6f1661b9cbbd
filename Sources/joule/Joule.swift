import ArgumentParser
import Foundation
import Ledger

@main
struct Joule: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "joule",
        abstract: "Energy and carbon accounting for Mixture-of-Experts LLM serving.",
        discussion: """
        Joule models DeepSeek-class MoE serving on simulated H800 clusters: what every batch step \
        costs in time, power and energy, calibrated on published kernel figures.

        Examples:
          joule estimate step --model deepseek-v3 --hardware h800 --phase decode --ep 144 --batch-per-gpu 88 --context 4989
          joule estimate training --model deepseek-v3 --hardware h800 --gpus 2048 --pp 16 --ep 64 --tokens 14.8e12 --seq-len 4096 --global-batch 15360
          joule simulate --scenario deepseek-v3-day --duration 600 --db joule.sqlite
          joule daemon
          joule audit verify --db joule.sqlite
          joule carbon fetch --source ukci --zone GB
          joule schedule --region GB --window-minutes 120 --energy-kwh 300
          joule calibrate
        """,
        subcommands: [Simulate.self, MeasureCommand.self, PlanCommand.self, DaemonCommand.self, Serve.self, Runs.self, Audit.self, LedgerCommand.self, Report.self, Export.self, Carbon.self, Schedule.self, Estimate.self, Calibrate.self]
    )
}

extension Joule {
    /// Runs the command line. A negative number after an option (`--duration -5`) is joined to it
    /// (`--duration=-5`), so that the option's own check answers ("expected … got -5") rather than
    /// the parser taking "-5" for an option and reporting a missing value.
    static func main() async {
        await main(joiningNegativeValues(Array(CommandLine.arguments.dropFirst())))
    }

    static func joiningNegativeValues(_ arguments: [String]) -> [String] {
        var out: [String] = []
        for a in arguments {
            if let last = out.last, last.hasPrefix("--"), !last.contains("="), a.count > 1, a.hasPrefix("-"),
               Double(a) != nil || a.dropFirst().first?.isNumber == true {
                out[out.count - 1] = last + "=" + a
            } else {
                out.append(a)
            }
        }
        return out
    }
}

/// Options every command that reads Joule's data files takes.
struct DataOptions: ParsableArguments {
    @Option(name: .customLong("data"), help: ArgumentHelp("Joule's Data directory (default: $JOULE_DATA, or the repository's Data/).", valueName: "dir"))
    var dataDirectory: String?
}

/// The ledger option every command that reads or writes the ledger takes.
struct LedgerOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "The ledger: an SQLite file, or postgres://USER@HOST:PORT/DATABASE for a fleet's shared ledger ($JOULE_DB sets the default).",
        valueName: "path-or-url"
    ))
    var db = ProcessInfo.processInfo.environment["JOULE_DB"].flatMap { $0.isEmpty ? nil : $0 } ?? "joule.sqlite"

    /// Opens the ledger `--db` names (a path: SQLite; a postgres:// URL: PostgreSQL).
    func open(mustExist: Bool = false) throws -> any LedgerStore {
        try LedgerLocation(db).open(mustExist: mustExist)
    }
}
