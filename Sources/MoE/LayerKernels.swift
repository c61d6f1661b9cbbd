import Foundation
import Hardware
import Units

/// The kernels one GPU runs for one micro-batch of one layer, and its communication.
///
/// Precision follows the model's weights: FP8 models (DeepSeek's serving, REFERENCE.md §4) run FP8
/// GEMMs for every linear layer and for dispatch, with the activations quantised before each FP8
/// GEMM; BF16 for the MLA core (including the absorbed per-head projections), for combine, the
/// router and the output head. BF16 models run BF16 throughout.
public struct LayerKernels: Sendable {
    /// Kernels of the attention block.
    public var attention: [Kernel] = []
    /// Kernels of the FFN block (dense or MoE, without communication).
    public var ffn: [Kernel] = []
    /// Bytes the busiest GPU sends in the dispatch all-to-all.
    public var dispatchBytes: Double = 0
    /// Bytes the busiest GPU sends in the combine all-to-all.
    public var combineBytes: Double = 0
    /// Bytes each GPU all-reduces over NVLink (tensor parallelism, or vLLM-style expert parallelism), per all-reduce.
    public var allReduceBytes: Double = 0
    /// All-reduce operations in the layer.
    public var allReduces: Int = 0
    /// The busiest EP rank's load over the mean in this layer (1 without expert parallelism).
    public var loadImbalance: Double = 1
    /// Distinct routed-expert instances the busiest GPU runs in this layer.
    public var expertsTouched: Double = 0

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
    /// FP8 models quantise activations before their GEMMs (W8A8); MXFP4 and BF16 models keep BF16 activations.
    private var quantised: Bool { weights == .fp8 }

    /// The share of one micro-batch of `workload` on the busiest attention rank of the unit.
    public struct MicroBatch: Hashable, Sendable {
        /// Decode (or prefill-phase) tokens computed on the busiest rank.
        public var tokens: Double
        /// Sequences of those tokens on the busiest rank.
        public var sequences: Double
        /// Positions each decode token attends to; prefill: each computed token.
        public var attended: Double
        /// Every position of the prefill-phase sequences (cached and new), whose KV a
        /// non-absorbed MLA prefill must up-project.
        public var contextTokens: Double
        /// Mixed-in prefill tokens on the busiest rank (0 for pure steps).
        public var mixedTokens: Double = 0
        /// Positions each mixed-in prefill token attends to.
        public var mixedAttended: Double = 0
        /// Every position of the mixed-in prompts.
        public var mixedContextTokens: Double = 0
        /// Tokens through the linear layers on the mean rank (what the experts see from each rank).
        public var meanLinearTokens: Double
        /// Tokens through the linear layers on the busiest rank.
        public var linearTokens: Double { tokens + mixedTokens }
    }

    /// One micro-batch of `workload`, as the busiest rank sees it.
    public func microBatch(_ workload: StepWorkload) -> MicroBatch {
        let m = Double(max(deployment.microBatches, 1))
        let f = workload.busiestRankFactor
        var mb = MicroBatch(
            tokens: f * workload.computedTokens / m, sequences: f * workload.sequences / m, attended: workload.meanAttendedPositions,
            contextTokens: f * (workload.sequences * workload.cachedPerSequence + workload.computedTokens) / m,
            meanLinearTokens: workload.linearTokens / m
        )
        if let p = workload.mixedPrefill {
            mb.mixedTokens = f * p.computedTokens / m
            mb.mixedAttended = p.meanAttendedPositions
            mb.mixedContextTokens = f * (p.cachedTokens + p.computedTokens) / m
        }
        return mb
    }

    /// An FP8 quantisation of `rows × width` BF16 activations (read BF16, write FP8 and one FP32
    /// scale per 128 values) before an FP8 GEMM; nothing for BF16 models.
    private func quantise(_ name: String, rows: Double, width: Double) -> [Kernel] {
        guard quantised, rows > 0 else { return [] }
        return [Kernel(name: name, shape: .elementwise(bytes: rows * width * (2 + Precision.fp8.bytesPerElement + 4 / 128)), precision: .bf16)]
    }

    /// Kernels of attention for micro-batch `mb` in `phase`.
    public func attentionKernels(phase: ServingPhase, _ mb: MicroBatch) -> [Kernel] {
        let t = mb.linearTokens
        var ks: [Kernel] = [Kernel(name: "attn.norm", shape: .elementwise(bytes: 4 * t * h), precision: .bf16)]
        switch model.attention {
        case .mla(let m):
            let heads = Double(m.heads) / tp
            let qk = Double(m.qkNopeHeadDim + m.qkRopeHeadDim)
            let latent = Double(m.kvLoraRank + m.qkRopeHeadDim)
            let kvb = model.kvCachePrecision.bytesPerElement
            ks += quantise("attn.quant_a", rows: t, width: h)
            if m.qLoraRank > 0 {
                ks.append(Kernel(name: "attn.qkv_a", shape: .gemm(rows: t, outputs: Double(m.qLoraRank) + latent, depth: h, groups: 1), precision: weights))
                ks.append(Kernel(name: "attn.q_norm", shape: .elementwise(bytes: 4 * t * (Double(m.qLoraRank) + Double(m.kvLoraRank))), precision: .bf16))
                ks += quantise("attn.quant_q", rows: t, width: Double(m.qLoraRank))
                ks.append(Kernel(name: "attn.q_b", shape: .gemm(rows: t, outputs: heads * qk, depth: Double(m.qLoraRank), groups: 1), precision: weights))
            } else {
                ks.append(Kernel(name: "attn.qkv_a", shape: .gemm(rows: t, outputs: heads * qk + latent, depth: h, groups: 1), precision: weights))
            }
            ks.append(Kernel(name: "attn.rope", shape: .elementwise(bytes: 4 * t * (heads + 1) * Double(m.qkRopeHeadDim)), precision: .bf16))
            // Decode tokens: absorbed; queries move into the latent space, the core reads only the latent cache.
            let decodeTokens = phase == .decode ? mb.tokens : 0
            if decodeTokens > 0 {
                ks.append(Kernel(name: "attn.absorb_k", shape: .gemm(rows: decodeTokens, outputs: Double(m.kvLoraRank), depth: Double(m.qkNopeHeadDim), groups: heads), precision: .bf16))
                let flops = 2 * decodeTokens * heads * mb.attended * (latent + Double(m.kvLoraRank))
                let bytes = decodeTokens * mb.attended * latent * kvb
                ks.append(Kernel(name: "attn.core", shape: .attention(flops: flops, bytes: bytes), precision: .bf16))
                ks.append(Kernel(name: "attn.absorb_v", shape: .gemm(rows: decodeTokens, outputs: Double(m.vHeadDim), depth: Double(m.kvLoraRank), groups: heads), precision: .bf16))
            }
            // Prefill tokens: non-absorbed; keys and values up-projected for every position, then full MHA.
            let prefill: [(tokens: Double, attended: Double, context: Double)] = phase == .prefill
                ? [(mb.tokens, mb.attended, mb.contextTokens)] : [(mb.mixedTokens, mb.mixedAttended, mb.mixedContextTokens)]
            for p in prefill where p.tokens > 0 {
                ks += quantise("attn.quant_kv", rows: p.context, width: Double(m.kvLoraRank))
                ks.append(Kernel(name: "attn.kv_b", shape: .gemm(rows: p.context, outputs: heads * Double(m.qkNopeHeadDim + m.vHeadDim), depth: Double(m.kvLoraRank), groups: 1), precision: weights))
                let flops = 2 * p.tokens * heads * p.attended * (qk + Double(m.vHeadDim))
                let bytes = (p.tokens * heads * qk + p.context * heads * (qk + Double(m.vHeadDim)) + p.tokens * heads * Double(m.vHeadDim)) * 2
                ks.append(Kernel(name: "attn.prefill_core", shape: .prefillAttention(flops: flops, bytes: bytes), precision: .bf16))
            }
            ks += quantise("attn.quant_o", rows: t, width: heads * Double(m.vHeadDim))
            ks.append(Kernel(name: "attn.o", shape: .gemm(rows: t, outputs: h, depth: heads * Double(m.vHeadDim), groups: 1), precision: weights))
        case .gqa(let g):
            let heads = Double(g.heads) / tp
            let kvHeads = max(Double(g.kvHeads) / tp, 1)
            let hd = Double(g.headDim)
            let kvb = model.kvCachePrecision.bytesPerElement
            ks += quantise("attn.quant_qkv", rows: t, width: h)
            ks.append(Kernel(name: "attn.qkv", shape: .gemm(rows: t, outputs: (heads + 2 * kvHeads) * hd, depth: h, groups: 1), precision: weights))
            ks.append(Kernel(name: "attn.rope", shape: .elementwise(bytes: 4 * t * (heads + kvHeads) * hd), precision: .bf16))
            if phase == .decode && mb.tokens > 0 {
                let attended = g.meanAttended(mb.attended)
                let flops = 2 * mb.tokens * heads * attended * 2 * hd
                let kvRead = mb.tokens * attended * 2 * kvHeads * hd * kvb
                ks.append(Kernel(name: "attn.core", shape: .attention(flops: flops, bytes: kvRead + 2 * mb.tokens * heads * hd * 2), precision: .bf16))
            }
            let prefill: [(tokens: Double, attended: Double, context: Double)] = phase == .prefill
                ? [(mb.tokens, mb.attended, mb.contextTokens)] : [(mb.mixedTokens, mb.mixedAttended, mb.mixedContextTokens)]
            for p in prefill where p.tokens > 0 {
                let flops = 2 * p.tokens * heads * g.meanAttended(p.attended) * 2 * hd
                let kvRead = p.context * 2 * kvHeads * hd * kvb
                ks.append(Kernel(name: "attn.prefill_core", shape: .prefillAttention(flops: flops, bytes: kvRead + 2 * p.tokens * heads * hd * 2), precision: .bf16))
            }
            ks += quantise("attn.quant_o", rows: t, width: heads * hd)
            ks.append(Kernel(name: "attn.o", shape: .gemm(rows: t, outputs: h, depth: heads * hd, groups: 1), precision: weights))
        }
        return ks
    }

    /// Kernels of a dense SwiGLU FFN for `t` tokens.
    public func denseFFNKernels(tokens t: Double) -> [Kernel] {
        let inter = Double(model.denseIntermediate) / tp
        return [Kernel(name: "ffn.norm", shape: .elementwise(bytes: 4 * t * h), precision: .bf16)]
            + quantise("ffn.quant_in", rows: t, width: h)
            + [
                Kernel(name: "ffn.gate_up", shape: .gemm(rows: t, outputs: 2 * inter, depth: h, groups: 1), precision: weights),
                Kernel(name: "ffn.act", shape: .elementwise(bytes: t * inter * 2 * 3), precision: .bf16),
            ]
            + quantise("ffn.quant_act", rows: t, width: inter)
            + [Kernel(name: "ffn.down", shape: .gemm(rows: t, outputs: h, depth: inter, groups: 1), precision: weights)]
    }

    /// Expected distinct instances among `slots` that `tokens` tokens touch when each picks `k` of
    /// `total` instances: `slots · (1 − (1 − k/total)^tokens)`.
    public static func touched(slots: Double, total: Double, expertsPerToken k: Double, tokens: Double) -> Double {
        guard slots > 0, total > 0, tokens > 0 else { return 0 }
        let miss = max(0, 1 - min(k, total) / total)
        return slots * (1 - pow(miss, tokens))
    }

    /// Kernels and traffic of an MoE FFN for micro-batch `mb` on the busiest GPU.
    public func moeKernels(_ mb: MicroBatch, into layer: inout LayerKernels) {
        guard let moe = model.moe else { return }
        let k = moe.effectiveExpertsPerToken
        let t = mb.linearTokens
        var ks: [Kernel] = [
            Kernel(name: "moe.norm", shape: .elementwise(bytes: 4 * t * h), precision: .bf16),
            Kernel(name: "moe.router", shape: .gemm(rows: t, outputs: Double(moe.routedExperts), depth: h, groups: 1), precision: .bf16),
            Kernel(name: "moe.topk", shape: .elementwise(bytes: t * Double(moe.routedExperts) * 4 * 2), precision: .bf16),
        ]
        ks += quantise("moe.quant_in", rows: t, width: h)
        if moe.sharedExperts > 0 {
            let s = Double(moe.sharedExperts) * Double(moe.expertIntermediate) / tp
            ks.append(Kernel(name: "moe.shared.gate_up", shape: .gemm(rows: t, outputs: 2 * s, depth: h, groups: 1), precision: weights))
            ks.append(Kernel(name: "moe.shared.act", shape: .elementwise(bytes: t * s * 2 * 3), precision: .bf16))
            ks += quantise("moe.shared.quant_act", rows: t, width: s)
            ks.append(Kernel(name: "moe.shared.down", shape: .gemm(rows: t, outputs: h, depth: s, groups: 1), precision: weights))
        }
        let d = deployment
        let rows: Double
        let touched: Double
        let inter: Double
        let slotsTotal = Double(moe.routedExperts + d.redundantExperts)
        if d.expertParallel > 1 {
            // Tokens of the whole unit (or TP group) that the routed experts see in this micro-batch.
            let unitTokens = d.usesAllToAll ? mb.meanLinearTokens * Double(d.attentionRanks) : t
            let copiesPerRank = unitTokens * k / Double(d.expertParallel)
            let imbalance = d.loadImbalance(copiesPerRank: copiesPerRank)
            layer.loadImbalance = imbalance
            rows = imbalance * copiesPerRank
            touched = Self.touched(slots: d.maximumExpertSlotsPerGPU(for: model), total: slotsTotal, expertsPerToken: k, tokens: unitTokens)
            inter = Double(moe.expertIntermediate)
            if d.usesAllToAll {
                // The busiest GPU sends its own tokens' copies and receives `imbalance` × the mean.
                let sent = max(mb.linearTokens, imbalance * mb.meanLinearTokens) * k
                layer.dispatchBytes = sent * (quantised ? h * Precision.fp8.bytesPerElement + h / 128 * 4 : h * Precision.bf16.bytesPerElement)
                layer.combineBytes = sent * h * Precision.bf16.bytesPerElement
            } else {
                // vLLM-style EP under tensor-parallel attention: every GPU sees every token; the MoE output is all-reduced.
                layer.allReduces += 1
            }
        } else {
            rows = t * k
            touched = Self.touched(slots: Double(moe.routedExperts), total: Double(moe.routedExperts), expertsPerToken: k, tokens: t)
            inter = Double(moe.expertIntermediate) / tp
            if d.tensorParallel > 1 { layer.allReduces += 1 }
        }
        layer.expertsTouched = touched
        let perExpert = touched > 0 ? rows / touched : 0
        let activationBytes = quantised ? Precision.fp8.bytesPerElement : Precision.bf16.bytesPerElement
        ks.append(Kernel(name: "moe.permute", shape: .elementwise(bytes: 2 * rows * h * activationBytes), precision: .bf16))
        ks.append(Kernel(name: "moe.routed.gate_up", shape: .gemm(rows: perExpert, outputs: 2 * inter, depth: h, groups: touched), precision: weights))
        ks.append(Kernel(name: "moe.routed.act", shape: .elementwise(bytes: rows * inter * 2 * 3), precision: .bf16))
        ks += quantise("moe.routed.quant_act", rows: rows, width: inter)
        ks.append(Kernel(name: "moe.routed.down", shape: .gemm(rows: perExpert, outputs: h, depth: inter, groups: touched), precision: weights))
        ks.append(Kernel(name: "moe.unpermute", shape: .elementwise(bytes: (rows + t) * h * Precision.bf16.bytesPerElement), precision: .bf16))
        layer.ffn = ks
    }

    /// The distinct layers of the model with how many times each occurs: the dense-FFN layers
    /// share one shape and the MoE layers another, so each is planned once.
    public func distinctLayers(phase: ServingPhase, _ mb: MicroBatch) -> [(layer: LayerKernels, count: Int, isMoE: Bool)] {
        var kinds: [(layer: LayerKernels, count: Int, isMoE: Bool)] = []
        if model.denseLayers > 0 {
            kinds.append((layer(index: 0, phase: phase, mb), model.denseLayers, false))
        }
        if model.layers > model.denseLayers {
            kinds.append((layer(index: model.denseLayers, phase: phase, mb), model.layers - model.denseLayers, true))
        }
        return kinds
    }

    /// The full plan of one layer (`index` from 0) for micro-batch `mb`.
    public func layer(index: Int, phase: ServingPhase, _ mb: MicroBatch) -> LayerKernels {
        var layer = LayerKernels()
        layer.attention = attentionKernels(phase: phase, mb)
        if index < model.denseLayers {
            layer.ffn = denseFFNKernels(tokens: mb.linearTokens)
            if deployment.tensorParallel > 1 { layer.allReduces += 1 }
        } else {
            moeKernels(mb, into: &layer)
        }
        if deployment.tensorParallel > 1 {
            layer.allReduces += 1
            layer.allReduceBytes = mb.linearTokens * h * Precision.bf16.bytesPerElement
        } else if layer.allReduces > 0 {
            layer.allReduceBytes = mb.linearTokens * h * Precision.bf16.bytesPerElement
        }
        return layer
    }
}
