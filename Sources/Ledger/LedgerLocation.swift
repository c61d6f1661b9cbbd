import Foundation

/// Where a ledger lives, as `--db` or `JOULE_DB` names it: a path means an SQLite file, a
/// `postgres://` (or `postgresql://`) URL a PostgreSQL database shared by a fleet.
public enum LedgerLocation: Sendable, Hashable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(PostgresLocation)

    /// Reads `text`: a URL with the postgres scheme, else a path.
    /// - Throws: `LedgerError.badLocation` for a postgres URL that cannot be used, naming what is wrong.
    public init(_ text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        let lower = text.lowercased()
        if lower.hasPrefix("postgres://") || lower.hasPrefix("postgresql://") {
            self = .postgres(try PostgresLocation(url: text, environment: environment))
        } else if lower.contains("://") {
            throw LedgerError.badLocation(text: Self.redacted(text), reason: "expected a file path or a postgres:// URL")
        } else {
            self = .sqlite(path: text)
        }
    }

    /// Where it is, for messages and logs: never a password.
    public var description: String {
        switch self {
        case .sqlite(let path): path
        case .postgres(let p): p.description
        }
    }

    /// `text` with anything between `://` and `@` after a colon (a password) replaced by `***`.
    public static func redacted(_ text: String) -> String {
        guard let scheme = text.range(of: "://"), let at = text[scheme.upperBound...].lastIndex(of: "@") else { return text }
        let userinfo = text[scheme.upperBound..<at]
        guard let colon = userinfo.firstIndex(of: ":") else { return text }
        return String(text[..<colon]) + ":***" + String(text[at...])
    }

    /// Opens the ledger here.
    ///
    /// - Parameters:
    ///   - mustExist: refuse a file that does not exist yet (readers); a PostgreSQL database must
    ///     exist already, and its schema is created or migrated when it is opened for writing.
    ///   - writer: the name this process's commits are chained under in a shared (PostgreSQL)
    ///     ledger; by default `JOULE_WRITER`, else the host name and process id.
    public func open(mustExist: Bool = false, maximumBytes: Int? = nil, writer: String? = nil) throws -> any LedgerStore {
        switch self {
        case .sqlite(let path): try Ledger(path: path, mustExist: mustExist, maximumBytes: maximumBytes)
        case .postgres(let p): try PostgresLedger(p, writer: writer)
        }
    }
}

/// A PostgreSQL database named by a URL: `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=MODE]`.
///
/// The password comes from the URL, else `PGPASSWORD`, else the password file (`PGPASSFILE`, or
/// `~/.pgpass`: lines `host:port:database:user:password`, `*` matching anything, as libpq reads
/// it). It is never part of `description`.
public struct PostgresLocation: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var database: String
    var password: String?
    /// `disable`, `prefer` (the default, as libpq's) or `require`.
    public var tls: TLSMode

    public enum TLSMode: String, Sendable, Hashable, CaseIterable {
        case disable, prefer, require
    }

    public init(url text: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        func bad(_ reason: String) -> LedgerError { .badLocation(text: LedgerLocation.redacted(text), reason: reason) }
        guard let components = URLComponents(string: text) else { throw bad("not a URL") }
        guard let host = components.host, !host.isEmpty else { throw bad("no host (expected postgres://USER@HOST:PORT/DATABASE)") }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else { throw bad("no database name after the host (expected …/DATABASE)") }
        let port = components.port ?? 5432
        guard (1...65535).contains(port) else { throw bad("port \(port) is out of range (1 to 65535)") }
        self.host = host
        self.port = port
        self.database = database
        user = components.user.flatMap { $0.removingPercentEncoding } ?? environment["PGUSER"] ?? environment["USER"] ?? "postgres"
        tls = .prefer
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                switch item.value ?? "" {
                case "disable", "allow": tls = .disable
                case "prefer": tls = .prefer
                case "require", "verify-ca", "verify-full": tls = .require
                default: throw bad("sslmode must be disable, prefer or require, got \(item.value ?? "nothing")")
                }
            default:
                throw bad("unknown parameter \(item.name) (expected sslmode)")
            }
        }
        let user = self.user
        let fromFile = PostgresLocation.passwordFile(environment: environment).flatMap {
            PostgresLocation.password(in: $0.text, host: host, port: port, database: database, user: user)
        }
        password = components.password.flatMap { $0.removingPercentEncoding }
            ?? environment["PGPASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
            ?? fromFile
    }

    public var description: String { "postgres://\(user)@\(host):\(port)/\(database)" }

    /// The password file's text and path, if there is one.
    static func passwordFile(environment: [String: String]) -> (text: String, path: String)? {
        let path = environment["PGPASSFILE"] ?? environment["HOME"].map { $0 + "/.pgpass" }
        guard let path, let data = FileManager.default.contents(atPath: path) else { return nil }
        return (String(decoding: data, as: UTF8.self), path)
    }

    /// The password of the first line of a `.pgpass` file that matches (`*` matches anything;
    /// `\:` and `\\` are a colon and a backslash), or nil.
    static func password(in text: String, host: String, port: Int, database: String, user: String) -> String? {
        for line in text.split(whereSeparator: \.isNewline) where !line.hasPrefix("#") {
            var fields: [String] = [""]
            var escaped = false
            for ch in line {
                if escaped {
                    fields[fields.count - 1].append(ch)
                    escaped = false
                } else if ch == "\\" {
                    escaped = true
                } else if ch == ":" && fields.count < 5 {
                    fields.append("")
                } else {
                    fields[fields.count - 1].append(ch)
                }
            }
            guard fields.count == 5 else { continue }
            let wanted = [host, String(port), database, user]
            if zip(fields.prefix(4), wanted).allSatisfy({ $0 == "*" || $0 == $1 }) { return fields[4] }
        }
        return nil
    }
}
