/// The number format of an operation's operands, which sets its peak rate and its bytes per element.
public enum Precision: String, CaseIterable, Codable, Hashable, Sendable {
    /// 8-bit floating point (E4M3), as DeepSeek runs its GEMMs and dispatch.
    case fp8
    /// bfloat16, as DeepSeek runs its MLA core and combine.
    case bf16
    /// OCP microscaling FP4 (E2M1 values, one 8-bit scale per 32): gpt-oss's expert weights.
    /// GPUs without FP4 tensor cores dequantise to BF16 and run at the BF16 rate.
    case mxfp4

    /// Bytes one element occupies (MXFP4: 4 bits plus 8 bits per 32 values).
    public var bytesPerElement: Double {
        switch self {
        case .fp8: 1
        case .bf16: 2
        case .mxfp4: 0.53125
        }
    }

    /// The formats every GPU file must give a peak for.
    public static let required: [Precision] = [.fp8, .bf16]
}
