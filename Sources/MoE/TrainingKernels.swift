import Foundation
import Hardware
import Units

/// What the backward pass recomputes instead of keeping from the forward pass.
public enum Recompute: String, CaseIterable, Codable, Hashable, Sendable {
    /// Keep every activation the backward pass needs.
    case none
    /// DeepSeek-V3's choice (V3 report §3.3.3): re-run every RMSNorm, the MLA up-projections and
    /// the SwiGLU output in the backward pass; keep the rest.
    case selective
    /// Keep only each block's input and re-run its whole forward pass in the backward pass.
    case full
}

/// The three passes of one training micro-batch through one block on one GPU, as DualPipe
/// schedules them: forward (F), backward for inputs (B) and backward for weights (W).
public struct TrainingPasses: Sendable {
    public var forward: [Kernel] = []
    public var inputGradient: [Kernel] = []
    public var weightGradient: [Kernel] = []

    public init(forward: [Kernel] = [], inputGradient: [Kernel] = [], weightGradient: [Kernel] = []) {
        self.forward = forward
        self.inputGradient = inputGradient
        self.weightGradient = weightGradient
    }

    public static func + (a: TrainingPasses, b: TrainingPasses) -> TrainingPasses {
        TrainingPasses(forward: a.forward + b.forward, inputGradient: a.inputGradient + b.inputGradient, weightGradient: a.weightGradient + b.weightGradient)
    }

    /// The backward passes of `forward`, kernel by kernel, counted from the operations each needs:
    ///
    /// - a GEMM `Y = X·W` needs `dX = dY·Wᵀ` (B) and `dW = Xᵀ·dY` (W), each with the forward's
    ///   FLOPs; FP8 GEMMs first quantise `dY` (B) and re-quantise `X` and `dY` transposed (W);
    /// - a causal attention core needs FlashAttention's backward: five matrix products against the
    ///   forward's two (2.5× the FLOPs) reading q, k, v, o, dO and writing dq, dk, dv (2× the bytes);
    /// - an element-wise kernel reads its saved input and the incoming gradient and writes the
    ///   outgoing one: three tensor passes against the forward's two (1.5× the bytes); quantisation
    ///   kernels have no backward of their own (the GEMM rules above quantise gradients);
    /// - recomputed kernels run their forward again in B.
    public static func derive(from forward: [Kernel], recompute: Recompute) -> TrainingPasses {
        var passes = TrainingPasses(forward: forward)
        for k in forward {
            if recompute == .full || (recompute == .selective && Self.isSelectivelyRecomputed(k.name)) {
                passes.inputGradient.append(Kernel(name: k.name + ".recompute", shape: k.shape, precision: k.precision))
            }
            switch k.shape {
            case .gemm(let m, let n, let depth, let g):
                passes.inputGradient.append(Kernel(name: k.name + ".dgrad", shape: .gemm(rows: m, outputs: depth, depth: n, groups: g), precision: k.precision))
                passes.weightGradient.append(Kernel(name: k.name + ".wgrad", shape: .gemm(rows: depth, outputs: n, depth: m, groups: g), precision: k.precision))
                if k.precision == .fp8 {
                    let q = 2 + Precision.fp8.bytesPerElement + 4 / 128
                    passes.inputGradient.append(Kernel(name: k.name + ".quant_dy", shape: .elementwise(bytes: m * g * n * q), precision: .bf16))
                    passes.weightGradient.append(Kernel(
                        name: k.name + ".quant_t", shape: .elementwise(bytes: m * g * depth * 2 * Precision.fp8.bytesPerElement + m * g * n * q), precision: .bf16
                    ))
                }
            case .prefillAttention(let flops, let bytes), .attention(let flops, let bytes):
                passes.inputGradient.append(Kernel(name: k.name + ".backward", shape: .attentionBackward(flops: 2.5 * flops, bytes: 2 * bytes), precision: .bf16))
            case .attentionBackward:
                break
            case .elementwise(let bytes):
                if !k.name.contains("quant") {
                    passes.inputGradient.append(Kernel(name: k.name + ".backward", shape: .elementwise(bytes: 1.5 * bytes), precision: .bf16))
                }
            }
        }
        return passes
    }

    /// The kernels DeepSeek-V3 recomputes: RMSNorms, the MLA up-projections (with the quantisation
    /// before them) and the SwiGLU activations.
    static func isSelectivelyRecomputed(_ name: String) -> Bool {
        name.hasSuffix(".norm") || name.hasSuffix("q_norm") || name.hasSuffix(".act")
            || ["attn.q_b", "attn.kv_b", "attn.quant_q", "attn.quant_kv"].contains(name)
    }
}

/// One block of the model in a training pipeline (an embedding, a transformer layer, an MTP
/// module's projection, an output head), for one micro-batch on one GPU.
public struct TrainingBlock: Sendable {
    public var name: String
    /// Attention (or projection, head) kernels.
    public var attention = TrainingPasses()
    /// FFN kernels (dense or MoE, without communication).
    public var ffn = TrainingPasses()
    /// Bytes sent by the forward dispatch and combine all-to-alls (the backward sends as many).
    public var dispatchBytes: Double = 0
    public var combineBytes: Double = 0
    /// Bytes each GPU passes round the context-parallel ring in the forward pass (KV latents).
    public var ringBytes: Double = 0
    /// Activations the backward pass needs, kept from the forward pass, in bytes.
    public var savedActivationBytes: Double = 0
    /// Parameters of the block this GPU holds that are replicated over data parallelism.
    public var denseParameters: Double = 0
    /// Parameters of the block this GPU holds that expert parallelism shards.
    public var expertParameters: Double = 0
    /// Model FLOPs of the block for the micro-batch (forward, balanced routing, no padding).
    public var forwardFLOPs: Double = 0

    public var passes: TrainingPasses { attention + ffn }
}

/// Builds training blocks from a model and a training layout, using the serving planner's
/// forward kernels (prefill phase: causal attention over the whole sequence).
public struct TrainingPlanner: Sendable {
    public var model: ModelArchitecture
    /// Expert-parallel degree (inside data parallelism).
    public var expertParallel: Int
    /// GPUs one sequence is split over (context parallelism, inside data parallelism).
    public var contextParallel: Int
    public var recompute: Recompute

    public init(model: ModelArchitecture, expertParallel: Int, contextParallel: Int = 1, recompute: Recompute) {
        self.model = model
        self.expertParallel = expertParallel
        self.contextParallel = contextParallel
        self.recompute = recompute
    }

    private var h: Double { Double(model.hidden) }

    /// The deployment the forward kernels are planned on: EP as given, TP 1, balanced routing.
    var deployment: Deployment {
        Deployment(expertParallel: max(1, expertParallel), microBatches: 1, imbalanceOverride: expertParallel > 1 ? 1 : nil)
    }

    /// One micro-batch of one sequence `sequenceLength` long: this GPU's `1/cp` share of its
    /// tokens, each attending on average to half the sequence (a load-balanced causal split), with
    /// keys and values up-projected for the whole sequence.
    func microBatch(sequenceLength t: Double) -> LayerPlanner.MicroBatch {
        let cp = Double(max(1, contextParallel))
        return LayerPlanner.MicroBatch(
            tokens: t / cp, sequences: 1 / cp, attended: (t + 1) / 2, contextTokens: t, meanLinearTokens: t / cp
        )
    }

    /// The transformer layer `index` (0-based; dense FFN below `model.denseLayers`).
    public func layer(index: Int, sequenceLength t: Double) -> TrainingBlock {
        let planner = LayerPlanner(model: model, deployment: deployment)
        let mb = microBatch(sequenceLength: t)
        let kernels = planner.layer(index: index, phase: .prefill, mb)
        var block = TrainingBlock(name: index < model.denseLayers ? "dense" : "moe")
        block.attention = .derive(from: kernels.attention, recompute: recompute)
        block.ffn = .derive(from: kernels.ffn, recompute: recompute)
        block.dispatchBytes = kernels.dispatchBytes
        block.combineBytes = kernels.combineBytes
        if contextParallel > 1, case .mla(let m) = model.attention {
            block.ringBytes = t * Double(m.kvLoraRank + m.qkRopeHeadDim) * 2 * Double(contextParallel - 1) / Double(contextParallel)
        } else if contextParallel > 1, case .gqa(let g) = model.attention {
            block.ringBytes = t * 2 * Double(g.kvHeads * g.headDim) * 2 * Double(contextParallel - 1) / Double(contextParallel)
        }
        block.savedActivationBytes = savedBytes(kernels.kernels, tokens: mb.tokens) + attentionSavedBytes(tokens: mb.tokens, context: mb.contextTokens)
        block.forwardFLOPs = kernels.kernels.reduce(0) { $0 + $1.flops }
        let p = model.parameters
        block.denseParameters = p.attentionPerLayer + 2 * h
        if index < model.denseLayers {
            block.denseParameters += 3 * h * Double(model.denseIntermediate)
        } else if let moe = model.moe {
            block.denseParameters += Double(moe.sharedExperts) * p.perExpert + h * Double(moe.routedExperts)
            block.expertParameters = Double(moe.routedExperts) * p.perExpert / Double(max(1, expertParallel))
        }
        return block
    }

    /// The input embedding: a table lookup forward, a scatter-add of gradients into the table.
    public func embedding(sequenceLength t: Double) -> TrainingBlock {
        let tokens = t / Double(max(1, contextParallel))
        var block = TrainingBlock(name: "embedding")
        block.attention = TrainingPasses(
            forward: [Kernel(name: "embed", shape: .elementwise(bytes: 2 * tokens * h * 2), precision: .bf16)],
            weightGradient: [Kernel(name: "embed.wgrad", shape: .elementwise(bytes: tokens * h * (2 + 4 + 4)), precision: .bf16)]
        )
        block.denseParameters = model.parameters.embedding
        return block
    }

    /// An output head with its cross-entropy loss (logits written, read for the softmax, their
    /// gradient written).
    public func head(sequenceLength t: Double, name: String = "head") -> TrainingBlock {
        let tokens = t / Double(max(1, contextParallel))
        let v = Double(model.vocabulary)
        let norm = Kernel(name: "head.norm", shape: .elementwise(bytes: 4 * tokens * h), precision: .bf16)
        let gemm = Kernel(name: "head", shape: .gemm(rows: tokens, outputs: v, depth: h, groups: 1), precision: .bf16)
        let loss = Kernel(name: "head.loss", shape: .elementwise(bytes: tokens * v * 2 * 3), precision: .bf16)
        var block = TrainingBlock(name: name)
        block.attention = .derive(from: [norm, gemm], recompute: recompute)
        block.attention.forward.append(loss)
        block.savedActivationBytes = tokens * h * 2 * 2
        block.forwardFLOPs = gemm.flops
        block.denseParameters = name == "head" ? max(model.parameters.outputHead, 0) + h : h
        return block
    }

    /// A multi-token-prediction module's own parts before its transformer layer: the two RMSNorms
    /// and the projection of [hidden; embedding] back to the model width (V3 report §2.2).
    public func mtpProjection(sequenceLength t: Double) -> TrainingBlock {
        let tokens = t / Double(max(1, contextParallel))
        let norm = Kernel(name: "mtp.norm", shape: .elementwise(bytes: 2 * 4 * tokens * h), precision: .bf16)
        let proj = Kernel(name: "mtp.proj", shape: .gemm(rows: tokens, outputs: h, depth: 2 * h, groups: 1), precision: .bf16)
        var block = TrainingBlock(name: "mtp.projection")
        block.attention = .derive(from: [norm, proj], recompute: recompute)
        block.savedActivationBytes = tokens * 2 * h * 2 * 2
        block.forwardFLOPs = proj.flops
        block.denseParameters = 2 * h * h + 2 * h
        return block
    }

    /// Every block in pipeline order: embedding, the layers, each MTP module (projection, one MoE
    /// layer, the shared head), the output head.
    public func blocks(sequenceLength t: Double) -> [TrainingBlock] {
        var blocks = [embedding(sequenceLength: t)]
        let dense = model.denseLayers > 0 ? layer(index: 0, sequenceLength: t) : nil
        let moe = model.layers > model.denseLayers ? layer(index: model.denseLayers, sequenceLength: t) : nil
        for i in 0..<model.layers { blocks.append(i < model.denseLayers ? dense! : moe!) }
        for _ in 0..<model.mtpModules {
            blocks.append(mtpProjection(sequenceLength: t))
            blocks.append(moe ?? dense!)
            var shared = head(sequenceLength: t, name: "mtp.head")
            shared.denseParameters = h
            blocks.append(shared)
        }
        blocks.append(head(sequenceLength: t))
        return blocks
    }

    /// Activations kept for the backward pass, by what the backward pass reads:
    ///
    /// - each RMSNorm's input (the residual stream), even when the norm is recomputed;
    /// - each GEMM's input in its operand precision, unless it is the output of a kernel the
    ///   backward pass recomputes (a norm, an up-projection's latent norm, a SwiGLU);
    /// - each SwiGLU's input, in FP8 for FP8 models (V3 report §3.3.3);
    /// - the attention core's output and log-sum-exp (`attentionSavedBytes`).
    ///
    /// With full recomputation only the block's input is kept.
    func savedBytes(_ kernels: [Kernel], tokens: Double) -> Double {
        if recompute == .full { return tokens * h * 2 }
        var bytes = 0.0
        var previous: Kernel?
        var producer: Kernel?
        for k in kernels {
            // Quantisation passes a GEMM its producer's output: look through them.
            if !k.name.contains("quant") { producer = previous }
            switch k.shape {
            case .gemm(let m, _, let depth, let g):
                let recomputedInput = recompute == .selective && (producer.map { TrainingPasses.isSelectivelyRecomputed($0.name) } ?? false)
                if !recomputedInput {
                    bytes += m * g * depth * (k.precision == .fp8 ? Precision.fp8.bytesPerElement + 4 / 128 : 2)
                }
            case .elementwise(let b):
                if k.name.hasSuffix(".norm") || k.name.hasSuffix("q_norm") { bytes += b / 2 }
                if k.name.hasSuffix(".act") {
                    // Read two halves and write one, in BF16: the input is two thirds of the traffic.
                    let input = b * 2 / 3
                    bytes += model.weightPrecision == .fp8 ? input / 2 * (Precision.fp8.bytesPerElement + 4 / 128) : input
                }
            default:
                break
            }
            if !k.name.contains("quant") { previous = k }
        }
        return bytes
    }

    /// The attention core's output and log-sum-exp, which FlashAttention's backward reads; with no
    /// recomputation also the queries, keys and values (recomputed from the latents otherwise).
    func attentionSavedBytes(tokens t: Double, context: Double) -> Double {
        switch model.attention {
        case .mla(let m):
            let heads = Double(m.heads)
            var bytes = t * heads * (Double(m.vHeadDim) * 2 + 4)
            if recompute == .none {
                bytes += (t * heads * Double(m.qkNopeHeadDim + m.qkRopeHeadDim) + context * heads * Double(m.qkNopeHeadDim + m.qkRopeHeadDim + m.vHeadDim)) * 2
            }
            return recompute == .full ? 0 : bytes
        case .gqa(let g):
            // GQA projects q, k, v directly: they are GEMM outputs kept for the core's backward.
            let heads = Double(g.heads)
            let bytes = t * heads * (Double(g.headDim) * 2 + 4) + (t * heads + 2 * context * Double(g.kvHeads)) * Double(g.headDim) * 2
            return recompute == .full ? 0 : bytes
        }
    }
}
