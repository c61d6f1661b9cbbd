import Foundation
import MoE
import Units

/// One measured serving configuration (a row of ML.ENERGY's H100 fit file), in Joule's terms.
public struct MeasuredServingRow: Hashable, Sendable {
    /// Where the row came from (`file:line`).
    public var origin: String
    /// The model as the measurement names it (`meta-llama/Llama-3.1-70B-Instruct`).
    public var measuredModel: String
    public var task: String
    /// What Joule runs for it.
    public var request: ServingBenchmark
    /// Mean draw of one GPU, in watts.
    public var gpuPowerWatts: Double
    /// GPU energy of the deployment per output token, in joules.
    public var gpuJoulesPerOutputToken: Double
    /// Median inter-token latency, in seconds.
    public var interTokenLatencySeconds: Double

    public init(
        origin: String, measuredModel: String, task: String, request: ServingBenchmark, gpuPowerWatts: Double,
        gpuJoulesPerOutputToken: Double, interTokenLatencySeconds: Double
    ) {
        self.origin = origin
        self.measuredModel = measuredModel
        self.task = task
        self.request = request
        self.gpuPowerWatts = gpuPowerWatts
        self.gpuJoulesPerOutputToken = gpuJoulesPerOutputToken
        self.interTokenLatencySeconds = interTokenLatencySeconds
    }
}

/// A measured row next to what Joule computes for it.
public struct ServingComparison: Hashable, Sendable {
    public var row: MeasuredServingRow
    public var estimate: ServingEstimate

    /// Relative errors (computed ÷ measured − 1) of GPU power, GPU J/token and inter-token latency.
    public var powerError: Double { estimate.gpuPowerWatts / row.gpuPowerWatts - 1 }
    public var energyError: Double { estimate.gpuJoulesPerOutputToken / row.gpuJoulesPerOutputToken - 1 }
    public var latencyError: Double { estimate.interTokenLatencySeconds / row.interTokenLatencySeconds - 1 }
    /// The largest of the three, in magnitude.
    public var worstError: Double { max(abs(powerError), abs(energyError), abs(latencyError)) }
}

/// Summary statistics of a comparison table.
public struct FitSummary: Hashable, Sendable {
    public var rows: Int
    public var medianPowerError: Double
    public var medianEnergyError: Double
    public var medianLatencyError: Double
    public var worstError: Double
    public var worstRow: String

    public init(_ comparisons: [ServingComparison]) {
        func median(_ xs: [Double]) -> Double {
            let s = xs.sorted()
            guard !s.isEmpty else { return 0 }
            return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        }
        rows = comparisons.count
        medianPowerError = median(comparisons.map { abs($0.powerError) })
        medianEnergyError = median(comparisons.map { abs($0.energyError) })
        medianLatencyError = median(comparisons.map { abs($0.latencyError) })
        let worst = comparisons.max { $0.worstError < $1.worstError }
        worstError = worst?.worstError ?? 0
        worstRow = worst.map { "\($0.row.measuredModel) \($0.row.task) batch \(Int($0.row.request.batch.rounded())) (\($0.row.origin))" } ?? "—"
    }
}

extension SpecLibrary {
    /// Joule's estimate for every measured row.
    public func compare(_ rows: [MeasuredServingRow]) throws -> [ServingComparison] {
        try rows.map { ServingComparison(row: $0, estimate: try estimate($0.request)) }
    }
}
