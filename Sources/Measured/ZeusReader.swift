import Foundation

/// Reads a Zeus power timeline as JSON: what `json.dump(PowerMonitor.get_power_timeline(), f)`
/// writes, an object from GPU index to samples, each `[epoch seconds, watts]` or
/// `{"timestamp": s, "power": w}`. The object may also sit under a top-level `"gpu"` or
/// `"power_timeline"` key. Power is integrated by the trapezoid rule.
public enum ZeusReader {
    public static func read(_ data: Data, file: String) throws -> PowerTelemetry {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw MeasuredInputError(file: file, "expected JSON (a Zeus power timeline), got text that does not parse: \(error.localizedDescription)")
        }
        guard var timeline = object as? [String: Any] else {
            throw MeasuredInputError(file: file, "expected a JSON object from GPU index to samples")
        }
        for wrapper in ["gpu", "power_timeline"] {
            if timeline.count == 1, let inner = timeline[wrapper] as? [String: Any] { timeline = inner }
        }
        guard !timeline.isEmpty else { throw MeasuredInputError(file: file, "no GPUs in the timeline") }
        var builder = TrackBuilder(file: file)
        for key in timeline.keys.sorted(by: { (Int($0) ?? 0, $0) < (Int($1) ?? 0, $1) }) {
            guard let gpu = Int(key), (0...4095).contains(gpu) else {
                throw MeasuredInputError(file: file, field: key, "expected a GPU index from 0 to 4095 as the key")
            }
            guard let samples = timeline[key] as? [Any] else {
                throw MeasuredInputError(file: file, field: key, "expected an array of [time, watts] samples")
            }
            for (i, s) in samples.enumerated() {
                let where_ = "\(key)[\(i)]"
                var t: Double?, w: Double?
                if let pair = s as? [Any], pair.count == 2 {
                    t = (pair[0] as? NSNumber)?.doubleValue
                    w = (pair[1] as? NSNumber)?.doubleValue
                } else if let obj = s as? [String: Any] {
                    t = (obj["timestamp"] as? NSNumber)?.doubleValue ?? (obj["time"] as? NSNumber)?.doubleValue
                    w = (obj["power"] as? NSNumber)?.doubleValue ?? (obj["watts"] as? NSNumber)?.doubleValue
                } else {
                    throw MeasuredInputError(file: file, field: where_, "expected [epoch seconds, watts] or {\"timestamp\": s, \"power\": w}")
                }
                guard let time = t, time.isFinite, time > 0, time < 7.3e9 else {
                    throw MeasuredInputError(file: file, field: where_, "expected a time in seconds since 1970 (1970 to 2200)")
                }
                guard let watts = w, watts.isFinite, (0...5000).contains(watts) else {
                    throw MeasuredInputError(file: file, field: where_, "expected power from 0 to 5000 W")
                }
                builder.add(gpu: gpu, uuid: nil, .init(time: time, watts: watts, counterJoules: nil, line: i + 1))
            }
        }
        return try builder.build(format: "zeus")
    }
}
