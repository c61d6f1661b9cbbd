/// The number format of an operation's operands, which sets its peak rate and its bytes per element.
public enum Precision: String, CaseIterable, Codable, Hashable, Sendable {
    /// 8-bit floating point (E4M3), as DeepSeek runs its GEMMs and dispatch.
    case fp8
    /// bfloat16, as DeepSeek runs its MLA core and combine.
    case bf16

    /// Bytes one element occupies.
    public var bytesPerElement: Double {
        switch self {
        case .fp8: 1
        case .bf16: 2
        }
    }
}
