import Accounting
import Foundation
import Serving
import NIOCore
import PostgresNIO

/// One stored value as the ledger's PostgreSQL code handles it: the five kinds the audit's
/// canonical encoding knows (SQLite's storage classes), so a row reads back into the same digest.
enum PGValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])

    /// The value of a result cell. Integers, reals, text and bytea as themselves; booleans as 0/1.
    init(_ cell: PostgresCell) throws {
        guard cell.bytes != nil else {
            self = .null
            return
        }
        switch cell.dataType {
        case .int8, .int4, .int2: self = .integer(try cell.decode(Int64.self))
        case .float8, .float4: self = .real(try cell.decode(Double.self))
        case .bytea:
            let buffer = try cell.decode(ByteBuffer.self)
            self = .blob(Array(buffer.readableBytesView))
        case .bool: self = .integer(try cell.decode(Bool.self) ? 1 : 0)
        default: self = .text(try cell.decode(String.self))
        }
    }

    var int64: Int64? {
        switch self {
        case .integer(let v): v
        case .real(let v) where v == v.rounded() && abs(v) < 9e15: Int64(v)
        default: nil
        }
    }

    var double: Double? {
        switch self {
        case .real(let v): v
        case .integer(let v): Double(v)
        default: nil
        }
    }

    var string: String? {
        if case .text(let s) = self { return s }
        return nil
    }

    var bytes: [UInt8]? {
        if case .blob(let b) = self { return b }
        return nil
    }

    var isNull: Bool { self == .null }

    /// Appends the value to a query's bindings.
    func bind(_ b: inout PostgresBindings) {
        switch self {
        case .null: b.appendNull()
        case .integer(let v): b.append(v)
        case .real(let v): b.append(v)
        case .text(let v): b.append(v)
        case .blob(let v): b.append(ByteBuffer(bytes: v))
        }
    }

    /// Appends the value to the canonical encoding of an audit digest.
    func encode(_ e: inout CanonicalEncoder) {
        switch self {
        case .null: e.null()
        case .integer(let v): e.integer(v)
        case .real(let v): e.real(v)
        case .text(let v): e.text(v)
        case .blob(let v): e.blob(v)
        }
    }
}

/// A result row: its values by position, and by (lower-cased) column name.
struct PGRow: Sendable {
    var values: [PGValue]
    var names: [String]

    init(_ row: PostgresRow) throws {
        var values: [PGValue] = []
        var names: [String] = []
        for cell in row {
            values.append(try PGValue(cell))
            names.append(cell.columnName)
        }
        self.values = values
        self.names = names
    }

    subscript(_ index: Int) -> PGValue { values[index] }

    subscript(_ name: String) -> PGValue {
        let lower = name.lowercased()
        return names.firstIndex(of: lower).map { values[$0] } ?? .null
    }

    /// The value of `column` as `T`, or `LedgerError.unreadable` naming it.
    func int(_ column: String, in table: String) throws -> Int64 {
        guard let v = self[column].int64 else { throw unreadable(column, table) }
        return v
    }

    func optionalInt(_ column: String, in table: String) throws -> Int64? {
        let v = self[column]
        if v.isNull { return nil }
        guard let i = v.int64 else { throw unreadable(column, table) }
        return i
    }

    func double(_ column: String, in table: String) throws -> Double {
        guard let v = self[column].double else { throw unreadable(column, table) }
        return v
    }

    func optionalDouble(_ column: String, in table: String) throws -> Double? {
        let v = self[column]
        if v.isNull { return nil }
        guard let d = v.double else { throw unreadable(column, table) }
        return d
    }

    func text(_ column: String, in table: String) throws -> String {
        guard let v = self[column].string else { throw unreadable(column, table) }
        return v
    }

    func optionalText(_ column: String, in table: String) throws -> String? {
        let v = self[column]
        if v.isNull { return nil }
        guard let s = v.string else { throw unreadable(column, table) }
        return s
    }

    func blob(_ column: String, in table: String) throws -> Data {
        guard let v = self[column].bytes else { throw unreadable(column, table) }
        return Data(v)
    }

    func optionalBlob(_ column: String, in table: String) throws -> Data? {
        let v = self[column]
        if v.isNull { return nil }
        guard let b = v.bytes else { throw unreadable(column, table) }
        return Data(b)
    }

    private func unreadable(_ column: String, _ table: String) -> LedgerError {
        .unreadable(table: table, row: self["id"].int64, column: column, value: "\(self[column])")
    }
}

/// Reads a row selected as `id, <the table's columns>` back into its record (PostgreSQL's
/// `RowReader`): a value not of its column's type is kept in `unreadable`, never a trap.
struct PGRowReader: ColumnVisitor {
    let row: PGRow
    var index = 1
    var unreadable: (column: String, value: PGValue)?

    init(_ row: PGRow) { self.row = row }

    private mutating func next() -> PGValue {
        defer { index += 1 }
        return index < row.values.count ? row.values[index] : .null
    }

    private mutating func fail(_ name: StaticString, _ value: PGValue) {
        if unreadable == nil { unreadable = ("\(name)", value) }
    }

    mutating func integer(_ name: StaticString, _ value: inout Int64) {
        let v = next()
        if let i = v.int64 { value = i } else { fail(name, v) }
    }

    mutating func integer(_ name: StaticString, _ value: inout Int) {
        let v = next()
        if let i = v.int64 { value = Int(i) } else { fail(name, v) }
    }

    mutating func integer(_ name: StaticString, _ value: inout Int?) {
        let v = next()
        if v.isNull { value = nil } else if let i = v.int64 { value = Int(i) } else { fail(name, v) }
    }

    mutating func flag(_ name: StaticString, _ value: inout Bool) {
        let v = next()
        if let i = v.int64 { value = i != 0 } else { fail(name, v) }
    }

    mutating func real(_ name: StaticString, _ value: inout Double) {
        let v = next()
        if let d = v.double { value = d } else { fail(name, v) }
    }

    mutating func real(_ name: StaticString, _ value: inout Double?) {
        let v = next()
        if v.isNull { value = nil } else if let d = v.double { value = d } else { fail(name, v) }
    }

    mutating func text(_ name: StaticString, _ value: inout String) {
        let v = next()
        if let s = v.string { value = s } else { fail(name, v) }
    }

    mutating func derived(_ name: StaticString, _ value: Double) { index += 1 }

    mutating func sketch(_ name: StaticString, _ value: inout QuantileSketch) {
        let v = next()
        if let b = v.bytes, let s = SketchCoding.decode(b) { value = s } else { fail(name, v) }
    }
}

extension StoredRow where Record: StoredRecord {
    /// The stored row of a `selectAll` result read from PostgreSQL.
    static func stored(_ row: PGRow) throws -> StoredRow {
        var stored = blank
        var reader = PGRowReader(row)
        stored.visit(&reader)
        stored.rowID = row[0].int64 ?? 0
        if let (column, value) = reader.unreadable {
            throw LedgerError.unreadable(table: table, row: stored.rowID, column: column, value: "\(value)")
        }
        return stored
    }
}

/// Collects a row's columns with their PostgreSQL types, for `CREATE TABLE` (one walk with the
/// inserts and digests, as in SQLite).
struct PGColumnTypes: ColumnVisitor {
    var columns: [String] = []
    private mutating func add(_ name: StaticString, _ type: String) { columns.append("\(name) \(type)") }
    mutating func integer(_ name: StaticString, _ value: inout Int64) { add(name, "bigint NOT NULL") }
    mutating func integer(_ name: StaticString, _ value: inout Int) { add(name, "bigint NOT NULL") }
    mutating func integer(_ name: StaticString, _ value: inout Int?) { add(name, "bigint") }
    mutating func flag(_ name: StaticString, _ value: inout Bool) { add(name, "bigint NOT NULL") }
    mutating func real(_ name: StaticString, _ value: inout Double) { add(name, "double precision NOT NULL") }
    mutating func real(_ name: StaticString, _ value: inout Double?) { add(name, "double precision") }
    mutating func text(_ name: StaticString, _ value: inout String) { add(name, "text NOT NULL") }
    mutating func derived(_ name: StaticString, _ value: Double) { add(name, "double precision NOT NULL") }
    mutating func sketch(_ name: StaticString, _ value: inout QuantileSketch) { add(name, "bytea NOT NULL") }

    static func of<R: StoredRecord>(_: StoredRow<R>.Type) -> [String] {
        var v = PGColumnTypes()
        var row = StoredRow<R>.blank
        row.visit(&v)
        return v.columns
    }
}

/// Writes rows in `COPY … FROM STDIN` text format: tab-separated, `\N` for NULL, reals in their
/// shortest exact form (PostgreSQL reads them back to the same bits), bytea as `\\x` + hex.
struct CopyTextWriter: RowSink {
    var buffer: ByteBuffer
    private var first = true

    init(capacity: Int) { buffer = ByteBufferAllocator().buffer(capacity: capacity) }

    private mutating func separate() {
        if first { first = false } else { buffer.writeInteger(UInt8(ascii: "\t")) }
    }

    mutating func endRow() {
        buffer.writeInteger(UInt8(ascii: "\n"))
        first = true
    }

    mutating func integer(_ value: Int64) {
        separate()
        buffer.writeString(String(value))
    }

    mutating func real(_ value: Double) {
        separate()
        if value.isNaN {
            buffer.writeString("\\N")
        } else if value.isInfinite {
            buffer.writeString(value > 0 ? "Infinity" : "-Infinity")
        } else {
            buffer.writeString(value.description)
        }
    }

    mutating func text(_ value: String) {
        separate()
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): buffer.writeString("\\\\")
            case UInt8(ascii: "\t"): buffer.writeString("\\t")
            case UInt8(ascii: "\n"): buffer.writeString("\\n")
            case UInt8(ascii: "\r"): buffer.writeString("\\r")
            default: buffer.writeInteger(byte)
            }
        }
    }

    mutating func blob(_ value: [UInt8]) {
        separate()
        buffer.writeString("\\\\x")
        let digits: [UInt8] = Array("0123456789abcdef".utf8)
        for b in value {
            buffer.writeInteger(digits[Int(b >> 4)])
            buffer.writeInteger(digits[Int(b & 15)])
        }
    }

    mutating func null() {
        separate()
        buffer.writeString("\\N")
    }
}

/// A batch's rows as one array of the table's row type, in PostgreSQL's binary format, bound to
/// `INSERT INTO t SELECT (x).* FROM unnest($1::t[]) x`: the server reads every value as its bits
/// (no text to parse), from one array (a multi-array `unnest` costs twice as much), and a batch
/// of any size is one statement. Each row is a record: its column count, then per column the
/// type's OID, the value's length (−1 for NULL) and its bytes.
struct RecordArray: ColumnVisitor, PostgresDynamicTypeEncodable {
    let psqlType: PostgresDataType
    var psqlFormat: PostgresFormat { .binary }
    private let rowType: UInt32
    private let columnCount: Int32
    private let elements: RawBytes
    private var count: Int32 = 0
    private var rowStart = 0

    static let int8: Int32 = 20, float8: Int32 = 701, text: Int32 = 25, bytea: Int32 = 17

    /// An empty array of the row type `rowType` (its OID) whose array type is `arrayType`.
    init(rowType: UInt32, arrayType: UInt32, columns: Int, capacity: Int) {
        psqlType = PostgresDataType(arrayType)
        self.rowType = rowType
        columnCount = Int32(columns)
        elements = RawBytes(capacity: capacity)
    }

    /// The rows of `rows`, with ids from `firstID` (nil: each row's own).
    static func of<R: StoredRecord>(_ rows: some Collection<StoredRow<R>>, firstID: Int64?, rowType: UInt32, arrayType: UInt32) -> RecordArray {
        let columns = StoredRow<R>.columnNames.count + 1
        var array = RecordArray(rowType: rowType, arrayType: arrayType, columns: columns, capacity: rows.count * (8 + 16 * columns))
        var next = firstID ?? 0
        for var row in rows {
            var id = firstID == nil ? row.rowID : next
            array.beginRow()
            array.integer("id", &id)
            row.visit(&array)
            array.endRow()
            next += 1
        }
        return array
    }

    private mutating func beginRow() {
        rowStart = elements.count
        elements.put(Int32(0))
        elements.put(columnCount)
    }

    private mutating func endRow() {
        elements.set(Int32(elements.count - rowStart - 4), at: rowStart)
        count += 1
    }

    private func int8(_ v: Int64) {
        elements.put(Self.int8)
        elements.put(Int32(8))
        elements.put(UInt64(bitPattern: v))
    }

    private func float8(_ v: Double) {
        elements.put(Self.float8)
        elements.put(Int32(8))
        elements.put(v.bitPattern)
    }

    private func null(_ type: Int32) {
        elements.put(type)
        elements.put(Int32(-1))
    }

    mutating func integer(_ name: StaticString, _ value: inout Int64) { int8(value) }
    mutating func integer(_ name: StaticString, _ value: inout Int) { int8(Int64(value)) }
    mutating func integer(_ name: StaticString, _ value: inout Int?) { if let value { int8(Int64(value)) } else { null(Self.int8) } }
    mutating func flag(_ name: StaticString, _ value: inout Bool) { int8(value ? 1 : 0) }
    mutating func real(_ name: StaticString, _ value: inout Double) { float8(value) }
    mutating func real(_ name: StaticString, _ value: inout Double?) {
        // NaN is stored NULL, as SQLite stores it (the audit encodes NaN as NULL either way).
        if let value, !value.isNaN { float8(value) } else { null(Self.float8) }
    }
    mutating func derived(_ name: StaticString, _ value: Double) { float8(value) }
    mutating func text(_ name: StaticString, _ value: inout String) {
        let bytes = Array(value.utf8)
        elements.put(Self.text)
        elements.put(Int32(bytes.count))
        elements.put(bytes)
    }
    mutating func sketch(_ name: StaticString, _ value: inout QuantileSketch) {
        let bytes = SketchCoding.encode(value)
        elements.put(Self.bytea)
        elements.put(Int32(bytes.count))
        elements.put(bytes)
    }

    func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        buffer.writeMultipleIntegers(Int32(1), Int32(0), rowType, count, Int32(1))
        buffer.writeBytes(UnsafeRawBufferPointer(start: elements.base, count: elements.count))
    }
}

/// A growable run of bytes written big-endian through a raw pointer: the encoder's hot path
/// (ByteBuffer's checked writes cost ~100 ns a value here).
final class RawBytes: @unchecked Sendable {
    private(set) var base: UnsafeMutableRawPointer
    private var capacity: Int
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 64)
        base = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 8)
    }

    deinit { base.deallocate() }

    private func reserve(_ n: Int) {
        guard count + n > capacity else { return }
        let bigger = max(capacity * 2, count + n)
        let fresh = UnsafeMutableRawPointer.allocate(byteCount: bigger, alignment: 8)
        fresh.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = fresh
        capacity = bigger
    }

    func put(_ v: Int32) {
        reserve(4)
        (base + count).storeBytes(of: v.bigEndian, as: Int32.self)
        count += 4
    }

    func put(_ v: UInt64) {
        reserve(8)
        (base + count).storeBytes(of: v.bigEndian, as: UInt64.self)
        count += 8
    }

    func put(_ bytes: [UInt8]) {
        reserve(bytes.count)
        bytes.withUnsafeBytes { (base + count).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        count += bytes.count
    }

    func set(_ v: Int32, at offset: Int) {
        (base + offset).storeBytes(of: v.bigEndian, as: Int32.self)
    }
}
