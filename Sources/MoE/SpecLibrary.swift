import Hardware

/// An identifier that names nothing known; lists what is available.
public struct UnknownSpecError: Error, Hashable, CustomStringConvertible {
    /// What kind of thing was asked for (`model`, `hardware`, `site`).
    public var kind: String
    /// The identifier asked for.
    public var id: String
    /// The identifiers that exist, sorted.
    public var available: [String]

    /// Creates the error.
    public init(kind: String, id: String, available: [String]) {
        self.kind = kind
        self.id = id
        self.available = available
    }

    public var description: String { "unknown \(kind) '\(id)'; available: \(available.joined(separator: ", "))" }
}

/// Every spec Joule knows, by identifier: the values the loader read from `Data/`.
public struct SpecLibrary: Sendable {
    /// GPU models by id.
    public var gpus: [String: GPUSpec]
    /// Node types by id (what `--hardware` names).
    public var nodes: [String: NodeSpec]
    /// Sites by id.
    public var sites: [String: SiteSpec]
    /// Models by id.
    public var models: [String: ModelArchitecture]
    /// Serving defaults.
    public var serving: ServingDefaults

    /// Creates a library.
    public init(gpus: [String: GPUSpec], nodes: [String: NodeSpec], sites: [String: SiteSpec], models: [String: ModelArchitecture], serving: ServingDefaults) {
        self.gpus = gpus
        self.nodes = nodes
        self.sites = sites
        self.models = models
        self.serving = serving
    }

    private static func lookup<T>(_ table: [String: T], _ id: String, kind: String) throws -> T {
        if let value = table[id] { return value }
        throw UnknownSpecError(kind: kind, id: id, available: table.keys.sorted())
    }

    /// The model `id`, or an error listing the models available.
    public func model(_ id: String) throws -> ModelArchitecture { try Self.lookup(models, id, kind: "model") }
    /// The node type `id` (`--hardware`), or an error listing those available.
    public func node(_ id: String) throws -> NodeSpec { try Self.lookup(nodes, id, kind: "hardware") }
    /// The GPU `id`, or an error listing those available.
    public func gpu(_ id: String) throws -> GPUSpec { try Self.lookup(gpus, id, kind: "GPU") }
    /// The site `id`, or an error listing those available.
    public func site(_ id: String) throws -> SiteSpec { try Self.lookup(sites, id, kind: "site") }
}

extension SpecLibrary {
    /// The library with `fitted` in place of the coefficients it was loaded with: every GPU takes
    /// its family's values (at its own power scale), every node its GPU, the serving defaults the
    /// step overhead. GPUs of a family `fitted` does not name keep theirs.
    public func applying(_ fitted: FittedParameters) -> SpecLibrary {
        var copy = self
        for (id, gpu) in gpus {
            if let g = fitted.apply(to: gpu, family: gpu.family, powerScale: gpu.powerScale) { copy.gpus[id] = g }
        }
        for (id, node) in nodes {
            if let g = fitted.apply(to: node.gpu, family: node.gpu.family, powerScale: node.gpu.powerScale) { copy.nodes[id]?.gpu = g }
        }
        copy.serving.engine = fitted.engine
        return copy
    }
}
