import Hardware
import Units

/// Multi-head latent attention (DeepSeek-V2/V3): queries and keys/values through low-rank latents.
public struct MLAAttention: Hashable, Sendable {
    /// Query heads.
    public var heads: Int
    /// Rank of the query latent; 0 means queries are projected directly.
    public var qLoraRank: Int
    /// Rank of the key/value latent (what the KV cache stores, with the RoPE key).
    public var kvLoraRank: Int
    /// Per-head query/key width without rotary embedding.
    public var qkNopeHeadDim: Int
    /// Per-head query/key width with rotary embedding (shared key, cached).
    public var qkRopeHeadDim: Int
    /// Per-head value width.
    public var vHeadDim: Int

    /// Creates an MLA configuration.
    public init(heads: Int, qLoraRank: Int, kvLoraRank: Int, qkNopeHeadDim: Int, qkRopeHeadDim: Int, vHeadDim: Int) {
        self.heads = heads
        self.qLoraRank = qLoraRank
        self.kvLoraRank = kvLoraRank
        self.qkNopeHeadDim = qkNopeHeadDim
        self.qkRopeHeadDim = qkRopeHeadDim
        self.vHeadDim = vHeadDim
    }
}

/// Grouped-query attention (Llama, Mixtral, Qwen): `kvHeads` key/value heads shared by `heads` query heads.
public struct GQAAttention: Hashable, Sendable {
    /// Query heads.
    public var heads: Int
    /// Key/value heads.
    public var kvHeads: Int
    /// Width of one head.
    public var headDim: Int
    /// Positions a sliding-window layer attends to (nil: every layer attends to the whole context).
    public var slidingWindow: Int?
    /// Share of the layers that use the sliding window (Gemma 3: 5 in 6; gpt-oss: 1 in 2).
    public var slidingLayerFraction: Double

    /// Creates a GQA configuration.
    public init(heads: Int, kvHeads: Int, headDim: Int, slidingWindow: Int? = nil, slidingLayerFraction: Double = 0) {
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.slidingWindow = slidingWindow
        self.slidingLayerFraction = slidingWindow == nil ? 0 : slidingLayerFraction
    }

    /// Positions a token attends to on average over the layers when `attended` are in its context.
    public func meanAttended(_ attended: Double) -> Double {
        guard let w = slidingWindow else { return attended }
        return slidingLayerFraction * min(Double(w), attended) + (1 - slidingLayerFraction) * attended
    }
}

/// The attention block of a model.
public enum AttentionArchitecture: Hashable, Sendable {
    case mla(MLAAttention)
    case gqa(GQAAttention)

    /// Query heads.
    public var heads: Int {
        switch self {
        case .mla(let m): m.heads
        case .gqa(let g): g.heads
        }
    }
}

/// A mixture-of-experts feed-forward block (SwiGLU experts).
public struct MoEFFN: Hashable, Sendable {
    /// Routed experts per layer.
    public var routedExperts: Int
    /// Shared experts per layer, applied to every token.
    public var sharedExperts: Int
    /// Intermediate width of one expert.
    public var expertIntermediate: Int
    /// Routed experts chosen per token (top-k).
    public var expertsPerToken: Int
    /// Expert groups for group-limited routing (1 = no grouping).
    public var groups: Int
    /// Groups a token may route into.
    public var topKGroups: Int
    /// Routed experts a token actually runs when dynamic skipping drops some of its top-k (nil:
    /// all `expertsPerToken`); sets routed FLOPs and dispatch/combine bytes.
    public var activeExpertsPerToken: Double?

    /// The routed experts a token runs, on average.
    public var effectiveExpertsPerToken: Double { activeExpertsPerToken ?? Double(expertsPerToken) }

    /// Creates an MoE block.
    public init(
        routedExperts: Int, sharedExperts: Int, expertIntermediate: Int, expertsPerToken: Int, groups: Int, topKGroups: Int,
        activeExpertsPerToken: Double? = nil
    ) {
        self.activeExpertsPerToken = activeExpertsPerToken
        self.routedExperts = routedExperts
        self.sharedExperts = sharedExperts
        self.expertIntermediate = expertIntermediate
        self.expertsPerToken = expertsPerToken
        self.groups = groups
        self.topKGroups = topKGroups
    }
}

/// A transformer language model as data: the shapes that decide its cost.
///
/// The first `denseLayers` layers have a dense SwiGLU FFN of width `denseIntermediate`; the rest
/// have the MoE block `moe`. A dense model has `denseLayers == layers` and `moe == nil`.
public struct ModelArchitecture: Hashable, Sendable {
    /// Identifier used on the command line (`deepseek-v3`).
    public var id: String
    /// Human-readable name.
    public var name: String
    /// Model (residual) width.
    public var hidden: Int
    /// Transformer layers (not counting multi-token-prediction modules).
    public var layers: Int
    /// Vocabulary size.
    public var vocabulary: Int
    /// Whether the output head shares the embedding matrix.
    public var tiedEmbeddings: Bool
    /// The attention block.
    public var attention: AttentionArchitecture
    /// Layers with a dense FFN (the first ones).
    public var denseLayers: Int
    /// Intermediate width of the dense FFN.
    public var denseIntermediate: Int
    /// The MoE block, for the remaining layers.
    public var moe: MoEFFN?
    /// Multi-token-prediction modules (not counted in the main model's parameters).
    public var mtpModules: Int
    /// Precision of the weights in linear layers as served.
    public var weightPrecision: Precision
    /// Precision of the KV cache.
    public var kvCachePrecision: Precision

    /// Creates a model architecture.
    public init(
        id: String, name: String, hidden: Int, layers: Int, vocabulary: Int, tiedEmbeddings: Bool,
        attention: AttentionArchitecture, denseLayers: Int, denseIntermediate: Int, moe: MoEFFN?,
        mtpModules: Int, weightPrecision: Precision, kvCachePrecision: Precision
    ) {
        self.id = id
        self.name = name
        self.hidden = hidden
        self.layers = layers
        self.vocabulary = vocabulary
        self.tiedEmbeddings = tiedEmbeddings
        self.attention = attention
        self.denseLayers = denseLayers
        self.denseIntermediate = denseIntermediate
        self.moe = moe
        self.mtpModules = mtpModules
        self.weightPrecision = weightPrecision
        self.kvCachePrecision = kvCachePrecision
    }

    /// Layers with an MoE FFN.
    public var moeLayers: Int { moe == nil ? 0 : layers - denseLayers }

    /// Whether the model routes tokens to experts.
    public var isMixtureOfExperts: Bool { moe != nil }

    /// Every problem with the architecture, with field paths as in the data file.
    public func validate() -> [SpecProblem] {
        var check = SpecChecker()
        check.require(!id.isEmpty, "id", "expected a non-empty identifier")
        check.positive(hidden, "hiddenSize")
        check.positive(layers, "layers")
        check.positive(vocabulary, "vocabularySize")
        check.nonNegative(mtpModules, "mtpModules")
        check.nonNegative(denseLayers, "ffn.denseLayers")
        check.require(denseLayers <= layers, "ffn.denseLayers", "expected at most layers (\(layers)), got \(denseLayers)")
        if denseLayers > 0 { check.positive(denseIntermediate, "ffn.denseIntermediate") }
        switch attention {
        case .mla(let m):
            check.positive(m.heads, "attention.heads")
            check.nonNegative(m.qLoraRank, "attention.qLoraRank")
            check.positive(m.kvLoraRank, "attention.kvLoraRank")
            check.positive(m.qkNopeHeadDim, "attention.qkNopeHeadDim")
            check.nonNegative(m.qkRopeHeadDim, "attention.qkRopeHeadDim")
            check.positive(m.vHeadDim, "attention.vHeadDim")
        case .gqa(let g):
            check.positive(g.heads, "attention.heads")
            check.positive(g.kvHeads, "attention.kvHeads")
            check.positive(g.headDim, "attention.headDim")
            check.require(
                g.kvHeads <= g.heads && g.heads % max(g.kvHeads, 1) == 0, "attention.kvHeads",
                "expected a divisor of attention.heads (\(g.heads)), got \(g.kvHeads)"
            )
        }
        if let moe {
            check.require(denseLayers < layers, "ffn.denseLayers", "expected fewer than layers (\(layers)) when ffn.moe is given")
            check.positive(moe.routedExperts, "ffn.moe.routedExperts")
            check.nonNegative(moe.sharedExperts, "ffn.moe.sharedExperts")
            check.positive(moe.expertIntermediate, "ffn.moe.expertIntermediate")
            check.positive(moe.expertsPerToken, "ffn.moe.expertsPerToken")
            check.require(
                moe.expertsPerToken <= moe.routedExperts, "ffn.moe.expertsPerToken",
                "expected at most routedExperts (\(moe.routedExperts)), got \(moe.expertsPerToken)"
            )
            check.positive(moe.groups, "ffn.moe.groups")
            check.require(
                moe.groups > 0 && moe.routedExperts % moe.groups == 0, "ffn.moe.groups",
                "expected a divisor of routedExperts (\(moe.routedExperts)), got \(moe.groups)"
            )
            check.require(
                (1...max(moe.groups, 1)).contains(moe.topKGroups), "ffn.moe.topKGroups",
                "expected 1 to groups (\(moe.groups)), got \(moe.topKGroups)"
            )
            if moe.groups > 0 && moe.topKGroups > 0 {
                let reachable = moe.routedExperts / moe.groups * moe.topKGroups
                check.require(
                    moe.expertsPerToken <= reachable, "ffn.moe.expertsPerToken",
                    "expected at most the \(reachable) experts reachable in topKGroups groups, got \(moe.expertsPerToken)"
                )
            }
        } else {
            check.require(
                denseLayers == layers, "ffn.denseLayers",
                "expected every layer (\(layers)) to be dense when ffn.moe is absent, got \(denseLayers)"
            )
        }
        return check.problems
    }
}
