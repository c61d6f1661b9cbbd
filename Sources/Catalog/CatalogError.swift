import Hardware

/// Why a data file or catalog lookup failed. Every case names the file (and field and line where known).
public enum CatalogError: Error, Equatable, CustomStringConvertible {
    /// The data directory could not be found.
    case dataDirectoryNotFound(searched: [String])
    /// A file could not be read.
    case unreadable(file: String, reason: String)
    /// A file is not valid YAML.
    case syntax(file: String, message: String)
    /// A field is missing, of the wrong type or out of range.
    case invalidField(file: String, field: String, line: Int?, message: String)
    /// A spec failed validation; every problem is listed.
    case invalidSpec(file: String, problems: [SpecProblem])
    /// An identifier names nothing in the catalog.
    case unknown(kind: String, id: String, available: [String])
    /// Two files declare the same identifier.
    case duplicate(kind: String, id: String, files: [String])

    public var description: String {
        switch self {
        case .dataDirectoryNotFound(let searched):
            return "cannot find Joule's Data directory (looked in: \(searched.joined(separator: ", "))); pass --data DIR or set JOULE_DATA"
        case .unreadable(let file, let reason):
            return "\(file): cannot read: \(reason)"
        case .syntax(let file, let message):
            return "\(file): not valid YAML: \(message)"
        case .invalidField(let file, let field, let line, let message):
            let at = line.map { ":\($0)" } ?? ""
            return "\(file)\(at): field '\(field)': \(message)"
        case .invalidSpec(let file, let problems):
            return problems.map { "\(file): field '\($0.field)': \($0.message)" }.joined(separator: "\n")
        case .unknown(let kind, let id, let available):
            return "unknown \(kind) '\(id)'; available: \(available.joined(separator: ", "))"
        case .duplicate(let kind, let id, let files):
            return "\(kind) '\(id)' is declared twice: \(files.joined(separator: " and "))"
        }
    }
}
