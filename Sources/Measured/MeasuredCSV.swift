import CarbonData

/// The walk every measured CSV reader shares: blank lines skipped, the first line a header of
/// named columns (in any order, more allowed), every later line one row that must reach the last
/// named column. A row's `MeasuredInputError` stops the read, or with `skipBadLines` becomes a
/// `skipped-line` issue and the read goes on.
struct MeasuredCSV {
    /// Column indices by name.
    let columns: [String: Int]
    let fields: [String]
    let line: Int
    let file: String

    /// The named column's text.
    subscript(_ name: String) -> String { fields[columns[name]!] }
    /// The named column's text, when the header has it.
    func optional(_ name: String) -> String? { columns[name].map { fields[$0] } }

    func error(_ field: String?, _ message: String) -> MeasuredInputError { MeasuredInputError(file: file, line: line, field: field, message) }

    /// Reads `text`. `name` turns a header field into its column's name; `header` checks the
    /// names (the column index) and says what it wants when they fall short; `row` reads one line. Throws when there is no header at all.
    static func read(
        _ text: String, file: String, skipBadLines: Bool, issues: inout [MeasuredIssue], emptyMessage: String,
        name: (String) -> String = { $0 }, header: (_ names: [String: Int], _ line: String) -> String?, row: (MeasuredCSV) throws -> Void
    ) throws {
        var columns: [String: Int]? = nil
        var lineNumber = 0
        for raw in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { continue }
            let fields = CSVLine.fields(line)
            guard let cols = columns else {
                var names: [String: Int] = [:]
                for (i, f) in fields.enumerated() { names[name(f)] = i }
                if let problem = header(names, line) { throw MeasuredInputError(file: file, line: lineNumber, field: "header", problem) }
                columns = names
                continue
            }
            do {
                let needed = (cols.values.max() ?? 0) + 1
                guard fields.count >= needed else { throw MeasuredInputError(file: file, line: lineNumber, "expected \(needed) columns, got \(fields.count)") }
                try row(MeasuredCSV(columns: cols, fields: fields, line: lineNumber, file: file))
            } catch let error as MeasuredInputError where skipBadLines {
                issues.append(MeasuredIssue(.skippedLine, "\(error)"))
            }
        }
        guard columns != nil else { throw MeasuredInputError(file: file, emptyMessage) }
    }
}
