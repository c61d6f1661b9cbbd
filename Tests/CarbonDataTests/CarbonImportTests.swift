import Units
import Accounting
import CarbonData
import Foundation
import Scheduling

import Testing

func fixture(_ name: String) throws -> Data {
    try Data(contentsOf: URL(fileURLWithPath: "\(fixtures)/\(name)"))
}

@Suite("Importing every carbon-intensity format")
struct CarbonImportTests {
    @Test("Each format's fixture imports with the metadata its source implies", arguments: [
        ("electricitymaps-latest.json", CarbonFormat.electricityMaps, "DE", CarbonSignal.average, EmissionFactorType.lifecycle, SeriesKind.actual, 1),
        ("electricitymaps-history.json", .electricityMaps, "DE", .average, .lifecycle, .actual, 24),
        ("electricitymaps-forecast.json", .electricityMaps, "DE", .average, .lifecycle, .forecast, 24),
        ("electricitymaps-gb.csv", .electricityMapsCSV, "GB", .average, .lifecycle, .actual, 4),
        ("watttime-forecast.json", .wattTime, "CAISO_NORTH", .marginal, .direct, .forecast, 24),
        ("watttime-historical.json", .wattTime, "CAISO_NORTH", .marginal, .direct, .actual, 12),
        ("ukci-small.json", .ukci, "GB", .average, .direct, .forecast, 5),
        ("lwa-small.csv", .letsWaitAwhile, "DE", .average, .lifecycle, .actual, 3),
    ])
    func everyFormat(_ file: String, _ format: CarbonFormat, _ region: String, _ signal: CarbonSignal, _ factor: EmissionFactorType, _ kind: SeriesKind, _ count: Int) throws {
        let options = CarbonImportOptions(region: format == .letsWaitAwhile ? "DE" : nil)
        let result = try format.read(try fixture(file), file: file, options: options)
        #expect(result.series.count == 1)
        let s = try #require(result.series.first)
        #expect(s.metadata.region == region)
        #expect(s.metadata.signal == signal)
        #expect(s.metadata.factor == factor)
        #expect(s.metadata.kind == kind)
        #expect(s.points.count == count)
        #expect(s.metadata.resolutionSeconds > 0)
        #expect(result.warnings.isEmpty, "\(result.warnings)")
        #expect(zip(s.points, s.points.dropFirst()).allSatisfy { $0.end <= $1.start })
    }

    @Test("A UK response is GB's: another --region is an error unless relabelling is asked for, and then it is recorded")
    func relabellingIsExplicit() throws {
        let data = try fixture("ukci-small.json")
        #expect {
            try CarbonFormat.ukci.read(data, file: "uk.json", options: CarbonImportOptions(region: "DE"))
        } throws: { "\($0)".contains("for GB, not DE") && "\($0)".contains("--relabel-region") }
        #expect(try CarbonFormat.ukci.read(data, file: "uk.json", options: CarbonImportOptions(region: "GB")).series[0].metadata.region == "GB")
        var options = CarbonImportOptions(region: "DE")
        options.relabelRegion = true
        let relabelled = try CarbonFormat.ukci.read(data, file: "uk.json", options: options)
        #expect(relabelled.series[0].metadata.region == "DE")
        #expect(relabelled.series[0].metadata.origin.contains("GB relabelled DE"))
        #expect(relabelled.warnings.contains { $0.message.contains("stored as region DE") })
    }

    @Test("Joule's CSV needs a region and reads as given")
    func jouleCSV() throws {
        let csv = Data("timestamp,gco2_per_kwh\n2025-02-27T00:00:00Z,500\n2025-02-27T01:00:00Z,400\n".utf8)
        #expect { try CarbonFormat.joule.read(csv, file: "c.csv") } throws: { "\($0)".contains("pass --region") }
        let s = try CarbonFormat.joule.read(csv, file: "c.csv", options: .init(region: "CN-BJ", factor: .direct)).series[0]
        #expect(s.points.map(\.value) == [500, 400])
        #expect(s.metadata.factor == .direct)
        #expect(s.metadata.source == "joule-csv")
    }

    @Test("WattTime lbs/MWh become g/kWh at 0.45359237 g/kWh per lb/MWh")
    func wattTimeUnits() throws {
        let data = try fixture("watttime-forecast.json")
        let raw = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let values = (raw["data"] as! [[String: Any]]).map { ($0["value"] as! NSNumber).doubleValue }
        let s = try CarbonFormat.wattTime.read(data, file: "w.json").series[0]
        for (point, lbs) in zip(s.points, values) {
            #expect(abs(point.value - lbs * 0.45359237) < 1e-9)
        }
        #expect(s.metadata.issuedAt == 1_693_353_600)  // 2023-08-30T00:00:00Z
        #expect(s.points.allSatisfy { $0.duration == 300 })
    }

    @Test("WattTime historical forecasts become one forecast series per issue time")
    func wattTimeHistoricalForecasts() throws {
        let result = try CarbonFormat.wattTime.read(try fixture("watttime-forecast-historical.json"), file: "h.json")
        #expect(result.series.map(\.metadata.issuedAt) == [1_693_353_600, 1_693_353_900])
        #expect(result.series.allSatisfy { $0.points.count == 3 && $0.metadata.kind == .forecast })
    }

    @Test("The portal CSV's direct and LCA columns are different series")
    func portalColumns() throws {
        let data = try fixture("electricitymaps-gb.csv")
        let direct = try CarbonFormat.electricityMapsCSV.read(data, file: "gb.csv", options: .init(factor: .direct)).series[0]
        let lca = try CarbonFormat.electricityMapsCSV.read(data, file: "gb.csv", options: .init(factor: .lifecycle)).series[0]
        #expect(direct.points.map(\.value) == [62.5, 60.1, 58.7, 61.2])
        #expect(lca.points.map(\.value) == [91.4, 88.9, 87.0, 90.3])
        #expect(zip(direct.points, lca.points).allSatisfy { $0.value < $1.value })
    }

    @Test("Bad or partial input is an error naming the file and the place", arguments: [
        (CarbonFormat.electricityMaps, #"{"zone":"DE","history":[{"datetime":"2024-04-30T00:00:00.000Z","carbonIntensity":300},{"datetime":"2024-04-30T01:00:00.000Z"}]}"#, "point 2, field 'history.carbonIntensity'"),
        (.electricityMaps, #"{"zone":"DE","history":[{"datetime":"2024-04-30T00:00:00Z","carbonIntensity":300,"emissionFactorType":"direct"},{"datetime":"2024-04-30T01:00:00Z","carbonIntensity":300,"emissionFactorType":"lifecycle"}]}"#, "mix emission factor types"),
        (.electricityMaps, #"{"zone":"DE","rows":[]}"#, "expected an Electricity Maps carbon-intensity response"),
        (.electricityMaps, #"{"zone":"DE","forecast":[{"datetime":"tomorrow","carbonIntensity":300}]}"#, "point 1, field 'forecast.datetime'"),
        (.wattTime, #"{"data":[{"point_time":"2023-08-30T00:00:00+00:00","value":50}],"meta":{"region":"CAISO_NORTH","signal_type":"co2_moer","units":"percent"}}"#, "not an emission rate"),
        (.wattTime, #"{"data":[{"point_time":"2023-08-30T00:00:00+00:00"}],"meta":{"region":"CAISO_NORTH","units":"lbs_co2_per_mwh"}}"#, "point 1, field 'data.value'"),
        (.wattTime, #"{"data":[]}"#, "expected a 'meta' object"),
        // A period of 1e300 s was stored, and the SDK route then trapped converting it to whole seconds.
        (.wattTime, #"{"data":[{"point_time":"2023-08-30T00:00:00+00:00","value":900}],"meta":{"region":"CAISO_NORTH","units":"lbs_co2_per_mwh","data_point_period_seconds":1e300}}"#, "meta.data_point_period_seconds: expected 1 s to 366 days"),
        (.electricityMapsCSV, "Datetime (UTC),Zone Id,Carbon Intensity gCO₂eq/kWh (LCA)\n2023-01-01 00:00:00,GB,90\n2023-01-01 01:00:00,FR,30\n", "point 3, field 'Zone Id'"),
        (.electricityMapsCSV, "Datetime (UTC),Zone Id,Carbon Intensity gCO₂eq/kWh (direct)\n2023-01-01 00:00:00,GB,90\n", "expected a column 'Carbon Intensity gCO₂eq/kWh (LCA)'"),
        (.electricityMapsCSV, "Datetime (UTC),Zone Id,Carbon Intensity gCO₂eq/kWh (LCA)\n2023-01-01 00:00:00,GB,n/a\n", "point 2, field 'Carbon Intensity gCO₂eq/kWh (LCA)'"),
    ])
    func badInput(_ format: CarbonFormat, _ text: String, _ expected: String) {
        #expect {
            try format.read(Data(text.utf8), file: "bad.in")
        } throws: { error in
            let d = "\(error)"
            return d.contains("bad.in") && d.contains(expected)
        }
    }
}

@Suite("Point checking: one policy for every format")
struct PointCheckerTests {
    static func series(_ n: Int, seed: UInt64) -> [TimedValue] {
        var rng = SplitMix64(seed: seed)
        var t = 1_700_000_000.0
        return (0..<n).map { _ in
            let d = [900.0, 1800, 3600].randomElement(using: &rng)!
            defer { t += d + (Bool.random(using: &rng) ? 0 : d) }
            return TimedValue(start: t, duration: d, value: Double(Int.random(in: 0...800, using: &rng)))
        }
    }

    @Test("Any shuffle of a valid series checks back to it, with a warning exactly when it was out of order", arguments: 0..<20)
    func shuffles(_ seed: UInt64) throws {
        let points = Self.series(30, seed: seed)
        var rng = SplitMix64(seed: seed &+ 99)
        let order = Array(points.indices).shuffled(using: &rng)
        let raw = order.map { PointChecker.RawPoint(place: $0 + 1, point: points[$0]) }
        let (checked, warnings) = try PointChecker.check(raw, file: "f")
        #expect(checked == points)
        let wasSorted = order == order.sorted()
        #expect(warnings.contains { $0.message.contains("sorted by time") } == !wasSorted)
    }

    @Test("Exact duplicates are dropped with a warning; conflicting ones are an error", arguments: 0..<10)
    func duplicates(_ seed: UInt64) throws {
        let points = Self.series(12, seed: seed)
        let k = Int(seed) % points.count
        var raw = points.enumerated().map { PointChecker.RawPoint(place: $0.offset + 1, point: $0.element) }
        raw.append(.init(place: 100, point: points[k]))
        let (checked, warnings) = try PointChecker.check(raw, file: "f")
        #expect(checked == points)
        #expect(warnings.contains { $0.message.contains("1 exact duplicate") })
        var conflicting = points[k]
        conflicting.value += 1
        raw[raw.count - 1] = .init(place: 100, point: conflicting)
        #expect { try PointChecker.check(raw, file: "f") } throws: { "\($0)".contains("point 100") && "\($0)".contains("same time") }
    }

    @Test("Overlaps are errors; gaps are kept and counted")
    func overlapsAndGaps() throws {
        let a = TimedValue(start: 0, duration: 3600, value: 1)
        #expect {
            try PointChecker.check([.init(place: 1, point: a), .init(place: 2, point: TimedValue(start: 1800, duration: 3600, value: 2))], file: "f")
        } throws: { "\($0)".contains("point 2") && "\($0)".contains("overlap") }
        let (_, warnings) = try PointChecker.check(
            [.init(place: 1, point: a), .init(place: 2, point: TimedValue(start: 7200, duration: 3600, value: 2)), .init(place: 3, point: TimedValue(start: 18000, duration: 3600, value: 2))],
            file: "f"
        )
        #expect(warnings.map(\.message) == ["2 gap(s) in the data, the largest 2 h; windows over a gap are skipped when scheduling"])
    }

    @Test("A step longer than the usual one is a gap, not a stretched point")
    func durationsFromStarts() {
        let starts: [(place: Int, start: Double, value: Double)] = [(1, 0, 1), (2, 3600, 2), (3, 7200, 3), (4, 14400, 4)]
        let raw = PointChecker.durationsFromStarts(starts, fallback: 60)
        #expect(raw.map(\.point.duration) == [3600, 3600, 3600, 3600])
    }
}
