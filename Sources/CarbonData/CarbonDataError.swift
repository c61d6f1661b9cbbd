import Accounting
/// Why a carbon-intensity file or response cannot be read. Every case names where.
public enum CarbonDataError: Error, Hashable, CustomStringConvertible {
    /// The text is not the format's syntax (not JSON, no header).
    case syntax(file: String, message: String)
    /// A point lacks a field or has a bad value; `index` counts from 1 (data rows, or CSV lines).
    case invalidPoint(file: String, index: Int, field: String, message: String)
    /// Points out of time order, or two at the same time.
    case unordered(file: String, index: Int, message: String)
    case empty(file: String)

    public var description: String {
        switch self {
        case .syntax(let file, let message): return "\(file): \(message)"
        case .invalidPoint(let file, let index, let field, let message): return "\(file): point \(index), field '\(field)': \(message)"
        case .unordered(let file, let index, let message): return "\(file): point \(index): \(message)"
        case .empty(let file): return "\(file): no points"
        }
    }
}
