/// How energy that no step's requests drew directly — idle GPUs between steps, the hosts while idle —
/// is shared out over requests, so that the requests of a run add up to what the cluster drew.
public enum AttributionPolicy: String, CaseIterable, Codable, Hashable, Sendable {
    /// Within each accounting interval, each instance's idle GPU energy, idle host energy, their
    /// carbon and idle GPU-time go to the requests it served in that interval, in proportion to the
    /// GPU active energy each drew there. An instance with no work in an interval passes its idle
    /// share to the whole cluster's active requests in that interval (in proportion to active
    /// energy); an interval in which the cluster did no work at all carries its idle share forward to
    /// the next interval with work. Host energy drawn during steps is split with the step.
    case proportionalToActive = "proportional-to-active"
}
