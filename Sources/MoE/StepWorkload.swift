/// The phase of serving a batch step is in.
public enum ServingPhase: String, CaseIterable, Codable, Hashable, Sendable {
    /// Computing the prompt: many tokens per sequence, compute-heavy.
    case prefill
    /// Generating one token per sequence: memory-bound.
    case decode
}

/// What one GPU (one attention data-parallel rank) computes in one batch step.
public struct StepWorkload: Hashable, Sendable {
    /// The phase.
    public var phase: ServingPhase
    /// Sequences in the step on this GPU.
    public var sequences: Double
    /// Tokens computed on this GPU in the step (decode: one per sequence; prefill: the uncached prompt tokens).
    public var computedTokens: Double
    /// Prompt tokens served from the prefix cache on this GPU in the step (prefill only).
    public var cachedTokens: Double
    /// Mean context per sequence: decode, the KV length attended; prefill, the full prompt length.
    public var meanContext: Double
    /// The busiest attention rank's tokens over the mean rank's (≥ 1): a step holding fewer
    /// sequences than ranks, or whole prompts that do not split evenly, loads one rank more.
    public var busiestRankFactor: Double = 1
    /// Prefill chunks computed in the same forward pass as a decode step (chunked prefill, as
    /// vLLM and SGLang run it): linear layers see both, attention runs one core for each.
    public var mixedPrefill: MixedPrefill?

    /// Prefill work carried in a decode step, per GPU.
    public struct MixedPrefill: Hashable, Sendable {
        /// Prompt chunks (fractional: an average over steps).
        public var sequences: Double
        /// Prompt tokens computed.
        public var computedTokens: Double
        /// Tokens already in the KV cache before those computed.
        public var cachedTokens: Double

        public init(sequences: Double, computedTokens: Double, cachedTokens: Double) {
            self.sequences = sequences
            self.computedTokens = computedTokens
            self.cachedTokens = cachedTokens
        }

        /// Mean positions each computed token attends to (causal, after its cached prefix).
        public var meanAttendedPositions: Double {
            guard sequences > 0 else { return 0 }
            return cachedTokens / sequences + (computedTokens / sequences + 1) / 2
        }
    }

    /// Creates a workload from its parts (the simulator's chunked prefill steps use this directly).
    public init(
        phase: ServingPhase, sequences: Double, computedTokens: Double, cachedTokens: Double, meanContext: Double,
        busiestRankFactor: Double = 1, mixedPrefill: MixedPrefill? = nil
    ) {
        self.phase = phase
        self.sequences = sequences
        self.computedTokens = computedTokens
        self.cachedTokens = cachedTokens
        self.meanContext = meanContext
        self.busiestRankFactor = max(1, busiestRankFactor)
        self.mixedPrefill = mixedPrefill
    }

    /// Tokens through the linear layers on one GPU: computed tokens plus any mixed-in prefill.
    public var linearTokens: Double { computedTokens + (mixedPrefill?.computedTokens ?? 0) }

    /// A decode step of `sequences` sequences per GPU with mean KV length `context`. A fractional
    /// batch means some ranks hold one sequence more: the busiest holds the batch rounded up.
    public static func decode(sequences: Double, context: Double) -> StepWorkload {
        let busiest = sequences > 0 ? sequences.rounded(.up) / sequences : 1
        return StepWorkload(
            phase: .decode, sequences: sequences, computedTokens: sequences, cachedTokens: 0, meanContext: context, busiestRankFactor: busiest
        )
    }

    /// A prefill step computing `computedTokens` tokens of prompts `context` long, of which a share
    /// `cachedFraction` of all input tokens came from the prefix cache on top of those computed.
    public static func prefill(computedTokens: Double, cachedFraction: Double, context: Double) -> StepWorkload {
        let newPerSequence = context * (1 - cachedFraction)
        let sequences = newPerSequence > 0 ? computedTokens / newPerSequence : 0
        let cached = cachedFraction < 1 ? computedTokens * cachedFraction / (1 - cachedFraction) : 0
        return StepWorkload(
            phase: .prefill, sequences: sequences, computedTokens: computedTokens, cachedTokens: cached, meanContext: context
        )
    }

    /// Input tokens served (computed plus cached) in the step.
    public var servedTokens: Double { computedTokens + cachedTokens }

    /// Cached prefix tokens per sequence.
    public var cachedPerSequence: Double { sequences > 0 ? cachedTokens / sequences : 0 }

    /// Mean number of positions each computed token attends to (causal, after its cached prefix).
    public var meanAttendedPositions: Double {
        switch phase {
        case .decode: return meanContext
        case .prefill:
            let newPerSequence = sequences > 0 ? computedTokens / sequences : 0
            return cachedPerSequence + (newPerSequence + 1) / 2
        }
    }

    /// Problems with the workload, named by command-line flag.
    /// Bounds far past any GPU's memory, so that nothing derived from them overflows.
    public static let mostSequencesPerGPU = 1e6
    public static let mostTokensPerGPU = 1e9
    public static let mostContext = 1e7

    public func validate() -> [String] {
        var problems: [String] = []
        let most = phase == .decode ? Self.mostSequencesPerGPU : Self.mostTokensPerGPU
        if !(computedTokens.isFinite && computedTokens > 0 && computedTokens <= most) {
            problems.append(phase == .decode
                ? "--batch-per-gpu: expected a positive number of sequences up to \(Int(most)), got \(computedTokens)"
                : "--tokens-per-gpu: expected a positive number of tokens up to \(Int(most)), got \(computedTokens)")
        }
        if !(meanContext.isFinite && meanContext >= 1 && meanContext <= Self.mostContext) {
            problems.append("--context: expected 1 to \(Int(Self.mostContext)) tokens, got \(meanContext)")
        }
        if phase == .prefill && !(sequences.isFinite && sequences > 0) {
            problems.append("--cached-fraction: expected less than 1 so that some prompt tokens are computed")
        }
        return problems
    }
}
