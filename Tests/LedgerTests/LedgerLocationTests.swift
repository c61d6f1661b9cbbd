import Foundation
import Testing
@testable import Ledger

@Suite("Ledger location: --db and JOULE_DB name a file or a PostgreSQL database")
struct LedgerLocationTests {
    @Test("A path is SQLite; a postgres URL is PostgreSQL with its parts", arguments: ["joule.sqlite", "/tmp/a b/l.sqlite", "../x"])
    func path(_ text: String) throws {
        #expect(try LedgerLocation(text, environment: [:]) == .sqlite(path: text))
    }

    @Test("A URL's user, host, port, database and TLS mode are read; its password is never shown")
    func url() throws {
        let location = try LedgerLocation("postgresql://joule:s%40cret@db.example:6543/fleet?sslmode=require", environment: [:])
        guard case .postgres(let p) = location else { Issue.record("expected PostgreSQL, got \(location)"); return }
        #expect(p.host == "db.example" && p.port == 6543 && p.user == "joule" && p.database == "fleet" && p.tls == .require)
        #expect(p.password == "s@cret")
        #expect(!location.description.contains("s@cret") && !location.description.contains("cret"))
        #expect(LedgerLocation.redacted("postgres://u:pw@h/d") == "postgres://u:***@h/d")
    }

    @Test("Without a password in the URL: PGPASSWORD, else the password file's first matching line")
    func passwords() throws {
        let folder = TemporaryFolder()
        let file = folder.file("pgpass")
        try "# comment\nother:5432:*:joule:wrong\ndb.example:*:fleet:joule:from\\:file\n*:*:*:*:fallback\n".write(toFile: file, atomically: true, encoding: .utf8)
        let url = "postgres://joule@db.example/fleet"
        #expect(try PostgresLocation(url: url, environment: ["PGPASSWORD": "env"]).password == "env")
        #expect(try PostgresLocation(url: url, environment: ["PGPASSFILE": file]).password == "from:file")
        #expect(try PostgresLocation(url: "postgres://x@h/d", environment: ["PGPASSFILE": file]).password == "fallback")
        #expect(try PostgresLocation(url: url, environment: ["PGPASSFILE": folder.file("none")]).password == nil)
    }

    @Test("A URL that cannot be used is a clear error naming what is wrong", arguments: [
        ("postgres:///fleet", "no host"),
        ("postgres://h", "no database"),
        ("postgres://h:70000/d", "port"),
        ("postgres://h/d?sslmode=sometimes", "sslmode"),
        ("postgres://h/d?pool=3", "unknown parameter pool"),
        ("mysql://h/d", "postgres:// URL"),
    ])
    func bad(_ c: (text: String, says: String)) {
        #expect {
            _ = try LedgerLocation(c.text, environment: [:])
        } throws: { error in
            "\(error)".contains(c.says)
        }
    }

    @Test("A server that is not there is a clear error naming it, without hanging")
    func unreachable() throws {
        // A loopback port nothing listens on (bound, then closed).
        let location = try PostgresLocation(url: "postgres://joule:pw@127.0.0.1:1/joule?sslmode=disable", environment: [:])
        #expect {
            _ = try PostgresLedger(location)
        } throws: { error in
            "\(error)".contains("postgres://joule@127.0.0.1:1/joule") && !"\(error)".contains("pw@")
        }
    }
}
