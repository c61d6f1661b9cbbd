import Accounting
import Foundation
import Measured
import Testing

let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/measured").path

func fixture(_ name: String) throws -> String { try String(contentsOfFile: "\(fixtures)/\(name)", encoding: .utf8) }
func fixtureData(_ name: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: "\(fixtures)/\(name)")) }

/// 2025-06-01T12:00:00Z, the fixtures' first sample.
let t0 = 1_748_779_200.0

@Suite("Telemetry readers")
struct TelemetryReaderTests {
    @Test("nvidia-smi CSV: integrated power, with the N/A sample, the step back and the gap reported")
    func nvidiaSMI() throws {
        let t = try NvidiaSMIReader.read(try fixture("nvidia-smi-small.csv"), file: "smi.csv")
        #expect(t.tracks.map(\.gpu) == [0, 1])
        #expect(t.tracks.map(\.uuid) == ["GPU-aaaa", "GPU-bbbb"])
        #expect(t.tracks.allSatisfy { $0.basis == .integratedPower })
        // GPU 0: (100+300)/2 + 300 + (300+100)/2 + 10 × 100; the 999 W sample at 1.5 s goes back in time and is dropped.
        #expect(abs(t.tracks[0].totalJoules - 1700) < 1e-9)
        // GPU 1: its N/A sample is left out; 200 W throughout.
        #expect(abs(t.tracks[1].totalJoules - 2600) < 1e-9)
        #expect(t.tracks[0].start == t0 && t.tracks[0].end == t0 + 13)
        let kinds = t.issues.map(\.kind)
        #expect(kinds.filter { $0 == .skew }.count == 1)
        #expect(kinds.filter { $0 == .missingValue }.count == 1)
        #expect(t.issues.contains { $0.kind == .gap && $0.subject == "GPU 0" && $0.message.contains("10 s") })
        #expect(t.issues.first { $0.kind == .skew }!.message.contains("line 8"))
        // Energy over part of a sample interval is its share of the interval's energy (the mean power between samples).
        #expect(abs(t.tracks[0].energy(from: t0, to: t0 + 0.5) - 100) < 1e-9)
    }

    @Test("nvidia-smi CSV without units, and power.draw.instant")
    func nvidiaSMINoUnits() throws {
        let t = try NvidiaSMIReader.read(try fixture("nvidia-smi-nounits.csv"), file: "smi.csv")
        #expect(t.tracks.count == 1 && abs(t.totalJoules - 200) < 1e-9)
        #expect(t.issues.isEmpty)
    }

    @Test("nvidia-smi local time is shifted to UTC by the given offset")
    func nvidiaSMIOffset() throws {
        let t = try NvidiaSMIReader.read(try fixture("nvidia-smi-nounits.csv"), file: "smi.csv", utcOffsetSeconds: 8 * 3600)
        #expect(t.tracks[0].start == t0 - 8 * 3600)
    }

    @Test("Malformed nvidia-smi input names the line and field", arguments: [
        ("2025/06/01 12:00:00.000, 0, 100 W\n", "smi.csv:1, field 'header'"),
        ("timestamp, index, power.draw [W]\nyesterday, 0, 100 W\n", "smi.csv:2, field 'timestamp'"),
        ("timestamp, index, power.draw [W]\n2025/06/01 12:00:00.000, x, 100 W\n", "smi.csv:2, field 'index'"),
        ("timestamp, index, power.draw [W]\n2025/06/01 12:00:00.000, 0, lots\n", "smi.csv:2, field 'power.draw'"),
        ("timestamp, index, power.draw [W]\n2025/06/01 12:00:00.000, 0, 90000 W\n", "expected 0 to 5000 W"),
        ("timestamp, index, power.draw [W]\n2025/06/01 12:00:00.000, 0\n", "smi.csv:2: expected 3 columns"),
        ("timestamp, index, power.draw [W]\n2025/06/01 12:00:00.000, 0, 100 W\n", "at least two samples"),
        ("", "empty"),
        // A repeated column name moves the later columns: the line must reach the last one (found by the property test).
        ("timestamp, timestamp, index, power.draw [W]\n2025/06/01 12:00:00.000, 0, 100 W\n", "smi.csv:2: expected 4 columns, got 3"),
    ])
    func nvidiaSMIErrors(_ text: String, _ expected: String) {
        #expect { try NvidiaSMIReader.read(text, file: "smi.csv") } throws: { "\($0)".contains(expected) }
    }

    @Test("With --skip-bad-lines a bad line is reported and the rest read")
    func skipBadLines() throws {
        let text = "timestamp, index, power.draw [W]\n2025/06/01 12:00:00.000, 0, 100 W\nbad, 0, 1 W\n2025/06/01 12:00:01.000, 0, 100 W\n"
        let t = try NvidiaSMIReader.read(text, file: "smi.csv", skipBadLines: true)
        #expect(abs(t.totalJoules - 100) < 1e-9)
        #expect(t.issues.map(\.kind) == [.skippedLine])
        #expect(t.issues[0].message.contains("smi.csv:3"))
    }

    @Test("DCGM dump: counters preferred, a reset and a 32-bit wrap reported and counted")
    func dcgm() throws {
        let t = try DCGMReader.read(try fixture("dcgm-small.prom"), file: "dcgm.prom")
        #expect(t.tracks.map(\.gpu) == [0, 1])
        #expect(t.tracks.allSatisfy { $0.basis == .counter })
        // GPU 0: 250 + 300 J, then the counter restarts and shows 50 J.
        #expect(abs(t.tracks[0].totalJoules - 600) < 1e-6)
        // GPU 1: wraps at 2^32 mJ: 200 J across the wrap, then 200 and 200.
        #expect(abs(t.tracks[1].totalJoules - 600) < 1e-6)
        #expect(t.issues.contains { $0.kind == .counterReset && $0.subject == "GPU 0" })
        #expect(t.issues.contains { $0.kind == .counterWrap && $0.subject == "GPU 1" })
        #expect(t.tracks[0].uuid == "GPU-aaaa")
        #expect(t.tracks[0].start == t0 && t.tracks[0].end == t0 + 3)
    }

    @Test("DCGM samples with their own timestamps need no scrape lines; power alone is integrated")
    func dcgmTimestamps() throws {
        let t = try DCGMReader.read(try fixture("dcgm-timestamps.prom"), file: "d.prom")
        #expect(t.tracks.count == 1 && t.tracks[0].basis == .integratedPower)
        #expect(abs(t.totalJoules - 350) < 1e-9)
    }

    @Test("Several hosts in one DCGM dump are numbered host by host, and said so")
    func dcgmHosts() throws {
        var text = ""
        for (s, stamp) in ["12:00:00", "12:00:01"].enumerated() {
            text += "# scrape 2025-06-01T\(stamp)Z\n"
            for host in ["b", "a"] { for g in 0..<2 { text += "DCGM_FI_DEV_POWER_USAGE{gpu=\"\(g)\",Hostname=\"\(host)\"} \(100 + s)\n" } }
        }
        let t = try DCGMReader.read(text, file: "d.prom")
        #expect(t.tracks.map(\.gpu) == [0, 1, 2, 3])
        #expect(t.issues.contains { $0.message.contains("a → 0…1, b → 2…3") })
    }

    @Test("Malformed DCGM input names the line", arguments: [
        ("DCGM_FI_DEV_POWER_USAGE{gpu=\"0\"} 100\n", "d.prom:1, field 'time'"),
        ("# scrape soon\n", "d.prom:1, field 'scrape'"),
        ("# scrape 2025-06-01T12:00:00Z\nDCGM_FI_DEV_POWER_USAGE{gpu=\"0\" 100\n", "d.prom:2"),
        ("# scrape 2025-06-01T12:00:00Z\nDCGM_FI_DEV_POWER_USAGE{gpu=\"0\"} hot\n", "expected a number"),
        ("# scrape 2025-06-01T12:00:00Z\nDCGM_FI_DEV_POWER_USAGE{device=\"nvidia0\"} 100\n", "field 'gpu'"),
        ("# scrape 2025-06-01T12:00:00Z\nDCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{gpu=\"0\"} -5\n", "non-negative millijoule"),
        ("# scrape 2025-06-01T12:00:00Z\nDCGM_FI_DEV_POWER_USAGE{gpu=\"0\"} 100 noon\n", "timestamp in milliseconds"),
        ("# scrape 2025-06-01T12:00:00Z\nDCGM_FI_PROF_SM_ACTIVE{gpu=\"0\"} 0.5\n", "no DCGM_FI_DEV_POWER_USAGE"),
    ])
    func dcgmErrors(_ text: String, _ expected: String) {
        #expect { try DCGMReader.read(text, file: "d.prom") } throws: { "\($0)".contains(expected) }
    }

    @Test("Zeus power timeline: pairs or objects per GPU")
    func zeus() throws {
        let t = try ZeusReader.read(try fixtureData("zeus-small.json"), file: "z.json")
        #expect(t.tracks.map(\.gpu) == [0, 1])
        #expect(abs(t.tracks[0].totalJoules - 500) < 1e-9 && abs(t.tracks[1].totalJoules - 400) < 1e-9)
        let wrapped = try ZeusReader.read(Data(#"{"power_timeline": {"3": [[1748779200, 100], [1748779201, 100]]}}"#.utf8), file: "z.json")
        #expect(wrapped.tracks.map(\.gpu) == [3])
    }

    @Test("Malformed Zeus input names the GPU and sample", arguments: [
        ("[1, 2]", "expected a JSON object"),
        ("{\"x\": []}", "field 'x'"),
        ("{\"0\": [[1748779200, -4], [1748779201, 1]]}", "field '0[0]': expected power"),
        ("{\"0\": [[\"noon\", 100]]}", "field '0[0]': expected a time"),
        ("{\"0\": [[1748779200, 100]]}", "at least two samples"),
        ("{\"0\": [", "does not parse"),
    ])
    func zeusErrors(_ json: String, _ expected: String) {
        #expect { try ZeusReader.read(Data(json.utf8), file: "z.json") } throws: { "\($0)".contains(expected) }
    }
}

@Suite("Request log readers")
struct RequestLogReaderTests {
    @Test("CSV request log: any column order, quoted ids, ranges, missing spans reported")
    func csv() throws {
        let log = try RequestCSVReader.read(try fixture("requests-small.csv"), file: "r.csv")
        #expect(log.requests.map(\.id) == ["a", "c,1", "b"])
        let a = log.requests[0]
        #expect(a.arrival == t0 && a.firstToken == t0 + 0.5 && a.finish == t0 + 2)
        #expect(a.promptTokens == 1000 && a.cachedTokens == 200 && a.outputTokens == 31 && a.gpus == [0, 1])
        #expect(log.requests[2].gpus == [0, 1] && log.requests[2].finish == nil && log.requests[2].outputTokens == nil)
        #expect(log.requests[1].gpus.isEmpty)
        #expect(log.issues.map(\.kind) == [.missingSpan])
        #expect(log.issues[0].subject == "b" && log.issues[0].message.contains("finish, output tokens"))
    }

    @Test("Malformed CSV request logs name the line and field", arguments: [
        ("request_id,arrival\n", "missing first_token, finish"),
        ("request_id,arrival,first_token,finish,prompt_tokens,cached_tokens,output_tokens,gpus\n1,noon,,,1,0,1,0\n", "r.csv:2, field 'arrival'"),
        ("request_id,arrival,first_token,finish,prompt_tokens,cached_tokens,output_tokens,gpus\n1,2025-06-01T12:00:01Z,2025-06-01T12:00:00Z,,1,0,1,0\n", "field 'first_token'"),
        ("request_id,arrival,first_token,finish,prompt_tokens,cached_tokens,output_tokens,gpus\n1,2025-06-01T12:00:00Z,2025-06-01T12:00:02Z,2025-06-01T12:00:01Z,1,0,1,0\n", "field 'finish'"),
        ("request_id,arrival,first_token,finish,prompt_tokens,cached_tokens,output_tokens,gpus\n1,2025-06-01T12:00:00Z,,,ten,0,1,0\n", "field 'prompt_tokens'"),
        ("request_id,arrival,first_token,finish,prompt_tokens,cached_tokens,output_tokens,gpus\n1,2025-06-01T12:00:00Z,,,10,20,1,0\n", "field 'cached_tokens': expected at most prompt_tokens"),
        ("request_id,arrival,first_token,finish,prompt_tokens,cached_tokens,output_tokens,gpus\n1,2025-06-01T12:00:00Z,,,10,0,-1,0\n", "field 'output_tokens'"),
        ("request_id,arrival,first_token,finish,prompt_tokens,cached_tokens,output_tokens,gpus\n1,2025-06-01T12:00:00Z,,,10,0,1,0;x\n", "field 'gpus'"),
        ("request_id,arrival,first_token,finish,prompt_tokens,cached_tokens,output_tokens,gpus\n1,2025-06-01T12:00:00Z,,,10,0,1,7-3\n", "field 'gpus'"),
        ("request_id,arrival,first_token,finish,prompt_tokens,cached_tokens,output_tokens,gpus\n1,2025-06-01T12:00:00Z,,,10,0,1,0\n1,2025-06-01T12:00:00Z,,,10,0,1,0\n", "r.csv:3, field 'request_id': '1' is also on line 2"),
        ("request_id,arrival,first_token,finish,prompt_tokens,cached_tokens,output_tokens,gpus\n,2025-06-01T12:00:00Z,,,10,0,1,0\n", "field 'request_id'"),
    ])
    func csvErrors(_ text: String, _ expected: String) {
        #expect { try RequestCSVReader.read(text, file: "r.csv") } throws: { "\($0)".contains(expected) }
    }

    @Test("OTLP/JSON spans: llm_request spans read, others left alone, missing fields reported")
    func otlp() throws {
        let log = try OTLPReader.read(try fixtureData("spans-small.json"), file: "s.json")
        #expect(log.requests.map(\.id) == ["cmpl-1", "cmpl-2"])
        let r = log.requests[0]
        #expect(r.arrival == t0 && abs(r.scheduled! - (t0 + 0.1)) < 1e-6 && abs(r.firstToken! - (t0 + 0.5)) < 1e-6 && r.finish == t0 + 2)
        #expect(r.promptTokens == 1000 && r.outputTokens == 31 && r.cachedTokens == 0 && r.gpus == [0, 1] && r.engine == "node-a/engine-0")
        #expect(log.requests[1].cachedTokens == 32 && log.requests[1].firstToken == nil)
        #expect(log.issues.contains { $0.kind == .missingSpan && $0.subject == "cmpl-2" && $0.message.contains("first token") })
        #expect(log.issues.contains { $0.message.contains("1 of 2 spans carry no gen_ai.usage.cached_tokens") })
        #expect(log.issues.contains { $0.message.contains("1 spans not named llm_request") })
    }

    @Test("OTLP protobuf (encoded by opentelemetry-proto, Scripts/make-otlp-fixture) reads as its JSON does")
    func otlpProtobuf() throws {
        let json = try OTLPReader.read(try fixtureData("spans-small.json"), file: "s.json")
        let proto = try OTLPReader.readProtobuf(try fixtureData("spans-small.pb"), file: "s.pb")
        #expect(proto.requests == json.requests)
        #expect(proto.issues.map(\.kind) == json.issues.map(\.kind))
    }

    @Test("Malformed protobuf names the byte", arguments: [[0x0A, 0x05, 0x01], [0x0A], [0x0F], [0x0A, 0x02, 0x12, 0x09], [0x08, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]] as [[UInt8]])
    func otlpProtobufErrors(_ bytes: [UInt8]) {
        #expect { try OTLPReader.readProtobuf(Data(bytes), file: "s.pb") } throws: { "\($0)".contains("s.pb, field 'byte") }
    }

    @Test("OTLP as JSON Lines reads every line's spans")
    func otlpLines() throws {
        let one = try String(decoding: fixtureData("spans-small.json"), as: UTF8.self).replacingOccurrences(of: "\n", with: " ")
        let two = one.replacingOccurrences(of: "cmpl-", with: "second-")
        let log = try OTLPReader.read(Data((one + "\n" + two + "\n").utf8), file: "s.jsonl")
        #expect(log.requests.count == 4)
    }

    @Test("Malformed OTLP names where", arguments: [
        ("{}", "field 'resourceSpans'"),
        ("not json\n", "s.json:1: expected OTLP/JSON"),
        (#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"llm_request"}]}]}]}"#, "startTimeUnixNano"),
        (#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"llm_request","startTimeUnixNano":"1748779201000000000","endTimeUnixNano":"1748779200000000000"}]}]}]}"#, "field 'finish'"),
        (#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"llm_request","startTimeUnixNano":"1748779201000000000","attributes":[{"key":"joule.gpus","value":{"stringValue":"gpu0"}}]}]}]}]}"#, "joule.gpus"),
    ])
    func otlpErrors(_ json: String, _ expected: String) {
        #expect { try OTLPReader.read(Data(json.utf8), file: "s.json") } throws: { "\($0)".contains(expected) }
    }
}
