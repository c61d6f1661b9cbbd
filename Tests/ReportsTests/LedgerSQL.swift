import GRDB
import Ledger

extension Ledger {
    /// Reads the ledger file with SQL of the test's own, through a separate read-only connection:
    /// an oracle independent of the queries the Ledger module offers.
    func sql<T>(_ body: (Database) throws -> T) throws -> T {
        var configuration = Configuration()
        configuration.readonly = true
        return try DatabaseQueue(path: path, configuration: configuration).read(body)
    }
}
