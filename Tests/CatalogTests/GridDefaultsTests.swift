import Accounting
import CarbonData
import Catalog
import Foundation
import Testing

@Suite("Grid defaults in Data/grids")
struct GridDefaultsTests {
    let grids: GridDefaults

    init() throws {
        grids = try Catalog.loadGridDefaults(dataDirectory: repositoryData)
    }

    @Test("China's provinces, the US and its states, and EU countries are all there")
    func coverage() {
        for region in ["CN", "CN-BJ", "CN-GD", "CN-NM", "US", "US-VA", "US-CA", "US-TX", "DE", "FR", "IE", "NL", "SE", "FI", "SG", "KR", "JP", "GB"] {
            #expect(grids.annual(region: region) != nil, "\(region)")
        }
        #expect(grids.annual.filter { $0.region.hasPrefix("CN-") }.count == 30)
        #expect(grids.annual.filter { $0.source == "egrid-2023" }.count >= 50)
        #expect(grids.annual.allSatisfy { $0.gramsPerKWh >= 0 && $0.gramsPerKWh < 1500 })
    }

    @Test("Each zone's daily profile averages to its annual mean (every UTC hour occurs 365 times in 2023)")
    func profilesAverageToAnnual() throws {
        #expect(grids.profiles.count == 12)
        for p in grids.profiles {
            let annual = try #require(grids.annual.first { $0.region == p.region && $0.factor == p.factor && $0.source == p.source })
            let mean = p.hourlyMeanUTC.reduce(0, +) / 24
            // Both are rounded to 0.1 g/kWh when derived.
            #expect(abs(mean - annual.gramsPerKWh) <= 0.1, "\(p.region) \(p.factor)")
        }
    }

    @Test("Direct factors sit below life-cycle ones for the same zone and year")
    func directBelowLifecycle() {
        for p in grids.profiles where p.factor == .direct {
            let lca = grids.profiles.first { $0.region == p.region && $0.factor == .lifecycle }!
            #expect(zip(p.hourlyMeanUTC, lca.hourlyMeanUTC).allSatisfy { $0 < $1 }, "\(p.region)")
        }
    }

    @Test("A profile's points tile the range hour by hour and repeat every day")
    func profilePoints() throws {
        let p = try #require(grids.profile(region: "DE", factor: .direct))
        let start = 1_700_000_000.0 + 1234
        let points = p.points(from: start, to: start + 2 * 86_400)
        #expect(points.first!.start <= start && points.last!.end >= start + 2 * 86_400)
        #expect(zip(points, points.dropFirst()).allSatisfy { $0.end == $1.start })
        for i in 0..<24 { #expect(points[i].value == points[i + 24].value) }
    }

    @Test("A scenario's grid key takes the annual average; an unknown grid names the key and the file")
    func scenarioGrid() throws {
        let base = try String(contentsOfFile: "\(repositoryData)/scenarios/mixtral-single-node.yaml", encoding: .utf8)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("joule-grid-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: folder) }
        func scenario(_ carbon: String) throws -> String {
            let lines = base.split(separator: "\n", omittingEmptySubsequences: false)
            guard let i = lines.firstIndex(where: { $0.hasPrefix("carbon:") }) else { throw CatalogTestError.noCarbon }
            var j = i + 1
            while j < lines.count, lines[j].hasPrefix(" ") { j += 1 }
            let text = (lines[..<i] + ["carbon: \(carbon)"] + lines[j...]).joined(separator: "\n")
            let path = "\(folder)/s-\(UUID().uuidString).yaml"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let good = try Catalog.loadScenario(at: try scenario("{region: CN-BJ, grid: CN-BJ}"), library: ScenarioTests.library, dataDirectory: repositoryData)
        #expect(good.scenario.carbon.points[0].value == grids.annual(region: "CN-BJ")!.gramsPerKWh)
        #expect(good.scenario.carbon.metadata.sourceLabel.hasPrefix("mee-2023"))
        #expect {
            try Catalog.loadScenario(at: try scenario("{region: XX, grid: XX-NOWHERE}"), library: ScenarioTests.library, dataDirectory: repositoryData)
        } throws: { "\($0)".contains("carbon.grid") && "\($0)".contains("XX-NOWHERE") }
    }
}

enum CatalogTestError: Error { case noCarbon }
