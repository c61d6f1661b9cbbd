import MoE
import Testing

@Suite struct ArchitectureTests {
    @Test func deepseekV3KVCacheIsTheLatentPlusRopeKey() {
        #expect(Fixture.deepseekV3.kvCacheBytesPerToken == 70_272)
    }

    @Test func activeIsPartOfTotal() {
        for model in [Fixture.deepseekV3, Fixture.denseModel] {
            let p = model.parameters
            #expect(p.active > 0 && p.active < p.total)
        }
    }

    @Test func aDenseModelActivatesEverythingButTheEmbedding() {
        let p = Fixture.denseModel.parameters
        #expect(abs(p.total - p.active - p.embedding) < 1)
    }

    @Test(arguments: [1, 2, 4, 6, 8])
    func fewerExpertsPerTokenFewerActiveParameters(k: Int) {
        var model = Fixture.deepseekV3
        model.moe?.expertsPerToken = k
        let fewer = model.parameters.active
        model.moe?.expertsPerToken = k + 1
        #expect(model.parameters.active > fewer)
        #expect(model.parameters.total == Fixture.deepseekV3.parameters.total)
    }

    @Test func validationNamesEveryBadField() {
        var model = Fixture.deepseekV3
        model.hidden = 0
        model.moe?.expertsPerToken = 300
        model.moe?.groups = 7
        let fields = Set(model.validate().map(\.field))
        #expect(fields.isSuperset(of: ["hiddenSize", "ffn.moe.expertsPerToken", "ffn.moe.groups"]))
        #expect(Fixture.deepseekV3.validate().isEmpty)
        #expect(Fixture.denseModel.validate().isEmpty)
    }
}
