import CarbonData
import Foundation
import Accounting
import Scheduling
import Testing

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/carbon").path

@Suite("Carbon-intensity formats")
struct CarbonDataFormatTests {
    @Test("A UK Carbon Intensity API response reads as half-hour points")
    func ukci() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(fixtures)/ukci-small.json"))
        let points = try UKCarbonIntensity.parse(data, file: "ukci-small.json")
        #expect(points.map(\.value) == [210, 180, 150, 150, 190])
        #expect(points.allSatisfy { $0.duration == 1800 })
        #expect(points[0].start == 1_678_879_800)  // 2023-03-15T11:30Z
        let best = try WindowSearch.best(points, window: 3600)
        #expect(best.map(\.start) == [points[2].start])
    }

    @Test("A partial UK response is an error naming the point and field", arguments: [
        (#"{"data":[{"from":"2023-03-15T11:30Z","to":"2023-03-15T12:00Z","intensity":{"actual":1}}]}"#, "point 1, field 'intensity.forecast'"),
        (#"{"data":[{"from":"noon","to":"2023-03-15T12:00Z","intensity":{"forecast":1}}]}"#, "point 1, field 'from'"),
        (#"{"data":[]}"#, "no points"),
        (#"{"rows":[]}"#, "expected {\"data\""),
        ("not json", "not a UK Carbon Intensity API response"),
    ])
    func ukciErrors(_ json: String, _ expected: String) {
        #expect {
            try UKCarbonIntensity.parse(Data(json.utf8), file: "r.json")
        } throws: { "\($0)".contains(expected) && "\($0)".contains("r.json") }
    }

    @Test("A Let's Wait Awhile CSV reads with each point lasting until the next")
    func lwa() throws {
        let text = try String(contentsOfFile: "\(fixtures)/lwa-small.csv", encoding: .utf8)
        let points = try LetsWaitAwhileCSV.parse(text, file: "lwa-small.csv")
        #expect(points.map(\.value) == [300.5, 280.25, 260])
        #expect(points.map(\.duration) == [1800, 1800, 1800])
    }

    @Test("A bad CSV line is an error naming the line and column", arguments: [
        ("Time,Carbon Intensity\n2020-01-01 00:00:00,abc\n", "point 2, field 'Carbon Intensity'"),
        ("Time,CI\n", "expected the header"),
        ("Time,Carbon Intensity\n2020-01-01 00:30:00,1\n2020-01-01 00:00:00,2\n", "point 3"),
    ])
    func lwaErrors(_ text: String, _ expected: String) {
        #expect { try LetsWaitAwhileCSV.parse(text, file: "x.csv") } throws: { "\($0)".contains(expected) }
    }
}
