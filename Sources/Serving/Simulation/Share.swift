/// Energy, carbon and time drawn directly by steps, as a running sum; the unit of per-request and
/// per-slot accounting. Energies in joules (IT, before PUE), carbon in grams (facility energy × grid
/// intensity), times in seconds.
struct Share {
    var gpuActiveJoules = 0.0
    var hostActiveJoules = 0.0
    var carbonGrams = 0.0
    var gpuSeconds = 0.0
    /// Wall time of the steps the request was in (not divided among the batch).
    var stepSeconds = 0.0
    /// Σ step time × intensity, for the time-weighted intensity.
    var intensitySeconds = 0.0

    static func + (a: Share, b: Share) -> Share {
        Share(
            gpuActiveJoules: a.gpuActiveJoules + b.gpuActiveJoules, hostActiveJoules: a.hostActiveJoules + b.hostActiveJoules,
            carbonGrams: a.carbonGrams + b.carbonGrams, gpuSeconds: a.gpuSeconds + b.gpuSeconds,
            stepSeconds: a.stepSeconds + b.stepSeconds, intensitySeconds: a.intensitySeconds + b.intensitySeconds
        )
    }

    static func - (a: Share, b: Share) -> Share {
        Share(
            gpuActiveJoules: a.gpuActiveJoules - b.gpuActiveJoules, hostActiveJoules: a.hostActiveJoules - b.hostActiveJoules,
            carbonGrams: a.carbonGrams - b.carbonGrams, gpuSeconds: a.gpuSeconds - b.gpuSeconds,
            stepSeconds: a.stepSeconds - b.stepSeconds, intensitySeconds: a.intensitySeconds - b.intensitySeconds
        )
    }

    static func += (a: inout Share, b: Share) { a = a + b }
}

/// Idle energy (and its carbon and GPU-time) handed to a request by the attribution policy.
struct Overhead {
    var gpuIdleJoules = 0.0
    var hostIdleJoules = 0.0
    var carbonGrams = 0.0
    var gpuSeconds = 0.0

    static func + (a: Overhead, b: Overhead) -> Overhead {
        Overhead(
            gpuIdleJoules: a.gpuIdleJoules + b.gpuIdleJoules, hostIdleJoules: a.hostIdleJoules + b.hostIdleJoules,
            carbonGrams: a.carbonGrams + b.carbonGrams, gpuSeconds: a.gpuSeconds + b.gpuSeconds
        )
    }

    static func * (a: Overhead, k: Double) -> Overhead {
        Overhead(gpuIdleJoules: a.gpuIdleJoules * k, hostIdleJoules: a.hostIdleJoules * k, carbonGrams: a.carbonGrams * k, gpuSeconds: a.gpuSeconds * k)
    }

    static func += (a: inout Overhead, b: Overhead) { a = a + b }
}
