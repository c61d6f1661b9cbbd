/// One thing wrong with a specification: which field, and what was expected.
///
/// Validation collects every problem at once; the loader that read the file adds the file name.
public struct SpecProblem: Hashable, Sendable, CustomStringConvertible {
    /// The dotted path of the offending field, e.g. `power.idleWatts`.
    public var field: String
    /// What was wrong and what was expected.
    public var message: String

    /// Creates a problem for `field`.
    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    public var description: String { "\(field): \(message)" }
}

/// Helpers that spec types use to check their fields.
public struct SpecChecker: Sendable {
    /// Problems found so far.
    public private(set) var problems: [SpecProblem] = []
    private let prefix: String

    /// Creates a checker whose field names start with `prefix` (empty for the top level).
    public init(prefix: String = "") { self.prefix = prefix }

    private func path(_ field: String) -> String { prefix.isEmpty ? field : "\(prefix).\(field)" }

    /// Requires `value` to be finite and strictly positive.
    public mutating func positive(_ value: Double, _ field: String) {
        if !(value.isFinite && value > 0) {
            problems.append(SpecProblem(field: path(field), message: "expected a positive number, got \(value)"))
        }
    }

    /// Requires `value` to be strictly positive.
    public mutating func positive(_ value: Int, _ field: String) {
        if value <= 0 {
            problems.append(SpecProblem(field: path(field), message: "expected a positive whole number, got \(value)"))
        }
    }

    /// Requires `value` to be finite and not negative.
    public mutating func nonNegative(_ value: Double, _ field: String) {
        if !(value.isFinite && value >= 0) {
            problems.append(SpecProblem(field: path(field), message: "expected zero or a positive number, got \(value)"))
        }
    }

    /// Requires `value` to be zero or more.
    public mutating func nonNegative(_ value: Int, _ field: String) {
        if value < 0 {
            problems.append(SpecProblem(field: path(field), message: "expected zero or a positive whole number, got \(value)"))
        }
    }

    /// Requires `value` to lie in `range`.
    public mutating func within(_ value: Double, _ range: ClosedRange<Double>, _ field: String) {
        if !(value.isFinite && range.contains(value)) {
            problems.append(SpecProblem(
                field: path(field),
                message: "expected a number from \(range.lowerBound) to \(range.upperBound), got \(value)"
            ))
        }
    }

    /// Records a problem when `condition` is false.
    public mutating func require(_ condition: Bool, _ field: String, _ message: @autoclosure () -> String) {
        if !condition { problems.append(SpecProblem(field: path(field), message: message())) }
    }

    /// Adds problems found by a nested checker.
    public mutating func merge(_ other: [SpecProblem]) { problems.append(contentsOf: other) }
}
