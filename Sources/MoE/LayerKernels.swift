import Hardware
import Units

/// The kernels one GPU runs for one micro-batch of one layer, and its all-to-all traffic.
///
/// Precision follows DeepSeek's serving (REFERENCE.md §4): FP8 GEMMs for every linear layer and for
/// dispatch; BF16 for the MLA core (including the absorbed per-head projections) and for combine;
/// the router and the output head in BF16.
public struct LayerKernels: Sendable {
    /// Kernels of the attention block.
    public var attention: [Kernel] = []
    /// Kernels of the FFN block (dense or MoE, without communication).
    public var ffn: [Kernel] = []
    /// Bytes each GPU sends in the dispatch all-to-all.
    public var dispatchBytes: Double = 0
    /// Bytes each GPU sends in the combine all-to-all.
    public var combineBytes: Double = 0
    /// Bytes each GPU all-reduces over NVLink (tensor parallelism).
    public var allReduceBytes: Double = 0
    /// All-reduce operations in the layer.
    public var allReduces: Int = 0

    /// All compute kernels, attention first.
    public var kernels: [Kernel] { attention + ffn }
}

/// Builds the kernels of a layer from a model, a deployment and a micro-batch.
public struct LayerPlanner: Sendable {
    /// The model.
    public var model: ModelArchitecture
    /// Its deployment.
    public var deployment: Deployment

    /// Creates a planner.
    public init(model: ModelArchitecture, deployment: Deployment) {
        self.model = model
        self.deployment = deployment
    }

    private var h: Double { Double(model.hidden) }
    private var tp: Double { Double(deployment.tensorParallel) }
    private var weights: Precision { model.weightPrecision }

    /// Kernels of attention for `tokens` computed tokens of `sequences` sequences in `phase`.
    ///
    /// - Parameters:
    ///   - attended: mean positions each computed token attends to.
    ///   - contextTokens: every position of the micro-batch's sequences (cached and new), whose KV
    ///     a non-absorbed MLA prefill must up-project.
    public func attentionKernels(phase: ServingPhase, tokens t: Double, attended: Double, contextTokens: Double) -> [Kernel] {
        var ks: [Kernel] = [Kernel(name: "attn.norm", shape: .elementwise(bytes: 4 * t * h), precision: .bf16)]
        switch model.attention {
        case .mla(let m):
            let heads = Double(m.heads) / tp
            let qk = Double(m.qkNopeHeadDim + m.qkRopeHeadDim)
            let latent = Double(m.kvLoraRank + m.qkRopeHeadDim)
            let kvb = model.kvCachePrecision.bytesPerElement
            if m.qLoraRank > 0 {
                ks.append(Kernel(name: "attn.qkv_a", shape: .gemm(rows: t, outputs: Double(m.qLoraRank) + latent, depth: h, groups: 1), precision: weights))
                ks.append(Kernel(name: "attn.q_b", shape: .gemm(rows: t, outputs: heads * qk, depth: Double(m.qLoraRank), groups: 1), precision: weights))
            } else {
                ks.append(Kernel(name: "attn.qkv_a", shape: .gemm(rows: t, outputs: heads * qk + latent, depth: h, groups: 1), precision: weights))
            }
            switch phase {
            case .decode:
                // Absorbed: queries move into the latent space; the core reads only the latent cache.
                ks.append(Kernel(name: "attn.absorb_k", shape: .gemm(rows: t, outputs: Double(m.kvLoraRank), depth: Double(m.qkNopeHeadDim), groups: heads), precision: .bf16))
                let flops = 2 * t * heads * attended * (latent + Double(m.kvLoraRank))
                let bytes = t * attended * latent * kvb
                ks.append(Kernel(name: "attn.core", shape: .attention(flops: flops, bytes: bytes), precision: .bf16))
                ks.append(Kernel(name: "attn.absorb_v", shape: .gemm(rows: t, outputs: Double(m.vHeadDim), depth: Double(m.kvLoraRank), groups: heads), precision: .bf16))
            case .prefill:
                // Non-absorbed: keys and values are up-projected for every position, then full MHA.
                ks.append(Kernel(name: "attn.kv_b", shape: .gemm(rows: contextTokens, outputs: heads * Double(m.qkNopeHeadDim + m.vHeadDim), depth: Double(m.kvLoraRank), groups: 1), precision: weights))
                let flops = 2 * t * heads * attended * (qk + Double(m.vHeadDim))
                let bytes = (t * heads * qk + contextTokens * heads * (qk + Double(m.vHeadDim)) + t * heads * Double(m.vHeadDim)) * 2
                ks.append(Kernel(name: "attn.core", shape: .attention(flops: flops, bytes: bytes), precision: .bf16))
            }
            ks.append(Kernel(name: "attn.o", shape: .gemm(rows: t, outputs: h, depth: heads * Double(m.vHeadDim), groups: 1), precision: weights))
        case .gqa(let g):
            let heads = Double(g.heads) / tp
            let kvHeads = max(Double(g.kvHeads) / tp, 1)
            let hd = Double(g.headDim)
            let kvb = model.kvCachePrecision.bytesPerElement
            ks.append(Kernel(name: "attn.qkv", shape: .gemm(rows: t, outputs: (heads + 2 * kvHeads) * hd, depth: h, groups: 1), precision: weights))
            let flops = 2 * t * heads * attended * 2 * hd
            let kvRead: Double = switch phase {
            case .decode: t * attended * 2 * kvHeads * hd * kvb
            case .prefill: contextTokens * 2 * kvHeads * hd * kvb
            }
            ks.append(Kernel(name: "attn.core", shape: .attention(flops: flops, bytes: kvRead + 2 * t * heads * hd * 2), precision: .bf16))
            ks.append(Kernel(name: "attn.o", shape: .gemm(rows: t, outputs: h, depth: heads * hd, groups: 1), precision: weights))
        }
        return ks
    }

    /// Kernels of a dense SwiGLU FFN for `t` tokens.
    public func denseFFNKernels(tokens t: Double) -> [Kernel] {
        let inter = Double(model.denseIntermediate) / tp
        return [
            Kernel(name: "ffn.norm", shape: .elementwise(bytes: 4 * t * h), precision: .bf16),
            Kernel(name: "ffn.gate_up", shape: .gemm(rows: t, outputs: 2 * inter, depth: h, groups: 1), precision: weights),
            Kernel(name: "ffn.act", shape: .elementwise(bytes: t * inter * 2 * 3), precision: .bf16),
            Kernel(name: "ffn.down", shape: .gemm(rows: t, outputs: h, depth: inter, groups: 1), precision: weights),
        ]
    }

    /// Kernels and traffic of an MoE FFN for `t` tokens on one GPU.
    ///
    /// With expert parallelism each GPU holds `expertSlotsPerGPU` expert instances; the busiest
    /// GPU receives `expertLoadImbalance` × the mean number of token copies.
    public func moeKernels(tokens t: Double, into layer: inout LayerKernels) {
        guard let moe = model.moe else { return }
        let inter = Double(moe.expertIntermediate) / tp
        let k = moe.effectiveExpertsPerToken
        let imbalance = deployment.expertLoadImbalance
        var ks: [Kernel] = [
            Kernel(name: "moe.norm", shape: .elementwise(bytes: 4 * t * h), precision: .bf16),
            Kernel(name: "moe.router", shape: .gemm(rows: t, outputs: Double(moe.routedExperts), depth: h, groups: 1), precision: .bf16),
            Kernel(name: "moe.topk", shape: .elementwise(bytes: t * Double(moe.routedExperts) * 4 * 2), precision: .bf16),
        ]
        if moe.sharedExperts > 0 {
            let s = Double(moe.sharedExperts)
            ks.append(Kernel(name: "moe.shared.gate_up", shape: .gemm(rows: t, outputs: 2 * inter * s, depth: h, groups: 1), precision: weights))
            ks.append(Kernel(name: "moe.shared.act", shape: .elementwise(bytes: t * inter * s * 2 * 3), precision: .bf16))
            ks.append(Kernel(name: "moe.shared.down", shape: .gemm(rows: t, outputs: h, depth: inter * s, groups: 1), precision: weights))
        }
        let groups: Double
        let rowsPerExpert: Double
        if deployment.expertParallel > 1 {
            groups = deployment.expertSlotsPerGPU(for: model)
            rowsPerExpert = imbalance * t * k / groups
            layer.dispatchBytes = imbalance * t * k * (h * weights.bytesPerElement + h / 128 * 4)
            layer.combineBytes = imbalance * t * k * h * Precision.bf16.bytesPerElement
        } else {
            groups = Double(moe.routedExperts)
            rowsPerExpert = t * k / groups
        }
        ks.append(Kernel(name: "moe.routed.gate_up", shape: .gemm(rows: rowsPerExpert, outputs: 2 * inter, depth: h, groups: groups), precision: weights))
        ks.append(Kernel(name: "moe.routed.act", shape: .elementwise(bytes: rowsPerExpert * groups * inter * 2 * 3), precision: .bf16))
        ks.append(Kernel(name: "moe.routed.down", shape: .gemm(rows: rowsPerExpert, outputs: h, depth: inter, groups: groups), precision: weights))
        layer.ffn = ks
    }

    /// The distinct layers of the model with how many times each occurs: the dense-FFN layers
    /// share one shape and the MoE layers another, so each is planned once.
    public func distinctLayers(
        phase: ServingPhase, tokens: Double, attended: Double, contextTokens: Double
    ) -> [(layer: LayerKernels, count: Int, isMoE: Bool)] {
        var kinds: [(layer: LayerKernels, count: Int, isMoE: Bool)] = []
        if model.denseLayers > 0 {
            kinds.append((layer(index: 0, phase: phase, tokens: tokens, attended: attended, contextTokens: contextTokens), model.denseLayers, false))
        }
        if model.layers > model.denseLayers {
            kinds.append((layer(index: model.denseLayers, phase: phase, tokens: tokens, attended: attended, contextTokens: contextTokens), model.layers - model.denseLayers, true))
        }
        return kinds
    }

    /// The full plan of one layer (`index` from 0) for a micro-batch of `tokens` computed tokens.
    public func layer(
        index: Int, phase: ServingPhase, tokens: Double, attended: Double, contextTokens: Double
    ) -> LayerKernels {
        var layer = LayerKernels()
        layer.attention = attentionKernels(phase: phase, tokens: tokens, attended: attended, contextTokens: contextTokens)
        if index < model.denseLayers {
            layer.ffn = denseFFNKernels(tokens: tokens)
        } else {
            moeKernels(tokens: tokens, into: &layer)
        }
        if deployment.tensorParallel > 1 {
            layer.allReduces = 2
            layer.allReduceBytes = tokens * h * Precision.bf16.bytesPerElement
        }
        return layer
    }
}
