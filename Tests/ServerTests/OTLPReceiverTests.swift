import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Ledger
import Logging
import Measured
@testable import Server
import Testing

@Suite("OTLP/HTTP span receiver over loopback")
struct OTLPReceiverTests {
    static let measured = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures/measured").path

    /// A server on an empty ledger with a spool in a fresh folder; its base URL and the spool's path.
    static func start(spool: Bool = true) async throws -> (String, String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("joule-otlp-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let ledger = try Ledger(path: "\(folder)/l.sqlite")
        let server = JouleServer(ledger: ledger, token: "t0ken", spool: spool ? try SpanSpool(path: "\(folder)/spans.csv") : nil)
        let (stream, continuation) = AsyncStream<Int>.makeStream()
        let app = server.application(host: "127.0.0.1", port: 0, logger: Logger(label: "test")) { continuation.yield($0) }
        Task { try await app.runService() }
        var iterator = stream.makeAsyncIterator()
        guard let port = await iterator.next() else { throw URLError(.cannotConnectToHost) }
        return ("http://127.0.0.1:\(port)", "\(folder)/spans.csv")
    }

    static func post(_ base: String, _ body: Data, type: String, token: String? = "t0ken") async throws -> (Int, Data) {
        var request = URLRequest(url: URL(string: base + "/v1/traces")!)
        request.httpMethod = "POST"
        request.httpBody = body
        request.setValue(type, forHTTPHeaderField: "Content-Type")
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as! HTTPURLResponse).statusCode, data)
    }

    @Test("Spans posted as protobuf and as JSON land once each in the spool, which reads back as the requests")
    func receive() async throws {
        let (base, _) = try await Self.start()
        let pb = try Data(contentsOf: URL(fileURLWithPath: "\(Self.measured)/spans-small.pb"))
        let json = try Data(contentsOf: URL(fileURLWithPath: "\(Self.measured)/spans-small.json"))
        let (s1, b1) = try await Self.post(base, pb, type: "application/x-protobuf")
        #expect(s1 == 200 && b1.isEmpty)
        // The same requests again (an exporter's retry), as JSON: kept once.
        let (s2, b2) = try await Self.post(base, json, type: "application/json")
        #expect(s2 == 200 && String(decoding: b2, as: UTF8.self) == "{}")
        let (data, response) = try await URLSession.shared.data(from: URL(string: base + "/v1/requests.csv")!)
        #expect((response as! HTTPURLResponse).statusCode == 200)
        let spooled = try RequestCSVReader.read(String(decoding: data, as: UTF8.self), file: "spool.csv")
        let direct = try OTLPReader.read(json, file: "s.json")
        #expect(spooled.requests.map(\.id) == direct.requests.map(\.id))
        for (a, b) in zip(spooled.requests, direct.requests) {
            #expect(abs(a.arrival - b.arrival) < 1e-3 && a.promptTokens == b.promptTokens && a.outputTokens == b.outputTokens && a.gpus == b.gpus)
            #expect(a.engine == b.engine && (a.scheduled == nil) == (b.scheduled == nil))
        }
    }

    @Test("Refused: no token, another content type, bytes that are not OTLP, and no spool")
    func refusals() async throws {
        let (base, _) = try await Self.start()
        #expect(try await Self.post(base, Data("{}".utf8), type: "application/json", token: nil).0 == 401)
        #expect(try await Self.post(base, Data("x".utf8), type: "text/plain").0 == 415)
        let (status, body) = try await Self.post(base, Data([0x0A, 0x05, 0x01]), type: "application/x-protobuf")
        #expect(status == 400 && String(decoding: body, as: UTF8.self).contains("request body"))
        #expect(try await Self.post(base, Data(#"{"resourceSpans": 3}"#.utf8), type: "application/json").0 == 400)
        let (off, _) = try await Self.start(spool: false)
        let (s, b) = try await Self.post(off, Data("{}".utf8), type: "application/json")
        #expect(s == 503 && String(decoding: b, as: UTF8.self).contains("--spans-out"))
    }
}
