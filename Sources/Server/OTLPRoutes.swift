import Accounting
import Foundation
import Hummingbird
import Measured
import NIOCore

/// Where spans posted to `/v1/traces` go: appended, as rows of the plain CSV request log, to a
/// file `joule measure --requests` reads (or fetches from `GET /v1/requests.csv`).
public actor SpanSpool {
    public let path: String
    private var handle: FileHandle?
    /// Requests appended since the server started, and ids already seen (an exporter that retries
    /// sends a batch twice: its requests are kept once).
    public private(set) var received = 0
    private var seen: Set<String> = []

    /// Opens (or creates, with its header) the spool at `path`.
    public init(path: String) throws {
        self.path = path
        let fm = FileManager.default
        if !fm.fileExists(atPath: path) {
            guard fm.createFile(atPath: path, contents: Data((RequestCSVReader.columns + ["scheduled", "engine"]).joined(separator: ",").utf8 + [0x0A])) else {
                throw SpoolError(message: "--spans-out: cannot create '\(path)'")
            }
        }
        guard let h = FileHandle(forWritingAtPath: path) else { throw SpoolError(message: "--spans-out: cannot write '\(path)'") }
        h.seekToEndOfFile()
        handle = h
    }

    public struct SpoolError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// Appends the requests not seen before (one write, so a request's row is never split).
    func append(_ requests: [MeasuredRequest]) throws {
        var text = ""
        var added = 0
        for r in requests where seen.insert(r.id).inserted {
            text += Self.row(r)
            added += 1
        }
        try handle?.write(contentsOf: Data(text.utf8))
        received += added
    }

    func contents() throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    static func row(_ r: MeasuredRequest) -> String {
        func q(_ s: String) -> String { s.contains(",") || s.contains("\"") || s.contains("\n") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }
        func t(_ v: Double?) -> String { v.map { WallClock.fractionalString($0) } ?? "" }
        func n(_ v: Int?) -> String { v.map(String.init) ?? "" }
        let fields = [
            q(r.id), t(r.arrival), t(r.firstToken), t(r.finish), n(r.promptTokens), n(r.cachedTokens), n(r.outputTokens),
            r.gpus.map(String.init).joined(separator: ";"), t(r.scheduled), q(r.engine ?? ""),
        ]
        return fields.joined(separator: ",") + "\n"
    }
}

extension JouleServer {
    /// The OTLP/HTTP trace receiver (`POST /v1/traces`, OTLP/JSON or protobuf) and the spool it
    /// fills, as a request log (`GET /v1/requests.csv`).
    func addOTLPRoutes(to router: Router<BasicRequestContext>) {
        let spool = self.spool
        router.post("v1/traces") { request, _ in
            try self.authorize(request)
            guard let spool else {
                throw HTTPError(.serviceUnavailable, message: "no span spool: start the server with --spans-out FILE to receive OTLP spans")
            }
            let type = request.headers[.contentType]?.lowercased() ?? ""
            let protobuf = type.hasPrefix("application/x-protobuf")
            guard protobuf || type.hasPrefix("application/json") else {
                throw HTTPError(.unsupportedMediaType, message: "expected OTLP trace data as application/json or application/x-protobuf, got '\(type)'")
            }
            let body = Data(buffer: try await request.body.collect(upTo: Self.mostSpanBytes))
            let log: RequestLog
            do {
                log = protobuf ? try OTLPReader.readProtobuf(body, file: "request body") : try OTLPReader.read(body, file: "request body")
            } catch let error as MeasuredInputError {
                throw HTTPError(.badRequest, message: error.description)
            }
            try await spool.append(log.requests)
            // An ExportTraceServiceResponse with nothing to report: empty in protobuf, {} in JSON.
            return Response(
                status: .ok, headers: [.contentType: protobuf ? "application/x-protobuf" : "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: protobuf ? "" : "{}"))
            )
        }
        router.get("v1/requests.csv") { _, _ in
            guard let spool else { throw HTTPError(.notFound, message: "no span spool: start the server with --spans-out FILE") }
            return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: try await spool.contents())))
        }
    }

    /// The largest OTLP request body accepted (an exporter's batch is far smaller).
    static let mostSpanBytes = 16 << 20
}
