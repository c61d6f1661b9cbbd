import Accounting

/// A model's training footprint spread over the tokens it serves in its service life: each
/// served request carries its tokens' share. Kept apart from SCI's operational and embodied terms.
public struct TrainingAmortisation: Hashable, Sendable {
    /// The training plan (`Data/training/<id>.yaml`) the footprint comes from.
    public var plan: String
    /// Tokens (prompt and output) the model serves over its life.
    public var servedTokens: Double
    /// The service life those tokens span, in months (for the record; the shares follow tokens).
    public var lifeMonths: Double?
    /// Grid region the training's carbon is counted at, and its intensity.
    public var grid: String
    public var gramsPerKWh: Double
    /// The whole footprint: facility energy, carbon, GPU-hours.
    public var facilityJoules: Double
    public var carbonGrams: Double
    public var gpuHours: Double

    public init(plan: String, servedTokens: Double, lifeMonths: Double?, grid: String, gramsPerKWh: Double, facilityJoules: Double, gpuHours: Double) {
        self.plan = plan
        self.servedTokens = servedTokens
        self.lifeMonths = lifeMonths
        self.grid = grid
        self.gramsPerKWh = gramsPerKWh
        self.facilityJoules = facilityJoules
        self.carbonGrams = facilityJoules / 3.6e6 * gramsPerKWh
        self.gpuHours = gpuHours
    }

    /// The share of `tokens` served tokens.
    public func share(tokens: Double) -> TrainingShare {
        let f = tokens / servedTokens
        return TrainingShare(tokens: tokens, facilityJoules: facilityJoules * f, carbonGrams: carbonGrams * f, gpuSeconds: gpuHours * 3600 * f)
    }
}

