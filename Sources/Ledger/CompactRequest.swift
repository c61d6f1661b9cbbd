import GRDB
import GRDBSQLite
import Accounting
import Serving

/// A run's constants that a stored request's derivable figures are predicted from (schema v9,
/// the `requestCoding` table, one row per run with requests).
///
/// Learned from the run's first batch: a run charges one embodied rate and one training share per
/// token, and its arrivals are seconds after one start. A figure is stored as the difference
/// between its bit pattern and its prediction's (`CompactRequest`): exact for every value, and a
/// byte or none where the prediction holds to a few units in the last place, which it does for
/// every row the simulator writes.
package struct RequestCoding: Hashable, Sendable {
    var startEpochSeconds: Double
    /// The grid intensity of the run's first request: later ones differ by the grid's changes.
    var intensityGramsPerKWh: Double
    var embodiedGramsPerGPUSecond: Double
    var trainingJoulesPerToken: Double
    var trainingGramsPerToken: Double
    var trainingGPUSecondsPerToken: Double

    static let table = "requestCoding"
    static let zero = RequestCoding(
        startEpochSeconds: 0, intensityGramsPerKWh: 0, embodiedGramsPerGPUSecond: 0,
        trainingJoulesPerToken: 0, trainingGramsPerToken: 0, trainingGPUSecondsPerToken: 0
    )

    /// The constants of a run whose first records are `records`.
    package static func learned(from records: some Sequence<RequestRecord>, startEpochSeconds: Double) -> RequestCoding {
        var c = RequestCoding.zero
        c.startEpochSeconds = startEpochSeconds
        var intensity = false, embodied = false, training = false
        for r in records {
            if !intensity {
                c.intensityGramsPerKWh = r.intensityGramsPerKWh
                intensity = true
            }
            if !embodied, r.gpuSeconds > 0, r.gpuSeconds.isFinite, r.embodiedCarbonGrams.isFinite {
                c.embodiedGramsPerGPUSecond = r.embodiedCarbonGrams / r.gpuSeconds
                embodied = true
            }
            if !training, let t = r.training, t.tokens > 0, t.tokens.isFinite {
                c.trainingJoulesPerToken = t.facilityJoules / t.tokens
                c.trainingGramsPerToken = t.carbonGrams / t.tokens
                c.trainingGPUSecondsPerToken = t.gpuSeconds / t.tokens
                training = true
            }
            if intensity && embodied && training { break }
        }
        return c
    }

    /// Run `id`'s constants; zero for a run without any (a row then stores its figures whole).
    static func fetch(run id: Int64, _ db: Database) throws -> RequestCoding? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM requestCoding WHERE runId = ?", arguments: [id]) else { return nil }
        let t = table
        return RequestCoding(
            startEpochSeconds: try row.value("startEpochSeconds", in: t), intensityGramsPerKWh: try row.value("intensityGramsPerKWh", in: t),
            embodiedGramsPerGPUSecond: try row.value("embodiedGramsPerGPUSecond", in: t),
            trainingJoulesPerToken: try row.value("trainingJoulesPerToken", in: t), trainingGramsPerToken: try row.value("trainingGramsPerToken", in: t),
            trainingGPUSecondsPerToken: try row.value("trainingGPUSecondsPerToken", in: t)
        )
    }

    func insert(run id: Int64, _ db: Database) throws {
        try db.execute(sql: """
            INSERT INTO requestCoding (runId, startEpochSeconds, intensityGramsPerKWh, embodiedGramsPerGPUSecond,
                trainingJoulesPerToken, trainingGramsPerToken, trainingGPUSecondsPerToken) VALUES (?, ?, ?, ?, ?, ?, ?)
            """, arguments: [id, startEpochSeconds, intensityGramsPerKWh, embodiedGramsPerGPUSecond,
                             trainingJoulesPerToken, trainingGramsPerToken, trainingGPUSecondsPerToken])
    }
}

/// The difference between `actual`'s bit pattern and `predicted`'s, as a signed integer: SQLite
/// stores 0 and 1 in no bytes and small ones in one. `restore` inverts it exactly, whatever the
/// values (it is arithmetic modulo 2⁶⁴ on the patterns).
@inline(__always) func residual(_ actual: Double, _ predicted: Double) -> Int64 {
    Int64(bitPattern: actual.bitPattern &- predicted.bitPattern)
}

@inline(__always) func restore(_ predicted: Double, _ residual: Int64) -> Double {
    Double(bitPattern: predicted.bitPattern &+ UInt64(bitPattern: residual))
}

/// A request row as the `request` table stores it since schema v9: the record's measured figures
/// as they are, and each figure derivable from them and the run's `RequestCoding` as a residual
/// from its derivation:
/// - `arrivalEpochSeconds`: the run's start + arrival;
/// - `facilityOverheadJoules`: facility − (GPU active + GPU idle + host);
/// - `intensityGramsPerKWh`: the run's first intensity;
/// - `operationalCarbonGrams`: facility kWh × intensity;
/// - `embodiedCarbonGrams`: GPU-seconds × the run's embodied rate;
/// - `meanPowerWatts`: facility ÷ (finish − arrival) when finished, else 0;
/// - the training share: tokens × the run's share per token.
///
/// Readers see only `RequestRow`, the record with every figure; the audit digests cover those
/// figures, so a residual or a coding edited outside Joule shows as a changed row.
package struct CompactRequest {
    package var runID: Int64 = 0
    package var requestId: Int = 0
    package var inFlight = false
    package var arrival = 0.0
    package var prefillStart: Double?
    package var firstToken: Double?
    package var finish: Double?
    package var prefillUnit: Int?
    package var decodeUnit: Int?
    package var promptTokens = 0
    package var cachedTokens = 0
    package var outputTokens = 0
    package var gpuActiveJoules = 0.0
    package var gpuIdleJoules = 0.0
    package var hostJoules = 0.0
    package var facilityJoules = 0.0
    package var gpuSeconds = 0.0
    package var arrivalEpochResidual: Int64 = 0
    package var facilityOverheadResidual: Int64 = 0
    package var intensityResidual: Int64 = 0
    package var operationalCarbonResidual: Int64 = 0
    package var embodiedCarbonResidual: Int64 = 0
    package var meanPowerResidual: Int64 = 0
    package var trainingTokens: Double?
    package var trainingFacilityResidual: Int?
    package var trainingCarbonResidual: Int?
    package var trainingGPUSecondsResidual: Int?

    static let table = "request"

    /// The stored columns after `id`, in schema order.
    mutating func visit<V: ColumnVisitor>(_ v: inout V) {
        v.integer("runId", &runID)
        v.integer("requestId", &requestId)
        v.flag("inFlight", &inFlight)
        v.real("arrivalSeconds", &arrival)
        v.real("prefillStartSeconds", &prefillStart)
        v.real("firstTokenSeconds", &firstToken)
        v.real("finishSeconds", &finish)
        v.integer("prefillUnit", &prefillUnit)
        v.integer("decodeUnit", &decodeUnit)
        v.integer("promptTokens", &promptTokens)
        v.integer("cachedTokens", &cachedTokens)
        v.integer("outputTokens", &outputTokens)
        v.real("gpuActiveJoules", &gpuActiveJoules)
        v.real("gpuIdleJoules", &gpuIdleJoules)
        v.real("hostJoules", &hostJoules)
        v.real("facilityJoules", &facilityJoules)
        v.real("gpuSeconds", &gpuSeconds)
        v.integer("arrivalEpochResidual", &arrivalEpochResidual)
        v.integer("facilityOverheadResidual", &facilityOverheadResidual)
        v.integer("intensityResidual", &intensityResidual)
        v.integer("operationalCarbonResidual", &operationalCarbonResidual)
        v.integer("embodiedCarbonResidual", &embodiedCarbonResidual)
        v.integer("meanPowerResidual", &meanPowerResidual)
        v.real("trainingTokens", &trainingTokens)
        v.integer("trainingFacilityResidual", &trainingFacilityResidual)
        v.integer("trainingCarbonResidual", &trainingCarbonResidual)
        v.integer("trainingGPUSecondsResidual", &trainingGPUSecondsResidual)
    }

    package static let columns: [String] = {
        var names = NameCollector()
        var blank = CompactRequest()
        blank.visit(&names)
        return names.names
    }()

    /// `SELECT id, <stored columns> FROM request`, for `RequestReader`.
    static let selectAll = "SELECT id, \(columns.joined(separator: ", ")) FROM request"
    static let insertSQL = Ledger.insertSQL(table: table, columns: columns)

    // The derivations, from the measured figures (in the order a reader restores them).
    static func arrivalEpoch(_ r: RequestRecord, _ c: RequestCoding) -> Double { c.startEpochSeconds + r.arrival }
    static func overhead(_ r: RequestRecord) -> Double { r.facilityJoules - ((r.gpuActiveJoules + r.gpuIdleJoules) + r.hostJoules) }
    static func operationalCarbon(_ r: RequestRecord) -> Double { r.facilityJoules / 3.6e6 * r.intensityGramsPerKWh }
    static func embodied(_ r: RequestRecord, _ c: RequestCoding) -> Double { r.gpuSeconds * c.embodiedGramsPerGPUSecond }
    static func meanPower(_ r: RequestRecord) -> Double {
        guard !r.inFlight, let finish = r.finish else { return 0 }
        let lifetime = finish - r.arrival
        return lifetime > 0 ? r.facilityJoules / lifetime : 0
    }

    package init() {}

    /// The stored form of `row` under its run's `coding`.
    package init(_ row: RequestRow, coding c: RequestCoding) {
        let r = row.record
        runID = row.runID
        requestId = r.id
        inFlight = r.inFlight
        arrival = r.arrival
        prefillStart = r.prefillStart
        firstToken = r.firstToken
        finish = r.finish
        prefillUnit = r.prefillUnit
        decodeUnit = r.decodeUnit
        promptTokens = r.promptTokens
        cachedTokens = r.cachedTokens
        outputTokens = r.outputTokens
        gpuActiveJoules = r.gpuActiveJoules
        gpuIdleJoules = r.gpuIdleJoules
        hostJoules = r.hostJoules
        facilityJoules = r.facilityJoules
        gpuSeconds = r.gpuSeconds
        arrivalEpochResidual = residual(row.epochSeconds, Self.arrivalEpoch(r, c))
        facilityOverheadResidual = residual(r.facilityOverheadJoules, Self.overhead(r))
        intensityResidual = residual(r.intensityGramsPerKWh, c.intensityGramsPerKWh)
        operationalCarbonResidual = residual(r.operationalCarbonGrams, Self.operationalCarbon(r))
        embodiedCarbonResidual = residual(r.embodiedCarbonGrams, Self.embodied(r, c))
        meanPowerResidual = residual(r.meanPowerWatts, Self.meanPower(r))
        if let t = r.training {
            trainingTokens = t.tokens
            trainingFacilityResidual = Int(residual(t.facilityJoules, t.tokens * c.trainingJoulesPerToken))
            trainingCarbonResidual = Int(residual(t.carbonGrams, t.tokens * c.trainingGramsPerToken))
            trainingGPUSecondsResidual = Int(residual(t.gpuSeconds, t.tokens * c.trainingGPUSecondsPerToken))
        }
    }

    /// The row with every figure, restored under its run's `coding`.
    func restored(rowID: Int64, coding c: RequestCoding) -> RequestRow {
        var r = RequestRecord(
            id: requestId, inFlight: inFlight, arrival: arrival, prefillStart: prefillStart, firstToken: firstToken, finish: finish,
            prefillUnit: prefillUnit, decodeUnit: decodeUnit, promptTokens: promptTokens, cachedTokens: cachedTokens,
            outputTokens: outputTokens, gpuActiveJoules: gpuActiveJoules, gpuIdleJoules: gpuIdleJoules, hostJoules: hostJoules,
            facilityOverheadJoules: 0, facilityJoules: facilityJoules, gpuSeconds: gpuSeconds, intensityGramsPerKWh: 0,
            operationalCarbonGrams: 0, embodiedCarbonGrams: 0, meanPowerWatts: 0
        )
        r.facilityOverheadJoules = restore(Self.overhead(r), facilityOverheadResidual)
        r.intensityGramsPerKWh = restore(c.intensityGramsPerKWh, intensityResidual)
        r.operationalCarbonGrams = restore(Self.operationalCarbon(r), operationalCarbonResidual)
        r.embodiedCarbonGrams = restore(Self.embodied(r, c), embodiedCarbonResidual)
        r.meanPowerWatts = restore(Self.meanPower(r), meanPowerResidual)
        if let tokens = trainingTokens {
            r.training = TrainingShare(
                tokens: tokens,
                facilityJoules: restore(tokens * c.trainingJoulesPerToken, Int64(trainingFacilityResidual ?? 0)),
                carbonGrams: restore(tokens * c.trainingGramsPerToken, Int64(trainingCarbonResidual ?? 0)),
                gpuSeconds: restore(tokens * c.trainingGPUSecondsPerToken, Int64(trainingGPUSecondsResidual ?? 0))
            )
        }
        return RequestRow(rowID: rowID, runID: runID, epochSeconds: restore(Self.arrivalEpoch(r, c), arrivalEpochResidual), record: r)
    }
}

/// Reads `request` rows selected by `CompactRequest.selectAll` into `RequestRow`s, with each
/// run's coding read once.
struct RequestReader {
    let db: Database
    private var codings: [Int64: RequestCoding] = [:]

    init(_ db: Database) { self.db = db }

    mutating func coding(run id: Int64) throws -> RequestCoding {
        if let c = codings[id] { return c }
        let c = try RequestCoding.fetch(run: id, db) ?? .zero
        codings[id] = c
        return c
    }

    /// The row of a `CompactRequest.selectAll` result; `LedgerError.unreadable` for a value not of
    /// its column's type.
    mutating func row(_ row: Row) throws -> RequestRow {
        var stored = CompactRequest()
        var reader = RowReader(row)
        stored.visit(&reader)
        let id: Int64 = row[0]
        if let (column, value) = reader.unreadable {
            throw LedgerError.unreadable(table: CompactRequest.table, row: id, column: column, value: "\(value)")
        }
        return stored.restored(rowID: id, coding: try coding(run: stored.runID))
    }

    /// Each row a query selecting `CompactRequest.selectAll` returns, in order: read from SQLite's
    /// statement column by column, each value checked against its column's type.
    mutating func forEach(sql: String, arguments: StatementArguments = StatementArguments(), _ body: (RequestRow) throws -> Void) throws {
        let statement = try db.cachedStatement(sql: sql)
        try statement.setArguments(arguments)
        let s = statement.sqliteStatement
        defer { sqlite3_reset(s) }
        while true {
            let code = sqlite3_step(s)
            if code == SQLITE_DONE { return }
            guard code == SQLITE_ROW else {
                throw DatabaseError(resultCode: ResultCode(rawValue: code), message: db.lastErrorMessage, sql: sql)
            }
            var stored = CompactRequest()
            var reader = StatementReader(statement: s)
            stored.visit(&reader)
            let id = sqlite3_column_int64(s, 0)
            if let (column, index) = reader.unreadable {
                throw LedgerError.unreadable(table: CompactRequest.table, row: id, column: column, value: "\(DatabaseValue(sqliteStatement: s, index: index))")
            }
            try body(stored.restored(rowID: id, coding: try coding(run: stored.runID)))
        }
    }

    /// Every row a query selecting `CompactRequest.selectAll` returns.
    mutating func fetchAll(sql: String, arguments: StatementArguments = StatementArguments()) throws -> [RequestRow] {
        var out: [RequestRow] = []
        try forEach(sql: sql, arguments: arguments) { out.append($0) }
        return out
    }
}

/// Reads a row of a stepped SQLite statement (`id` first, then the visited columns) by SQLite's
/// own type of each value: an integer column takes an integer (or a whole real), a real column a
/// real or an integer, a nullable one NULL too. Anything else (text where a number belongs: a
/// row edited outside Joule) is not read: the first such column is kept in `unreadable`.
struct StatementReader: ColumnVisitor {
    let statement: SQLiteStatement
    var index: Int32 = 1
    var unreadable: (column: String, index: Int32)?

    private mutating func next() -> Int32 {
        defer { index += 1 }
        return index
    }

    private mutating func fail(_ name: StaticString, _ i: Int32) {
        if unreadable == nil { unreadable = ("\(name)", i) }
    }

    private mutating func int64(_ name: StaticString, nullable: Bool) -> Int64?? {
        let i = next()
        switch sqlite3_column_type(statement, i) {
        case SQLITE_INTEGER: return .some(sqlite3_column_int64(statement, i))
        case SQLITE_FLOAT:
            let v = sqlite3_column_double(statement, i)
            if let exact = Int64(exactly: v) { return .some(exact) }
        case SQLITE_NULL where nullable: return .some(nil)
        default: break
        }
        fail(name, i)
        return nil
    }

    private mutating func double(_ name: StaticString, nullable: Bool) -> Double?? {
        let i = next()
        switch sqlite3_column_type(statement, i) {
        case SQLITE_FLOAT, SQLITE_INTEGER: return .some(sqlite3_column_double(statement, i))
        case SQLITE_NULL where nullable: return .some(nil)
        default:
            fail(name, i)
            return nil
        }
    }

    mutating func integer(_ name: StaticString, _ value: inout Int64) {
        if case .some(.some(let v)) = int64(name, nullable: false) { value = v }
    }
    mutating func integer(_ name: StaticString, _ value: inout Int) {
        if case .some(.some(let v)) = int64(name, nullable: false) { value = Int(v) }
    }
    mutating func integer(_ name: StaticString, _ value: inout Int?) {
        if case .some(let v) = int64(name, nullable: true) { value = v.map(Int.init) }
    }
    mutating func flag(_ name: StaticString, _ value: inout Bool) {
        if case .some(.some(let v)) = int64(name, nullable: false) { value = v != 0 }
    }
    mutating func real(_ name: StaticString, _ value: inout Double) {
        if case .some(.some(let v)) = double(name, nullable: false) { value = v }
    }
    mutating func real(_ name: StaticString, _ value: inout Double?) {
        if case .some(let v) = double(name, nullable: true) { value = v }
    }
    mutating func text(_ name: StaticString, _ value: inout String) {
        let i = next()
        guard sqlite3_column_type(statement, i) == SQLITE_TEXT, let c = sqlite3_column_text(statement, i) else { return fail(name, i) }
        value = String(cString: c)
    }
    mutating func derived(_ name: StaticString, _ value: Double) { index += 1 }
    mutating func sketch(_ name: StaticString, _ value: inout QuantileSketch) {
        let i = next()
        let count = Int(sqlite3_column_bytes(statement, i))
        guard sqlite3_column_type(statement, i) == SQLITE_BLOB, let bytes = sqlite3_column_blob(statement, i),
              let sketch = SketchCoding.decode([UInt8](UnsafeRawBufferPointer(start: bytes, count: count))) else { return fail(name, i) }
        value = sketch
    }
}
