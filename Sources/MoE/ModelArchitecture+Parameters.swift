import Units

/// Parameter counts of a model, in parameters (not bytes).
public struct ParameterCounts: Hashable, Sendable {
    /// Every parameter of the main model (embedding, layers, head; not MTP modules).
    public var total: Double
    /// Parameters that take part in matrix arithmetic for one token: attention, dense FFNs,
    /// shared experts, the top-k routed experts, routers and the output head. The input
    /// embedding is a table lookup, so it is not counted (it costs no FLOPs).
    public var active: Double
    /// The input embedding table.
    public var embedding: Double
    /// The output head (zero when tied to the embedding).
    public var outputHead: Double
    /// Attention parameters of one layer.
    public var attentionPerLayer: Double
    /// One routed or shared expert.
    public var perExpert: Double
}

extension ModelArchitecture {
    /// Attention parameters of one layer (projections and the latent norms).
    public var attentionParametersPerLayer: Double {
        let h = Double(hidden)
        switch attention {
        case .mla(let m):
            let heads = Double(m.heads)
            let qk = Double(m.qkNopeHeadDim + m.qkRopeHeadDim)
            let q = m.qLoraRank > 0
                ? h * Double(m.qLoraRank) + Double(m.qLoraRank) + Double(m.qLoraRank) * heads * qk
                : h * heads * qk
            let kvDown = h * Double(m.kvLoraRank + m.qkRopeHeadDim) + Double(m.kvLoraRank)
            let kvUp = Double(m.kvLoraRank) * heads * Double(m.qkNopeHeadDim + m.vHeadDim)
            let out = heads * Double(m.vHeadDim) * h
            return q + kvDown + kvUp + out
        case .gqa(let g):
            let hd = Double(g.headDim)
            return h * Double(g.heads) * hd + 2 * h * Double(g.kvHeads) * hd + Double(g.heads) * hd * h
        }
    }

    /// Parameters of one SwiGLU expert (gate, up and down projections).
    public var parametersPerExpert: Double {
        guard let moe else { return 0 }
        return 3 * Double(hidden) * Double(moe.expertIntermediate)
    }

    /// Parameter counts, total and active per token.
    public var parameters: ParameterCounts {
        let h = Double(hidden)
        let embedding = Double(vocabulary) * h
        let head = tiedEmbeddings ? 0 : embedding
        let attn = attentionParametersPerLayer
        let norms = 2 * h
        let dense = 3 * h * Double(denseIntermediate)
        var total = embedding + head + h + Double(layers) * (attn + norms) + Double(denseLayers) * dense
        var active = head + h + Double(layers) * (attn + norms) + Double(denseLayers) * dense
        if let moe {
            let router = h * Double(moe.routedExperts)
            let perLayerTotal = Double(moe.routedExperts + moe.sharedExperts) * parametersPerExpert + router
            let perLayerActive = Double(moe.expertsPerToken + moe.sharedExperts) * parametersPerExpert + router
            total += Double(moeLayers) * perLayerTotal
            active += Double(moeLayers) * perLayerActive
        }
        if tiedEmbeddings { active += embedding }
        return ParameterCounts(
            total: total, active: active, embedding: embedding, outputHead: head,
            attentionPerLayer: attn, perExpert: parametersPerExpert
        )
    }

    /// Bytes of KV cache one token occupies across all layers.
    ///
    /// MLA caches the KV latent plus the shared RoPE key; GQA caches a key and a value per KV head.
    public var kvCacheBytesPerToken: Double {
        let perLayer: Double
        switch attention {
        case .mla(let m): perLayer = Double(m.kvLoraRank + m.qkRopeHeadDim)
        case .gqa(let g): perLayer = 2 * Double(g.kvHeads * g.headDim)
        }
        return perLayer * Double(layers) * kvCachePrecision.bytesPerElement
    }
}
