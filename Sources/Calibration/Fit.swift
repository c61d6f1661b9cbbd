import Foundation
import Hardware
import MoE
import Units

/// Downhill-simplex minimisation (Nelder and Mead, 1965) of `f` from `start`, for fits with a
/// handful of parameters. Deterministic; stops after `iterations` or when the simplex's values
/// agree to `tolerance`.
public enum NelderMead {
    public static func minimize(
        _ f: ([Double]) -> Double, start: [Double], step: Double = 0.2, iterations: Int = 600, tolerance: Double = 1e-9
    ) -> (point: [Double], value: Double) {
        let n = start.count
        var simplex: [[Double]] = [start]
        for i in 0..<n {
            var p = start
            p[i] += step
            simplex.append(p)
        }
        var values = simplex.map(f)
        for _ in 0..<iterations {
            let order = values.indices.sorted { values[$0] < values[$1] }
            simplex = order.map { simplex[$0] }
            values = order.map { values[$0] }
            if abs(values[n] - values[0]) <= tolerance * (abs(values[0]) + 1e-30) { break }
            let centroid = (0..<n).map { j in simplex[0..<n].reduce(0) { $0 + $1[j] } / Double(n) }
            func along(_ t: Double) -> [Double] { (0..<n).map { centroid[$0] + t * (simplex[n][$0] - centroid[$0]) } }
            let reflected = along(-1)
            let fr = f(reflected)
            if fr < values[0] {
                let expanded = along(-2)
                let fe = f(expanded)
                if fe < fr { simplex[n] = expanded; values[n] = fe } else { simplex[n] = reflected; values[n] = fr }
            } else if fr < values[n - 1] {
                simplex[n] = reflected; values[n] = fr
            } else {
                let contracted = fr < values[n] ? along(-0.5) : along(0.5)
                let fc = f(contracted)
                if fc < min(fr, values[n]) {
                    simplex[n] = contracted; values[n] = fc
                } else {
                    for i in 1...n {
                        simplex[i] = (0..<n).map { simplex[0][$0] + 0.5 * (simplex[i][$0] - simplex[0][$0]) }
                        values[i] = f(simplex[i])
                    }
                }
            }
        }
        let best = values.indices.min { values[$0] < values[$1] }!
        return (simplex[best], values[best])
    }
}

/// DeepSeek's own H800 training trace, as aggregated in `deepseek_anchors/profile_train_ep64_*`:
/// per-layer kernel times of one 4,096-token micro-batch at EP64 with balanced routing, for
/// every DualPipe phase (forward F, input-gradient B, weight-gradient W; attention and MoE block;
/// dispatch and combine), and the span of the 4-layer chunk pair they overlap in.
public struct TrainingProfile: Hashable, Sendable {
    /// Tokens per micro-batch (one sequence).
    public var tokens: Double
    /// Expert-parallel degree.
    public var expertParallel: Int
    /// SMs the trace leaves to communication.
    public var communicationSMs: Int
    /// Mean time per layer of each phase (`attn(F)`, `mlp(W)`, `dispatch(B)`…), compute streams summed.
    public var phases: [String: TimeSpan]
    /// MoE layers in the traced chunk pair, and the span of all its kernels.
    public var chunkLayers: Int
    public var chunkSpan: TimeSpan
    /// The FlashAttention kernels alone, mean over layers.
    public var flashAttentionForward: TimeSpan
    public var flashAttentionBackward: TimeSpan

    public init(
        tokens: Double, expertParallel: Int, communicationSMs: Int, phases: [String: TimeSpan], chunkLayers: Int, chunkSpan: TimeSpan,
        flashAttentionForward: TimeSpan, flashAttentionBackward: TimeSpan
    ) {
        self.tokens = tokens
        self.expertParallel = expertParallel
        self.communicationSMs = communicationSMs
        self.phases = phases
        self.chunkLayers = chunkLayers
        self.chunkSpan = chunkSpan
        self.flashAttentionForward = flashAttentionForward
        self.flashAttentionBackward = flashAttentionBackward
    }

    public var attentionForward: TimeSpan { phases["attn(F)"] ?? .zero }
    public var mlpForward: TimeSpan { phases["mlp(F)"] ?? .zero }

    /// The phases in the trace's order, with the chunk span last.
    public static let phaseOrder = ["attn(F)", "mlp(F)", "attn(B)", "mlp(B)", "attn(W)", "mlp(W)", "dispatch(F)", "combine(F)", "dispatch(B)", "combine(B)"]
}

/// One phase of the training trace next to Joule's model of it.
public struct ProfileComparison: Hashable, Sendable {
    public var phase: String
    public var measured: TimeSpan
    public var modelled: TimeSpan
    /// Whether a coefficient was fitted to this row (fit error) or it is a check.
    public var fitted: Bool
    public var error: Double { modelled / measured - 1 }
}

/// The fits `joule calibrate --fit` runs, kernels first, then the serving power and overhead.
public struct CalibrationFit: Sendable {
    /// The library as loaded (its fitted values are the starting point).
    public var library: SpecLibrary
    /// The fitted family and the GPU and node the kernel fit runs on.
    public var family = "gh100"
    public var profileModel = "deepseek-v3"
    public var profileNode = "h800"

    public init(library: SpecLibrary) { self.library = library }

    /// Joule's training block for the profile's micro-batch: one MoE layer, DeepSeek-V3's
    /// selective recomputation, balanced routing.
    func profileBlock(_ profile: TrainingProfile, in lib: SpecLibrary) throws -> (TrainingBlock, NodeSpec, Double) {
        let model = try lib.model(profileModel)
        let node = try lib.node(profileNode)
        let planner = TrainingPlanner(model: model, expertParallel: profile.expertParallel, recompute: .selective)
        let share = Double(node.gpu.streamingMultiprocessors - profile.communicationSMs) / Double(node.gpu.streamingMultiprocessors)
        return (planner.layer(index: model.denseLayers, sequenceLength: profile.tokens), node, share)
    }

    /// Modelled per-layer forward attention and MoE-block times for the profile's micro-batch.
    public func modelledProfile(_ profile: TrainingProfile, in lib: SpecLibrary) throws -> (attention: TimeSpan, mlp: TimeSpan, flashAttention: TimeSpan, flashFLOPs: Double) {
        let (block, node, share) = try profileBlock(profile, in: lib)
        let core = block.attention.forward.first { $0.name == "attn.prefill_core" }
        let flash = core.map { node.gpu.cost(of: $0, computeShare: share) } ?? .zero
        return (
            node.gpu.cost(of: block.attention.forward, computeShare: share).time, node.gpu.cost(of: block.ffn.forward, computeShare: share).time,
            flash.time, core?.flops ?? 0
        )
    }

    /// Every phase of the trace against the model, and the chunk pair's span against
    /// `chunkLayers` × max(computation, all-to-all).
    public func compareProfile(_ profile: TrainingProfile, in lib: SpecLibrary) throws -> [ProfileComparison] {
        let (block, node, share) = try profileBlock(profile, in: lib)
        let gpu = node.gpu
        func t(_ ks: [Kernel]) -> TimeSpan { gpu.cost(of: ks, computeShare: share).time }
        let a2a = node.allToAll
        let ep = profile.expertParallel
        let dispatch = a2a.time(ep: ep, bytesPerGPU: block.dispatchBytes), combine = a2a.time(ep: ep, bytesPerGPU: block.combineBytes)
        // Backward: the dispatch's gradient returns like a combine, the combine's goes out like a dispatch.
        let modelled: [String: TimeSpan] = [
            "attn(F)": t(block.attention.forward), "mlp(F)": t(block.ffn.forward),
            "attn(B)": t(block.attention.inputGradient), "mlp(B)": t(block.ffn.inputGradient),
            "attn(W)": t(block.attention.weightGradient), "mlp(W)": t(block.ffn.weightGradient),
            "dispatch(F)": dispatch, "combine(F)": combine, "dispatch(B)": combine, "combine(B)": dispatch,
        ]
        var rows = TrainingProfile.phaseOrder.compactMap { phase -> ProfileComparison? in
            guard let measured = profile.phases[phase], let m = modelled[phase] else { return nil }
            return ProfileComparison(phase: phase, measured: measured, modelled: m, fitted: phase == "attn(F)" || phase == "mlp(F)")
        }
        let core = block.attention.forward.first { $0.name == "attn.prefill_core" }
        let coreBackward = block.attention.inputGradient.first { $0.name == "attn.prefill_core.backward" }
        if let core { rows.append(ProfileComparison(phase: "FlashAttention forward", measured: profile.flashAttentionForward, modelled: gpu.cost(of: core, computeShare: share).time, fitted: true)) }
        if let coreBackward { rows.append(ProfileComparison(phase: "FlashAttention backward", measured: profile.flashAttentionBackward, modelled: gpu.cost(of: coreBackward, computeShare: share).time, fitted: true)) }
        let compute = t(block.passes.forward) + t(block.passes.inputGradient) + t(block.passes.weightGradient)
        let span = max(compute, (dispatch + combine) * 2) * Double(profile.chunkLayers)
        rows.append(ProfileComparison(phase: "chunk pair span (\(profile.chunkLayers) layers, F+B+W overlapped with all-to-all)", measured: profile.chunkSpan, modelled: span, fitted: false))
        return rows
    }

    /// Fits the kernel-level coefficients to the training profile: the prefill attention and the
    /// attention-backward shares of the BF16 peak from the FlashAttention kernels alone, then the
    /// element-wise bandwidth share that makes the forward attention and MoE blocks match (least
    /// squares on log times).
    public func fitKernels(_ profile: TrainingProfile, start: FittedParameters) throws -> FittedParameters {
        var fitted = start
        guard var family = fitted.families[self.family] else { throw StepRequestError(problems: ["no family \(self.family) to fit"]) }
        let base = library.applying(fitted)
        let (block, node, share) = try profileBlock(profile, in: base)
        let peak = node.gpu.peak(.bf16)
        if let core = block.attention.forward.first(where: { $0.name == "attn.prefill_core" }) {
            family.prefillAttentionFraction = min(1, core.flops / (profile.flashAttentionForward.seconds * share) / peak)
        }
        if let back = block.attention.inputGradient.first(where: { $0.name == "attn.prefill_core.backward" }) {
            family.attentionBackwardFraction = min(1, back.flops / (profile.flashAttentionBackward.seconds * share) / peak)
        }
        func loss(_ x: [Double]) -> Double {
            var f = fitted
            var fam = family
            fam.elementwiseBandwidthFraction = min(1, max(0.01, exp(x[0])))
            f.families[self.family] = fam
            guard let m = try? modelledProfile(profile, in: library.applying(f)) else { return .infinity }
            return pow(log(m.attention / profile.attentionForward), 2) + pow(log(m.mlp / profile.mlpForward), 2)
        }
        let best = NelderMead.minimize(loss, start: [log(family.elementwiseBandwidthFraction)], step: 0.3)
        family.elementwiseBandwidthFraction = min(1, max(0.01, exp(best.point[0])))
        fitted.families[self.family] = family
        return fitted
    }

    /// The serving objective: the sum over rows of the squared log errors of GPU power, GPU
    /// J/token and inter-token latency.
    public static func loss(_ comparisons: [ServingComparison]) -> Double {
        comparisons.reduce(0) { sum, c in
            sum + pow(log(c.estimate.gpuPowerWatts / c.row.gpuPowerWatts), 2)
                + pow(log(c.estimate.gpuJoulesPerOutputToken / c.row.gpuJoulesPerOutputToken), 2)
                + pow(log(c.estimate.interTokenLatencySeconds / c.row.interTokenLatencySeconds), 2)
        }
    }

    /// Fits the family's busy floor, compute, memory and communication power and the engine's
    /// step overhead, all-reduce latency and sampler traffic to measured serving rows (in log
    /// space, so every coefficient stays positive).
    public func fitServing(_ rows: [MeasuredServingRow], start: FittedParameters, iterations: Int = 400) throws -> FittedParameters {
        guard let family = start.families[self.family] else { throw StepRequestError(problems: ["no family \(self.family) to fit"]) }
        func parameters(_ x: [Double]) -> FittedParameters {
            var f = start
            var fam = family
            fam.busyWatts = exp(x[0])
            fam.computeWatts = exp(x[1])
            fam.memoryWatts = exp(x[2])
            fam.communicationWatts = exp(x[3])
            f.families[self.family] = fam
            f.engine = EngineCosts(stepOverhead: .microseconds(exp(x[4])), allReduceLatency: .microseconds(exp(x[5])), samplerBytesPerLogit: exp(x[6]), perSequenceOverhead: .microseconds(exp(x[7])))
            return f
        }
        func loss(_ x: [Double]) -> Double {
            let f = parameters(x)
            guard let fam = f.families[self.family], fam.busyWatts < 690, f.engine.stepOverhead.seconds < 0.1, f.engine.allReduceLatency.seconds < 1e-3, f.engine.samplerBytesPerLogit < 1e3, f.engine.perSequenceOverhead.seconds < 1e-3,
                  let c = try? library.applying(f).compare(rows) else { return .infinity }
            return Self.loss(c)
        }
        let e = start.engine
        let x0 = [
            family.busyWatts, family.computeWatts, family.memoryWatts, max(family.communicationWatts, 1),
            max(e.stepOverhead.microseconds, 1), max(e.allReduceLatency.microseconds, 1), max(e.samplerBytesPerLogit, 0.1), max(e.perSequenceOverhead.microseconds, 0.1),
        ].map { log($0) }
        let best = NelderMead.minimize(loss, start: x0, step: 0.25, iterations: iterations)
        return parameters(best.point)
    }
}
