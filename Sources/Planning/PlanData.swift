import Foundation
import Yams

/// The planner's data files: the GPU price behind the cost objective and the published quality
/// figures of pruning methods (`Data/planning/`; sources in Data/SOURCES.md).
public struct PlanningData: Hashable, Sendable, Codable {
    public struct Price: Hashable, Sendable, Codable {
        /// Rental of one GPU for an hour, USD (power and cooling included in it).
        public var gpuHourUSD: Double
        public var source: String
    }

    /// What a paper measured for a pruning method at a ratio: cited, never simulated.
    public struct QualityFigure: Hashable, Sendable, Codable {
        /// frequency, router-weighted, top-k or skip (Joule's names for the configurations).
        public var method: String
        /// The share of experts removed (for top-k: experts per token), as the paper states it.
        public var setting: String
        /// Which published method the figure belongs to (it may differ from Joule's ranking).
        public var publishedMethod: String
        /// The model the paper measured (not necessarily the one planned).
        public var model: String
        /// The finding, as the paper reports it.
        public var finding: String
        public var citation: String
        /// Shares of experts removed this figure speaks to (nil: any).
        public var fractions: [Double]?
    }

    public var price: Price
    public var quality: [QualityFigure]

    /// Reads `planning/prices.yaml` and `planning/quality.yaml` under `dataDirectory`.
    public static func load(dataDirectory: String) throws -> PlanningData {
        struct Prices: Codable { var gpuHour: Price }
        struct Quality: Codable { var figures: [QualityFigure] }
        func read<T: Decodable>(_ name: String, as type: T.Type) throws -> T {
            let path = dataDirectory + "/planning/" + name
            let text: String
            do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
                throw PlanInputError(path, "cannot read the planner's data file (\(error.localizedDescription))")
            }
            do { return try YAMLDecoder().decode(T.self, from: text) } catch {
                throw PlanInputError(path, "not a valid planning file: \(error)")
            }
        }
        let prices = try read("prices.yaml", as: Prices.self)
        guard prices.gpuHour.gpuHourUSD.isFinite, prices.gpuHour.gpuHourUSD > 0 else {
            throw PlanInputError(dataDirectory + "/planning/prices.yaml", "gpuHour.gpuHourUSD: expected a positive price, got \(prices.gpuHour.gpuHourUSD)")
        }
        return PlanningData(price: prices.gpuHour, quality: try read("quality.yaml", as: Quality.self).figures)
    }

    /// The published figures that speak to `choice`.
    public func quality(for choice: PruningChoice) -> [QualityFigure] {
        let method = choice.expertsPerToken != nil ? "top-k" : choice.skipBelowFractionOfTop != nil ? "skip" : choice.ranking.rawValue
        return quality.filter { q in
            q.method == method && (q.fractions.map { $0.contains { abs($0 - choice.prunedFraction) < 1e-9 } } ?? true)
        }
    }
}
