import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A small HTTP/1.1 server on 127.0.0.1 and an ephemeral port, for tests that must talk to a
/// real socket: it answers each GET from a handler, one connection per request, and records the
/// requests it saw. Not for production: no keep-alive, no TLS, no request bodies.
public final class LoopbackHTTPServer: Sendable {
    public struct Request: Sendable, Hashable {
        public var method: String
        /// The path with its query, as sent.
        public var target: String
        /// Header names in lower case.
        public var headers: [String: String]

        public var path: String { String(target.split(separator: "?", maxSplits: 1).first ?? "") }
        public var query: [String: String] {
            guard let q = target.split(separator: "?", maxSplits: 1).dropFirst().first else { return [:] }
            var out: [String: String] = [:]
            for pair in q.split(separator: "&") {
                let kv = pair.split(separator: "=", maxSplits: 1).map { String($0).removingPercentEncoding ?? String($0) }
                out[kv[0]] = kv.count > 1 ? kv[1] : ""
            }
            return out
        }
    }

    public struct Response: Sendable {
        public var status: Int
        public var headers: [String: String]
        public var body: Data
        /// Seconds to wait before answering (to provoke client timeouts).
        public var delay: Double

        public init(status: Int = 200, headers: [String: String] = ["Content-Type": "application/json"], body: Data, delay: Double = 0) {
            self.status = status
            self.headers = headers
            self.body = body
            self.delay = delay
        }

        public static func json(_ text: String, status: Int = 200) -> Response { Response(status: status, body: Data(text.utf8)) }
    }

    public let port: Int
    private let socket: Int32
    private let handler: @Sendable (Request) -> Response
    private let seen = Mutex<[Request]>([])
    private let stopped = Atomic<Bool>(false)

    /// The requests answered so far, in order.
    public var requests: [Request] { seen.withLock { $0 } }

    public var baseURL: String { "http://127.0.0.1:\(port)" }

    public init(handler: @escaping @Sendable (Request) -> Response) throws {
        self.handler = handler
        #if canImport(Glibc)
        let fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        let fd = Darwin.socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw POSIXError(.EIO) }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            close(fd)
            throw POSIXError(.EADDRINUSE)
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        socket = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in self.acceptLoop() }
        thread.start()
    }

    deinit { stop() }

    /// Stops accepting connections.
    public func stop() {
        if stopped.exchange(true, ordering: .acquiringAndReleasing) { return }
        shutdown(socket, Int32(SHUT_RDWR))
        close(socket)
    }

    private func acceptLoop() {
        while !stopped.load(ordering: .acquiring) {
            let client = accept(socket, nil, nil)
            if client < 0 {
                if stopped.load(ordering: .acquiring) { return }
                continue
            }
            let thread = Thread { [self] in self.serve(client) }
            thread.start()
        }
    }

    private func serve(_ client: Int32) {
        defer { close(client) }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        var received = Data()
        let terminator = Data("\r\n\r\n".utf8)
        while received.range(of: terminator) == nil {
            let n = recv(client, &buffer, buffer.count, 0)
            if n <= 0 { return }
            received.append(contentsOf: buffer[0..<n])
        }
        let head = String(decoding: received[..<received.range(of: terminator)!.lowerBound], as: UTF8.self)
        var lines = head.components(separatedBy: "\r\n")
        let requestLine = lines.removeFirst().split(separator: " ")
        guard requestLine.count >= 2 else { return }
        var headers: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let request = Request(method: String(requestLine[0]), target: String(requestLine[1]), headers: headers)
        seen.withLock { $0.append(request) }
        let response = handler(request)
        if response.delay > 0 { Thread.sleep(forTimeInterval: response.delay) }
        var text = "HTTP/1.1 \(response.status) \(response.status < 400 ? "OK" : "Error")\r\n"
        for (k, v) in response.headers { text += "\(k): \(v)\r\n" }
        text += "Content-Length: \(response.body.count)\r\nConnection: close\r\n\r\n"
        var bytes = Data(text.utf8)
        bytes.append(response.body)
        bytes.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let n = send(client, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                if n <= 0 { return }
                sent += n
            }
        }
    }
}
