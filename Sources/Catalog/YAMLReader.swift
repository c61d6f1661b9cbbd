import Accounting
import Hardware
import Yams

/// Reads typed fields out of a YAML mapping, turning every mistake into a `CatalogError` that
/// names the file, the dotted field path and the line.
public struct YAMLReader {
    let file: String
    let node: Node
    let path: String

    /// Parses `text` from `file` into a reader over its top-level mapping.
    public static func parse(_ text: String, file: String) throws -> YAMLReader {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw CatalogError.syntax(file: file, message: "\(error)")
        }
        guard let root, root.mapping != nil else {
            throw CatalogError.invalidField(file: file, field: "(top level)", line: nil, message: "expected a mapping of fields")
        }
        return YAMLReader(file: file, node: root, path: "")
    }

    private func fieldPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
    private var line: Int? { node.mark.map { $0.line } }

    private func value(_ key: String) throws -> Node {
        guard let mapping = node.mapping else {
            throw CatalogError.invalidField(file: file, field: path, line: line, message: "expected a mapping")
        }
        guard let child = mapping[key] else {
            throw CatalogError.invalidField(file: file, field: fieldPath(key), line: line, message: "missing")
        }
        return child
    }

    /// Whether the mapping has `key`.
    public func has(_ key: String) -> Bool { node.mapping?[key] != nil }

    /// The mapping's keys, in file order.
    var keys: [String] { node.mapping?.keys.compactMap(\.string) ?? [] }

    /// A nested mapping.
    public func child(_ key: String) throws -> YAMLReader {
        let child = try value(key)
        guard child.mapping != nil else {
            throw CatalogError.invalidField(file: file, field: fieldPath(key), line: child.mark?.line, message: "expected a mapping")
        }
        return YAMLReader(file: file, node: child, path: fieldPath(key))
    }

    /// The items of a sequence, each as a reader.
    public func items(_ key: String) throws -> [YAMLReader] {
        let child = try value(key)
        guard let sequence = child.sequence else {
            throw CatalogError.invalidField(file: file, field: fieldPath(key), line: child.mark?.line, message: "expected a list")
        }
        return sequence.enumerated().map { YAMLReader(file: file, node: $1, path: "\(fieldPath(key))[\($0)]") }
    }

    /// A string field.
    public func string(_ key: String) throws -> String {
        let child = try value(key)
        guard let s = child.scalar?.string, !s.isEmpty else {
            throw CatalogError.invalidField(file: file, field: fieldPath(key), line: child.mark?.line, message: "expected a non-empty text")
        }
        return s
    }

    /// This node as a number (an item of a list of numbers).
    public func scalarDouble() throws -> Double {
        guard let s = node.scalar?.string, let d = Double(s.replacingOccurrences(of: "_", with: "")), d.isFinite else {
            throw CatalogError.invalidField(file: file, field: path, line: node.mark?.line, message: "expected a number, got '\(node.scalar?.string ?? "a non-scalar")'")
        }
        return d
    }

    /// A number field (integers are accepted).
    public func double(_ key: String) throws -> Double {
        let child = try value(key)
        guard let s = child.scalar?.string, let d = Double(s.replacingOccurrences(of: "_", with: "")), d.isFinite else {
            throw CatalogError.invalidField(
                file: file, field: fieldPath(key), line: child.mark?.line,
                message: "expected a number, got '\(child.scalar?.string ?? "a non-scalar")'"
            )
        }
        return d
    }

    /// A whole-number field.
    public func int(_ key: String) throws -> Int {
        let child = try value(key)
        guard let s = child.scalar?.string, let i = Int(s) else {
            throw CatalogError.invalidField(
                file: file, field: fieldPath(key), line: child.mark?.line,
                message: "expected a whole number, got '\(child.scalar?.string ?? "a non-scalar")'"
            )
        }
        return i
    }

    /// A yes/no field.
    public func bool(_ key: String) throws -> Bool {
        let child = try value(key)
        switch child.scalar?.string.lowercased() {
        case "true", "yes": return true
        case "false", "no": return false
        default:
            throw CatalogError.invalidField(file: file, field: fieldPath(key), line: child.mark?.line, message: "expected true or false")
        }
    }

    /// A field that must be one of `choices`.
    public func choice<T: RawRepresentable>(_ key: String, as: T.Type) throws -> T where T.RawValue == String, T: CaseIterable {
        let raw = try string(key)
        guard let value = T(rawValue: raw) else {
            throw CatalogError.invalidField(
                file: file, field: fieldPath(key), line: try value(key).mark?.line,
                message: "expected one of \(T.allCases.map(\.rawValue).joined(separator: ", ")), got '\(raw)'"
            )
        }
        return value
    }

    /// An attribution policy named by its id.
    public func attributionPolicy(_ key: String) throws -> any AttributionPolicy {
        let raw = try string(key)
        guard let policy = AttributionPolicies.named(raw) else {
            throw CatalogError.invalidField(
                file: file, field: fieldPath(key), line: try value(key).mark?.line,
                message: "expected one of \(AttributionPolicies.all.map(\.id).joined(separator: ", ")), got '\(raw)'"
            )
        }
        return policy
    }

    /// A number field inside an optional mapping, or `nil` when absent.
    public func optionalDouble(_ key: String) throws -> Double? { has(key) ? try double(key) : nil }
    /// A whole-number field, or `nil` when absent.
    public func optionalInt(_ key: String) throws -> Int? { has(key) ? try int(key) : nil }
    /// A text field, or `nil` when absent.
    public func optionalString(_ key: String) throws -> String? { has(key) ? try string(key) : nil }

    /// The line of `key`'s value (or of this mapping).
    public func line(of key: String) -> Int? {
        // A dotted path (`arrivals.cv`) names a field inside a child mapping: its deepest line found.
        var current = node
        var found = line
        for part in key.split(separator: ".") {
            guard let next = current.mapping?[String(part)] else { break }
            found = next.mark?.line ?? found
            current = next
        }
        return found
    }

    /// An error about `key` in this mapping.
    public func error(_ key: String, _ message: String) -> CatalogError {
        CatalogError.invalidField(file: file, field: key.isEmpty ? path : fieldPath(key), line: line(of: key), message: message)
    }

    /// Rejects keys not in `allowed`, so that a misspelt field is an error rather than silently ignored.
    public func onlyKeys(_ allowed: [String]) throws {
        guard let mapping = node.mapping else { return }
        for (key, value) in mapping {
            guard let name = key.scalar?.string else { continue }
            if !allowed.contains(name) {
                throw CatalogError.invalidField(
                    file: file, field: fieldPath(name), line: value.mark?.line ?? key.mark?.line,
                    message: "unknown field; expected one of \(allowed.joined(separator: ", "))"
                )
            }
        }
    }
}

extension String {
    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: Character(target), omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
