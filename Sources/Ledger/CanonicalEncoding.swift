import Crypto
import Foundation
import GRDB
import Serving

/// Receives a row's values in column order: the same walk feeds the statement that inserts a row
/// and the canonical encoding its audit digest is computed from.
protocol RowSink: ColumnVisitor {
    mutating func integer(_ value: Int64)
    mutating func real(_ value: Double)
    mutating func text(_ value: String)
    mutating func blob(_ value: [UInt8])
    mutating func null()
}

extension RowSink {
    mutating func integer(_ name: StaticString, _ value: inout Int64) { integer(value) }
    mutating func integer(_ name: StaticString, _ value: inout Int) { integer(Int64(value)) }
    mutating func integer(_ name: StaticString, _ value: inout Int?) {
        if let value { integer(Int64(value)) } else { null() }
    }
    mutating func flag(_ name: StaticString, _ value: inout Bool) { integer(value ? 1 : 0) }
    mutating func real(_ name: StaticString, _ value: inout Double) { real(value) }
    mutating func real(_ name: StaticString, _ value: inout Double?) {
        if let value { real(value) } else { null() }
    }
    mutating func text(_ name: StaticString, _ value: inout String) { text(value) }
    mutating func derived(_ name: StaticString, _ value: Double) { real(value) }
    mutating func sketch(_ name: StaticString, _ value: inout QuantileSketch) { blob(SketchCoding.encode(value)) }
    mutating func integer(_ value: Int?) {
        if let value { integer(Int64(value)) } else { null() }
    }
    mutating func real(_ value: Double?) {
        if let value { real(value) } else { null() }
    }
}

/// Reads a row selected as `id, <the table's columns>` back into its record.
/// A value that is not of its column's type (a row edited outside Joule) is not read: the first
/// such column is kept in `unreadable`, for `stored(_:)` to throw, never a trap.
struct RowReader: ColumnVisitor {
    let row: Row
    var index = 1
    var unreadable: (column: String, value: DatabaseValue)?

    init(_ row: Row) { self.row = row }

    mutating func read<T: DatabaseValueConvertible>(_ name: StaticString, _ value: inout T) {
        do {
            value = try row.decode(T.self, atIndex: index)
        } catch {
            if unreadable == nil { unreadable = ("\(name)", row[index]) }
        }
        index += 1
    }

    mutating func integer(_ name: StaticString, _ value: inout Int64) { read(name, &value) }
    mutating func integer(_ name: StaticString, _ value: inout Int) { read(name, &value) }
    mutating func integer(_ name: StaticString, _ value: inout Int?) { read(name, &value) }
    mutating func flag(_ name: StaticString, _ value: inout Bool) { read(name, &value) }
    mutating func real(_ name: StaticString, _ value: inout Double) { read(name, &value) }
    mutating func real(_ name: StaticString, _ value: inout Double?) { read(name, &value) }
    mutating func text(_ name: StaticString, _ value: inout String) { read(name, &value) }
    mutating func derived(_ name: StaticString, _ value: Double) { index += 1 }
    mutating func sketch(_ name: StaticString, _ value: inout QuantileSketch) {
        let stored = row[index] as DatabaseValue
        if case .blob(let data) = stored.storage, let sketch = SketchCoding.decode([UInt8](data)) {
            value = sketch
        } else if unreadable == nil {
            unreadable = ("\(name)", stored)
        }
        index += 1
    }
}

extension StoredRow where Record: StoredRecord {
    /// `SELECT id, <columns> FROM <table>`, for `stored(_:)`.
    static var selectAll: String { "SELECT id, \(columnNames.joined(separator: ", ")) FROM \(table)" }

    /// The stored row of a `selectAll` result.
    static func stored(_ row: Row) throws -> StoredRow {
        var stored = blank
        var reader = RowReader(row)
        stored.visit(&reader)
        stored.rowID = row[0]
        if let (column, value) = reader.unreadable {
            throw LedgerError.unreadable(table: table, row: stored.rowID, column: column, value: "\(value)")
        }
        return stored
    }
}

/// The canonical byte encoding of ledger rows for the audit chain.
///
/// Each value is a tag byte and a fixed layout: null `0`; integer `1` + 8 bytes big-endian;
/// real `2` + the IEEE-754 bit pattern, 8 bytes big-endian (NaN, which SQLite stores as NULL,
/// encodes as null); text `3` + 4-byte big-endian length + UTF-8; blob `4` + length + bytes.
/// A row is its table's name (text), then its columns after `id` in schema order. The row id is
/// left out so that digests can be computed before the rows are inserted; the audit batch names
/// its rows by their id range instead. Columns added by later migrations (`extensionColumns`)
/// are encoded only when they hold a value (digest scheme 1; scheme 2 encodes the batch's recorded column set).
/// It is computed from Swift values when a batch is written and from the stored values when
/// `audit verify` reads it back: the two agree exactly unless the row was changed.
struct CanonicalEncoder: RowSink {
    var bytes: [UInt8] = []

    init() { bytes.reserveCapacity(512) }

    mutating func reset() { bytes.removeAll(keepingCapacity: true) }

    mutating func integer(_ value: Int64) {
        bytes.append(1)
        appendBigEndian(UInt64(bitPattern: value))
    }

    mutating func real(_ value: Double) {
        if value.isNaN { return null() }
        bytes.append(2)
        appendBigEndian(value.bitPattern)
    }

    mutating func text(_ value: String) {
        bytes.append(3)
        appendLength(value.utf8.count)
        bytes.append(contentsOf: value.utf8)
    }

    mutating func blob(_ value: [UInt8]) {
        bytes.append(4)
        appendLength(value.count)
        bytes.append(contentsOf: value)
    }

    mutating func null() { bytes.append(0) }

    /// Appends a value as SQLite returned it.
    mutating func stored(_ value: DatabaseValue) {
        switch value.storage {
        case .null: null()
        case .int64(let v): integer(v)
        case .double(let v): real(v)
        case .string(let v): text(v)
        case .blob(let v): blob([UInt8](v))
        }
    }

    /// Starts a row of `table`.
    mutating func beginRow(table: String) {
        reset()
        text(table)
    }

    private mutating func appendBigEndian(_ v: UInt64) {
        withUnsafeBytes(of: v.bigEndian) { bytes.append(contentsOf: $0) }
    }

    private mutating func appendLength(_ n: Int) {
        withUnsafeBytes(of: UInt32(n).bigEndian) { bytes.append(contentsOf: $0) }
    }

    /// SHA-256 of the bytes so far.
    var digest: [UInt8] { Array(SHA256.hash(data: bytes)) }
}

/// Hex of bytes, lowercase.
func hex(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}
