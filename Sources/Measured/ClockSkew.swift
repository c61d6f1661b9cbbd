/// Whether the request log's clock and the telemetry's agree: an engine's GPUs draw more while it
/// has requests, so the shift of the log that best lines up "requests on the engine" with "power
/// above its median" estimates the offset between the two clocks.
public enum ClockSkew {
    public struct Estimate: Hashable, Sendable {
        /// Seconds to add to the telemetry's times (`joule measure --clock-offset`) to line it up with the log.
        public var offsetSeconds: Double
        /// Agreement (correlation) at that offset and at none.
        public var agreement: Double
        public var agreementAtZero: Double
        /// The grid step the search used, seconds.
        public var resolution: Double
    }

    /// The best offset within ±`range` seconds, on a grid of the telemetry's usual spacing (at least
    /// 0.1 s), over at most the first `window` seconds. Nil when there is too little to compare.
    public static func estimate(
        _ telemetry: PowerTelemetry, _ requests: [MeasuredRequest], engines: [[Int]], range: Double = 10, window: Double = 3600
    ) -> Estimate? {
        guard let (start, end) = telemetry.commonRange, !requests.isEmpty else { return nil }
        let tracks = Dictionary(uniqueKeysWithValues: telemetry.tracks.map { ($0.gpu, $0) })
        let step = max(0.1, telemetry.tracks.map(\.medianSpacing).max() ?? 1)
        let span = min(end, start + window) - start
        let cells = Int(span / step)
        let shifts = Int(range / step)
        guard cells > 4 * shifts + 10 else { return nil }
        // Per engine: power per cell, and requests on the engine per cell (by the log's clock, padded by the range).
        var power: [[Double]] = [], busy: [[Double]] = []
        for engine in engines {
            let members = Set(engine)
            var p = [Double](repeating: 0, count: cells)
            for g in engine { if let t = tracks[g] { for c in 0..<cells { p[c] += t.energy(from: start + Double(c) * step, to: start + Double(c + 1) * step) } } }
            var b = [Double](repeating: 0, count: cells + 2 * shifts)
            for r in requests where !r.gpus.isEmpty && members.contains(r.gpus[0]) || r.gpus.isEmpty && engines.count == 1 {
                let from = Int((((r.scheduled ?? r.arrival) - start) / step).rounded(.down)) + shifts
                let to = Int((((r.finish ?? end) - start) / step).rounded(.up)) + shifts
                for c in max(0, from)..<min(b.count, max(to, from)) where c >= 0 { b[c] = 1 }
            }
            power.append(p)
            busy.append(b)
        }
        func correlation(_ shift: Int) -> Double {
            // Busy(t − shift) against power(t): a log behind the telemetry by s seconds peaks at shift s.
            var n = 0.0, sx = 0.0, sy = 0.0, sxx = 0.0, syy = 0.0, sxy = 0.0
            for (p, b) in zip(power, busy) {
                for c in shifts..<(cells - shifts) {
                    let x = b[c + shifts - shift], y = p[c]
                    n += 1; sx += x; sy += y; sxx += x * x; syy += y * y; sxy += x * y
                }
            }
            let vx = sxx - sx * sx / n, vy = syy - sy * sy / n
            return vx > 0 && vy > 0 ? (sxy - sx * sy / n) / (vx * vy).squareRoot() : 0
        }
        var best = (shift: 0, value: correlation(0))
        let zero = best.value
        for s in -shifts...shifts where s != 0 {
            let v = correlation(s)
            if v > best.value + 1e-12 { best = (s, v) }
        }
        return Estimate(offsetSeconds: -Double(best.shift) * step, agreement: best.value, agreementAtZero: zero, resolution: step)
    }
}
