import Accounting
import Calibration
import Catalog
import Foundation
import Measured
import Testing
import Units

/// A setup with no host and PUE 1, so request energies are GPU energies.
func bareSetup(policy: any AttributionPolicy = ProportionalToActive(), split: ActiveSplit = .tokens, interval: Double = 10, pue: Double = 1) -> MeasuredSetup {
    MeasuredSetup(
        hostIdleWattsPerGPU: 0, hostPerGPUWatt: 0, gpuIdleWatts: 0, pue: pue,
        carbon: .constant(CarbonIntensity(gramsPerKWh: 500), region: "T", signal: .average, source: "test"),
        embodied: EmbodiedModel(id: "t", dieAreaSquareCentimetres: 8, kilogramsPerSquareCentimetre: 1, memoryGigabytes: 80, kilogramsPerGigabyte: 0.1, lifetimeYears: 4, source: "test"),
        policy: policy, intervalSeconds: interval, activeSplit: split
    )
}

func constantTrack(gpu: Int, watts: Double, from a: Double, to b: Double) -> GPUEnergyTrack {
    GPUEnergyTrack(gpu: gpu, uuid: nil, basis: .integratedPower, times: [a, b], joules: [0, watts * (b - a)])
}

func request(_ id: String, _ arrival: Double, first: Double?, finish: Double?, prompt: Int? = 100, output: Int? = 11, gpus: [Int] = [0]) -> MeasuredRequest {
    MeasuredRequest(id: id, arrival: arrival, firstToken: first, finish: finish, promptTokens: prompt, cachedTokens: 0, outputTokens: output, gpus: gpus, line: 1)
}

@Suite("Measured attribution")
struct MeasuredAttributionTests {
    let telemetry = PowerTelemetry(format: "test", origin: "t", tracks: [constantTrack(gpu: 0, watts: 300, from: 0, to: 10)], issues: [], samples: 2)

    @Test("A worked case: steps split by tokens, idle by the policy")
    func worked() {
        // A decodes 10 tokens/s over [0, 4]; B 10 tokens/s over [2, 6] (first tokens at arrival: no prefill);
        // [6, 10] is idle. 300 W throughout: 3000 J.
        let log = RequestLog(format: "test", origin: "t", requests: [
            request("A", 0, first: 0, finish: 4, output: 41), request("B", 2, first: 2, finish: 6, output: 41),
        ], issues: [])
        let books = MeasuredAttribution.attribute(telemetry, log, setup: bareSetup())
        let a = books.records[0], b = books.records[1]
        // Direct: A alone 600 J, shared 300 J each, B alone 600 J; idle 1200 J in proportion to 900:900.
        #expect(abs(a.gpuActiveJoules - 900) < 1e-9 && abs(b.gpuActiveJoules - 900) < 1e-9)
        #expect(abs(a.gpuIdleJoules - 600) < 1e-9 && abs(b.gpuIdleJoules - 600) < 1e-9)
        #expect(books.conservationResidual < 1e-12)
        #expect(books.intervals.count == 1 && abs(books.intervals[0].busyFraction - 0.6) < 1e-12)
        #expect(abs(a.operationalCarbonGrams - 1500 / 3.6e6 * 500) < 1e-12)

        // B twice A's rate: the shared seconds split 1:2.
        let skewed = RequestLog(format: "test", origin: "t", requests: [
            request("A", 0, first: 0, finish: 4, output: 41), request("B", 2, first: 2, finish: 6, output: 81),
        ], issues: [])
        let s = MeasuredAttribution.attribute(telemetry, skewed, setup: bareSetup())
        #expect(abs(s.records[0].gpuActiveJoules - 800) < 1e-9 && abs(s.records[1].gpuActiveJoules - 1000) < 1e-9)
        // Equal per request-second: both spent 4 s on the engine.
        let e = MeasuredAttribution.attribute(telemetry, skewed, setup: bareSetup(policy: EqualPerRequestSecond()))
        #expect(abs(e.records[0].gpuIdleJoules - 600) < 1e-9)
        // Split by time: the shared seconds split evenly whatever the tokens.
        let t = MeasuredAttribution.attribute(telemetry, skewed, setup: bareSetup(split: .time))
        #expect(abs(t.records[0].gpuActiveJoules - 900) < 1e-9)
    }

    @Test("The batch profile holds the busy slices: seconds, energy and tokens by requests on the engine")
    func batchProfile() {
        let log = RequestLog(format: "test", origin: "t", requests: [
            request("A", 0, first: 0, finish: 4, output: 41), request("B", 2, first: 2, finish: 6, output: 41),
        ], issues: [])
        let books = MeasuredAttribution.attribute(telemetry, log, setup: bareSetup())
        #expect(books.batchProfile.map(\.label) == ["1", "2–3"])
        let (one, two) = (books.batchProfile[0], books.batchProfile[1])
        #expect(one.seconds == 4 && abs(one.gpuJoules - 1200) < 1e-9 && abs(one.outputTokens - 40) < 1e-9)
        #expect(two.seconds == 2 && abs(two.gpuJoules - 600) < 1e-9 && two.meanBatch == 2 && abs(two.outputTokens - 40) < 1e-9)
        #expect(abs(two.interTokenLatencySeconds - 0.1) < 1e-12 && abs(one.gpuWattsPerGPU - 300) < 1e-9)
        // Every busy joule is in exactly one bin.
        let busy = books.records.reduce(0) { $0 + $1.gpuActiveJoules }
        #expect(abs(books.batchProfile.reduce(0) { $0 + $1.gpuJoules } - busy) < 1e-9)
    }

    @Test("Clock skew: telemetry 2 s ahead of the log is found, and the offset that undoes it named", arguments: [2.0, -1.5, 0])
    func skew(_ ahead: Double) throws {
        let requests = (0..<30).map { i in request("r\(i)", Double(i) * 6, first: Double(i) * 6 + 0.3, finish: Double(i) * 6 + 2.5 + Double(i % 3)) }
        var times: [Double] = [], joules: [Double] = [], total = 0.0
        for k in 0...2000 {
            let t = Double(k) * 0.1
            let busy = requests.contains { $0.arrival <= t - ahead && t - ahead < $0.finish! }
            if k > 0 { total += (busy ? 400 : 100) * 0.1 }
            times.append(t)
            joules.append(total)
        }
        let telemetry = PowerTelemetry(format: "t", origin: "t", tracks: [GPUEnergyTrack(gpu: 0, uuid: nil, basis: .integratedPower, times: times, joules: joules)], issues: [], samples: 0)
        let e = try #require(ClockSkew.estimate(telemetry, requests, engines: [[0]]))
        #expect(abs(e.offsetSeconds + ahead) <= e.resolution + 1e-9)
        #expect(e.agreement >= e.agreementAtZero)
    }

    @Test("A request alone on its engine with no idle gets exactly what the engine drew over its life")
    func alone() {
        let log = RequestLog(format: "test", origin: "t", requests: [request("A", 0, first: 1.5, finish: 10, prompt: 5000, output: 300)], issues: [])
        let books = MeasuredAttribution.attribute(telemetry, log, setup: bareSetup(pue: 1.3))
        #expect(abs(books.records[0].gpuActiveJoules - 3000) < 1e-9 && books.records[0].gpuIdleJoules == 0)
        #expect(abs(books.records[0].facilityJoules - 3900) < 1e-9)
    }

    @Test("Requests with missing spans are recorded and reported, never dropped")
    func missing() {
        let log = RequestLog(format: "test", origin: "t", requests: [
            request("running", 1, first: 2, finish: nil, output: nil),
            request("no-first-token", 3, first: nil, finish: 5),
            request("elsewhere", 3, first: 4, finish: 5, gpus: [7]),
            request("later", 20, first: 21, finish: 22),
        ], issues: [])
        let books = MeasuredAttribution.attribute(telemetry, log, setup: bareSetup())
        #expect(books.records.count == 4)
        let by = Dictionary(uniqueKeysWithValues: zip(books.requestIds, books.records))
        #expect(by["running"]!.inFlight && by["running"]!.facilityJoules > 0)
        #expect(!by["no-first-token"]!.inFlight && by["no-first-token"]!.gpuActiveJoules > 0)
        #expect(by["elsewhere"]!.facilityJoules == 0 && by["later"]!.facilityJoules == 0)
        #expect(books.issues.contains { $0.kind == .uncovered && $0.message.contains("GPUs the telemetry does not have: 7") })
        #expect(books.issues.contains { $0.kind == .uncovered && $0.subject == "later" })
        #expect(books.conservationResidual < 1e-12)
    }

    @Test("With no request at all the energy stays unattributed, and the books still balance")
    func noRequests() {
        let books = MeasuredAttribution.attribute(telemetry, RequestLog(format: "t", origin: "t", requests: [], issues: []), setup: bareSetup())
        #expect(books.records.isEmpty && abs(books.unattributedFacilityJoules - 3000) < 1e-9 && books.conservationResidual < 1e-12)
    }

    /// A random fleet: 1–6 GPUs with uneven sampling, random GPU sets, gaps in the log.
    static func randomCase(_ seed: UInt64) -> (PowerTelemetry, RequestLog, MeasuredSetup) {
        var rng = SplitMix64(seed: seed)
        let gpus = 1 + Int(rng.next() % 6)
        var tracks: [GPUEnergyTrack] = []
        for g in 0..<gpus {
            var t = rng.unit() * 3, times: [Double] = [], joules: [Double] = []
            var total = 0.0
            while t < 120 || times.count < 2 {
                if let last = times.last { total += (50 + rng.unit() * 600) * (t - last) }
                times.append(t)
                joules.append(total)
                t += 0.05 + rng.exponential(mean: 1)
            }
            tracks.append(GPUEnergyTrack(gpu: g, uuid: nil, basis: .integratedPower, times: times, joules: joules))
        }
        var requests: [MeasuredRequest] = []
        for i in 0..<Int(rng.next() % 60) {
            let arrival = rng.unit() * 140 - 10
            let first: Double? = rng.unit() < 0.9 ? arrival + rng.exponential(mean: 1) : nil
            let finish: Double? = rng.unit() < 0.9 ? (first ?? arrival) + rng.exponential(mean: 10) : nil
            let set = (0..<(gpus + 1)).filter { _ in rng.unit() < 0.4 }
            requests.append(MeasuredRequest(
                id: "r\(i)", arrival: arrival, firstToken: first, finish: finish, promptTokens: rng.unit() < 0.9 ? Int(rng.next() % 4000) : nil,
                cachedTokens: 0, outputTokens: rng.unit() < 0.9 ? Int(rng.next() % 500) : nil, gpus: set, line: i + 1
            ))
        }
        let policy = AttributionPolicies.all[Int(rng.next() % 2)]
        var setup = bareSetup(policy: policy, split: rng.unit() < 0.5 ? .tokens : .time, interval: [1, 7.5, 60][Int(rng.next() % 3)], pue: 1 + rng.unit())
        setup.hostIdleWattsPerGPU = 100 * rng.unit()
        setup.hostPerGPUWatt = rng.unit()
        setup.gpuIdleWatts = 80
        return (PowerTelemetry(format: "t", origin: "t", tracks: tracks, issues: [], samples: 0), RequestLog(format: "t", origin: "t", requests: requests, issues: []), setup)
    }

    @Test("Laws on random fleets: conservation to 1e-9, no negative share, intervals hold the measured GPU energy", arguments: 0..<200)
    func laws(_ seed: Int) {
        let (telemetry, log, setup) = Self.randomCase(UInt64(seed))
        let books = MeasuredAttribution.attribute(telemetry, log, setup: setup)
        #expect(books.conservationResidual <= 1e-9)
        #expect(books.records.count == log.requests.count)
        #expect(books.records.allSatisfy { $0.gpuActiveJoules >= -1e-9 && $0.gpuIdleJoules >= -1e-9 && $0.hostJoules >= -1e-9 })
        let intervalGPU = books.intervals.reduce(0) { $0 + $1.gpuActiveJoules + $1.gpuIdleJoules }
        #expect(abs(intervalGPU - telemetry.totalJoules) <= 1e-9 * telemetry.totalJoules)
        let records = books.records.reduce(0) { $0 + $1.facilityJoules }
        #expect(abs(records + books.unattributedFacilityJoules - books.facilityJoules) <= 1e-9 * books.facilityJoules)
    }

    @Test("Shifting every clock by the same amount changes no request's figures", arguments: [3600.0, -31_536_000.0])
    func shift(_ by: Double) {
        let (telemetry, log, setup) = Self.randomCase(42)
        let moved = RequestLog(format: "t", origin: "t", requests: log.requests.map { r in
            var r = r
            r.arrival += by
            r.firstToken = r.firstToken.map { $0 + by }
            r.finish = r.finish.map { $0 + by }
            return r
        }, issues: [])
        let a = MeasuredAttribution.attribute(telemetry, log, setup: setup).records
        let b = MeasuredAttribution.attribute(telemetry.shifted(by: by), moved, setup: setup).records
        #expect(a.count == b.count)
        for (x, y) in zip(a, b) {
            #expect(abs(x.facilityJoules - y.facilityJoules) <= 1e-6 * max(1, x.facilityJoules))
        }
    }
}

let dataDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Data").path

@Suite("joule measure's inputs")
struct MeasureInputTests {
    @Test("Fixture telemetry and spans make a measured run whose summary is labelled measured")
    func fixtureRun() throws {
        let library = try Catalog.load(from: dataDirectory)
        let run = try Catalog.measure(
            MeasureRequest(power: "\(fixtures)/zeus-small.json", requests: "\(fixtures)/spans-small.json", grid: "CN"),
            name: "fixture", library: library, dataDirectory: dataDirectory
        )
        #expect(run.summary.mode == "measured")
        #expect(run.books.records.count == 2 && run.books.conservationResidual <= 1e-9)
        #expect(abs(run.books.gpuJoules - 900) < 1e-9)
        #expect(run.descriptionText.contains("mode: measured") && run.descriptionText.contains("sha256: "))
        #expect(run.books.engines == [[0, 1]])
    }

    @Test("A measured run's batch sizes become calibration rows, and fitting to them lowers the loss")
    func calibrationRows() throws {
        let library = try Catalog.load(from: dataDirectory)
        // An engine of 4 GPUs whose power rises with the requests on it.
        var tracks: [GPUEnergyTrack] = []
        let log = RequestLog(format: "t", origin: "t", requests: (0..<40).map { i in
            request("r\(i)", Double(i) * 2, first: Double(i) * 2 + 0.2, finish: Double(i) * 2 + 0.2 + Double(1 + i % 7) * 3, prompt: 800, output: 100 * (1 + i % 7), gpus: [0, 1, 2, 3])
        }, issues: [])
        for g in 0..<4 {
            var times: [Double] = [], joules: [Double] = [], total = 0.0
            for k in 0...1200 {
                let t = Double(k) * 0.1
                let live = log.requests.filter { $0.arrival <= t && t < $0.finish! }.count
                if k > 0 { total += (100 + 40 * Double(live)) * 0.1 }
                times.append(t)
                joules.append(total)
            }
            tracks.append(GPUEnergyTrack(gpu: g, uuid: nil, basis: .integratedPower, times: times, joules: joules))
        }
        let books = MeasuredAttribution.attribute(PowerTelemetry(format: "t", origin: "t", tracks: tracks, issues: [], samples: 0), log, setup: bareSetup())
        let summary = books.summary(name: "t", setup: bareSetup())
        let rows = Catalog.measuredServingRows(run: 1, summary: summary, model: "llama-3.1-70b", hardware: "h100", minSeconds: 5)
        #expect(rows.count >= 2)
        #expect(rows.allSatisfy { $0.request.tp == 4 && $0.gpuPowerWatts > 100 && $0.interTokenLatencySeconds > 0 })
        let start = try Catalog.loadFittedParameters(from: dataDirectory)
        let before = CalibrationFit.loss(try library.compare(rows))
        let fitted = try CalibrationFit(library: library).fitServing(rows, start: start, iterations: 60)
        #expect(CalibrationFit.loss(try library.applying(fitted).compare(rows)) < before)
    }

    @Test("Metered host power replaces the host model: facility energy is the server reading × PUE")
    func meteredHost() throws {
        let library = try Catalog.load(from: dataDirectory)
        var request = MeasureRequest(power: "\(fixtures)/zeus-small.json", requests: "\(fixtures)/spans-small.json", grid: "CN")
        let modelled = try Catalog.measure(request, name: "m", library: library, dataDirectory: dataDirectory)
        request.hostPower = "\(fixtures)/host-small.csv"
        let metered = try Catalog.measure(request, name: "m", library: library, dataDirectory: dataDirectory)
        // 1,000 W for 2 s (the N/A reading left out): 2,000 J at the server, 900 J of it the GPUs'.
        #expect(abs(metered.books.facilityJoules - 2000 * metered.setup.pue) < 1e-6)
        #expect(abs(metered.books.facilityJoules - modelled.books.facilityJoules) > 1)
        #expect(metered.books.conservationResidual <= 1e-9)
        #expect(metered.descriptionText.contains("metered: "))
        #expect(metered.books.issues.contains { $0.kind == .missingValue && $0.subject == "host" })
        request.hostGPUs = "rack-1=0-1"
        #expect { try Catalog.measure(request, name: "m", library: library, dataDirectory: dataDirectory) } throws: { "\($0)".contains("--host-gpus") }
    }

    @Test("Bad flags name the flag", arguments: [
        (MeasureRequest(power: "\(fixtures)/zeus-small.json", requests: "\(fixtures)/spans-small.json", grid: "Atlantis"), "--grid"),
        (MeasureRequest(power: "\(fixtures)/zeus-small.json", requests: "\(fixtures)/spans-small.json", grid: "CN", policy: "fair"), "--policy"),
        (MeasureRequest(power: "\(fixtures)/zeus-small.json", requests: "\(fixtures)/spans-small.json", grid: "CN", intervalSeconds: 0), "--interval"),
        (MeasureRequest(power: "/nonexistent.csv", requests: "\(fixtures)/spans-small.json", grid: "CN"), "--power: cannot read"),
        (MeasureRequest(power: "http://node:9400/metrics", requests: "\(fixtures)/spans-small.json", grid: "CN"), "is a URL"),
        (MeasureRequest(power: "\(fixtures)/zeus-small.json", powerFormat: .dcgm, requests: "\(fixtures)/spans-small.json", grid: "CN"), "zeus-small.json"),
    ] as [(MeasureRequest, String)])
    func badFlags(_ request: MeasureRequest, _ expected: String) throws {
        let library = try Catalog.load(from: dataDirectory)
        #expect { try Catalog.measure(request, name: "x", library: library, dataDirectory: dataDirectory) } throws: { "\($0)".contains(expected) }
    }
}
