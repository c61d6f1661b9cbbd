import Catalog
import Foundation
import Hardware
import MoE
import Testing

/// The repository's Data directory, found from this file's path.
let repositoryData = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Data").path

/// A copy of Data/ in a temporary folder, to break on purpose.
func scratchData() throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("joule-data-\(UUID().uuidString)").path
    try FileManager.default.copyItem(atPath: repositoryData, toPath: dir)
    return dir
}

func replace(in path: String, _ target: String, with replacement: String) throws {
    let text = try String(contentsOfFile: path, encoding: .utf8)
    #expect(text.contains(target), "fixture edit must change something")
    try text.replacingOccurrences(of: target, with: replacement).write(toFile: path, atomically: true, encoding: .utf8)
}

/// Edits a scratch copy of Data/ and expects loading it to fail with a message containing every one of `fragments`.
func expectLoadFailure(editing file: String, _ target: String, with replacement: String, mentions fragments: [String]) throws {
    let dir = try scratchData()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    try replace(in: dir + "/" + file, target, with: replacement)
    #expect {
        try Catalog.load(from: dir)
    } throws: { error in
        fragments.allSatisfy { "\(error)".contains($0) }
    }
}

@Suite struct CatalogTests {
    @Test func shippedDataLoads() throws {
        let library = try Catalog.load(from: repositoryData)
        #expect(Set(library.models.keys).isSuperset(of: ["deepseek-v3", "mixtral-8x7b", "qwen3-30b-a3b", "deepseek-v2-lite", "llama-3.1-70b"]))
        #expect(Set(library.nodes.keys).isSuperset(of: ["h800", "h100"]))
        #expect(try library.node("h800").gpu.id == "h800-sxm5")
        #expect(try library.site("default").pue == 1.27)
        #expect(library.models.values.contains { !$0.isMixtureOfExperts })
    }

    @Test func unknownModelListsTheAvailableOnes() throws {
        let library = try Catalog.load(from: repositoryData)
        #expect {
            try library.model("gpt-5")
        } throws: { error in
            let text = "\(error)"
            return text.contains("unknown model 'gpt-5'") && text.contains("deepseek-v3") && text.contains("mixtral-8x7b")
        }
    }

    @Test func missingFieldNamesFileAndField() throws {
        try expectLoadFailure(editing: "models/deepseek-v3.yaml", "  kvLoraRank: 512\n", with: "", mentions: ["models/deepseek-v3.yaml", "attention.kvLoraRank", "missing"])
    }

    @Test func negativeFieldNamesFileAndField() throws {
        try expectLoadFailure(editing: "hardware/gpus/h800-sxm5.yaml", "capacityGB: 80", with: "capacityGB: -80", mentions: ["hardware/gpus/h800-sxm5.yaml", "memory.capacityGB"])
    }

    @Test func inconsistentFieldIsAnError() throws {
        try expectLoadFailure(editing: "models/deepseek-v3.yaml", "expertsPerToken: 8", with: "expertsPerToken: 300", mentions: ["models/deepseek-v3.yaml", "ffn.moe.expertsPerToken"])
    }

    @Test func wrongTypeGivesTheLine() throws {
        try expectLoadFailure(editing: "hardware/sites/default.yaml", "pue: 1.27", with: "pue: high", mentions: ["hardware/sites/default.yaml:", "'pue'", "expected a number"])
    }

    @Test func unknownGPUInNodeListsGPUs() throws {
        try expectLoadFailure(editing: "hardware/nodes/h800.yaml", "gpu: h800-sxm5", with: "gpu: a100-sxm4", mentions: ["hardware/nodes/h800.yaml", "h100-sxm5"])
    }

    @Test func explicitDataDirectoryMustExist() {
        #expect(throws: CatalogError.self) {
            try Catalog.locateDataDirectory(explicit: "/nonexistent", environment: [:], executablePath: "/bin/joule")
        }
    }
}
