import Calibration
import Catalog
import Foundation
import MoE
import Testing

let dataDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Data").path

@Suite struct CalibrationTableTests {
    static let rows: [CalibrationRow] = {
        do {
            let library = try Catalog.load(from: dataDirectory)
            let runner = CalibrationRunner(
                library: library, trainingPlan: { try Catalog.loadTrainingPlan(at: try Catalog.trainingPlanPath($0, dataDirectory: dataDirectory)) },
                fleetNodeHours: { try Catalog.fleetNodeHours($0, library: library, dataDirectory: dataDirectory) }
            )
            return try runner.run(try Catalog.loadCalibrationTargets(from: dataDirectory))
        } catch {
            Issue.record("calibration could not run: \(error)")
            return []
        }
    }()

    @Test func theTableIsNotEmptyAndCoversTheIssuesChecks() {
        let ids = Set(Self.rows.map(\.target.id))
        for required in [
            "deepseek-v3.parameters.total", "deepseek-v3.parameters.active", "deepseek-v3.kv-cache-bytes",
            "isca25.all-to-all-round", "isca25.tpot", "deepseek.serving.prefill-throughput",
            "deepseek.serving.decode-throughput", "deepseek.serving.decode-speed",
        ] {
            #expect(ids.contains(required), "missing calibration row \(required)")
        }
        #expect(Self.rows.filter { $0.target.id.hasPrefix("deepgemm.") }.count >= 6)
        #expect(Self.rows.filter { $0.target.id.hasPrefix("deepep.") }.count >= 6)
    }

    @Test(arguments: CalibrationTableTests.rows.filter { $0.target.tolerance != nil })
    func withinTolerance(row: CalibrationRow) throws {
        let tolerance = try #require(row.target.tolerance)
        #expect(abs(row.relativeError) <= tolerance, "\(row.target.id): published \(row.target.published), Joule \(row.computed)")
    }

    @Test func theDocumentIsGeneratedFromTheTable() throws {
        let doc = try String(contentsOfFile: dataDirectory + "/../docs/calibration.md", encoding: .utf8)
        #expect(doc.contains(CalibrationReport.markdown(Self.rows)), "docs/calibration.md is stale: run Scripts/generate-calibration-doc")
    }

    @Test func oneParameterSetServesEveryCheck() throws {
        // Prefill and decode system checks use the shipped serving defaults; nothing is overridden per check.
        let text = try String(contentsOfFile: dataDirectory + "/calibration/targets.yaml", encoding: .utf8)
        #expect(!text.contains("expertLoadImbalance"))
        #expect(!text.contains("redundantExperts"))
    }
}

extension CalibrationRow: CustomTestStringConvertible {
    public var testDescription: String { target.id }
}
