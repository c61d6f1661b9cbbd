import Foundation

/// Decodes OTLP trace data in its protobuf encoding (`application/x-protobuf`, what vLLM's
/// OpenTelemetry exporter posts with `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf`) into the
/// shape of its JSON encoding, for `OTLPReader`. Only the fields requests need are kept: resource
/// and span attributes, span names, ids and times; every other field is skipped by its wire type.
/// Written by hand against the OTLP schema (opentelemetry-proto `trace/v1`, `common/v1`,
/// `resource/v1`): six messages do not need a code generator and its build time.
enum OTLPProtobuf {
    struct Reader {
        let bytes: [UInt8]
        var position: Int
        let end: Int
        let file: String

        func fail(_ message: String) -> MeasuredInputError {
            MeasuredInputError(file: file, field: "byte \(position)", "not OTLP protobuf trace data: \(message)")
        }

        mutating func varint() throws -> UInt64 {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard position < end else { throw fail("a number runs past the end") }
                let b = bytes[position]
                position += 1
                guard shift < 64 else { throw fail("a number longer than 10 bytes") }
                value |= UInt64(b & 0x7F) << shift
                if b & 0x80 == 0 { return value }
                shift += 7
            }
        }

        mutating func fixed64() throws -> UInt64 {
            guard end - position >= 8 else { throw fail("a 64-bit field runs past the end") }
            var v: UInt64 = 0
            for i in 0..<8 { v |= UInt64(bytes[position + i]) << (8 * UInt64(i)) }
            position += 8
            return v
        }

        /// The bytes of a length-delimited field, as a reader of their own.
        mutating func nested() throws -> Reader {
            let length = try varint()
            guard length <= UInt64(end - position) else { throw fail("a field of \(length) bytes runs past the end") }
            let inner = Reader(bytes: bytes, position: position, end: position + Int(length), file: file)
            position += Int(length)
            return inner
        }

        mutating func string() throws -> String { let r = try nested(); return String(decoding: bytes[r.position..<r.end], as: UTF8.self) }
        mutating func hex() throws -> String { let r = try nested(); return bytes[r.position..<r.end].map { String(format: "%02x", $0) }.joined() }

        /// Each field in turn: its number, its wire type, and the reader positioned at its value.
        mutating func fields(_ body: (Int, Int, inout Reader) throws -> Void) throws {
            while position < end {
                let key = try varint()
                let number = Int(truncatingIfNeeded: key >> 3), wire = Int(key & 7)
                guard number > 0 else { throw fail("field number 0") }
                let before = position
                try body(number, wire, &self)
                if position == before { try skip(wire) }
            }
            guard position == end else { throw fail("a field runs past its message") }
        }

        mutating func skip(_ wire: Int) throws {
            switch wire {
            case 0: _ = try varint()
            case 1: _ = try fixed64()
            case 2: _ = try nested()
            case 5:
                guard end - position >= 4 else { throw fail("a 32-bit field runs past the end") }
                position += 4
            default: throw fail("wire type \(wire)")
            }
        }
    }

    /// The request as OTLP/JSON would spell it.
    static func decode(_ data: Data, file: String) throws -> [String: Any] {
        let bytes = [UInt8](data)
        var root = Reader(bytes: bytes, position: 0, end: bytes.count, file: file)
        var resourceSpans: [Any] = []
        try root.fields { number, wire, r in
            guard number == 1, wire == 2 else { return }
            var rs = try r.nested()
            var resource: [String: Any] = [:]
            var scopeSpans: [Any] = []
            try rs.fields { n, w, r in
                if n == 1, w == 2 {
                    var res = try r.nested()
                    var attributes: [Any] = []
                    try res.fields { n, w, r in if n == 1, w == 2 { attributes.append(try keyValue(&r)) } }
                    resource["attributes"] = attributes
                } else if n == 2, w == 2 {
                    var ss = try r.nested()
                    var spans: [Any] = []
                    try ss.fields { n, w, r in if n == 2, w == 2 { spans.append(try span(&r)) } }
                    scopeSpans.append(["spans": spans])
                }
            }
            resourceSpans.append(["resource": resource, "scopeSpans": scopeSpans])
        }
        return ["resourceSpans": resourceSpans]
    }

    static func span(_ r: inout Reader) throws -> [String: Any] {
        var s = try r.nested()
        var out: [String: Any] = [:]
        var attributes: [Any] = []
        try s.fields { n, w, r in
            switch (n, w) {
            case (1, 2): out["traceId"] = try r.hex()
            case (2, 2): out["spanId"] = try r.hex()
            case (5, 2): out["name"] = try r.string()
            case (7, 1): out["startTimeUnixNano"] = String(try r.fixed64())
            case (8, 1): out["endTimeUnixNano"] = String(try r.fixed64())
            case (9, 2): attributes.append(try keyValue(&r))
            default: break
            }
        }
        out["attributes"] = attributes
        return out
    }

    static func keyValue(_ r: inout Reader) throws -> [String: Any] {
        var kv = try r.nested()
        var out: [String: Any] = [:]
        try kv.fields { n, w, r in
            if n == 1, w == 2 { out["key"] = try r.string() } else if n == 2, w == 2 { out["value"] = try anyValue(&r) }
        }
        return out
    }

    static func anyValue(_ r: inout Reader) throws -> [String: Any] {
        var v = try r.nested()
        var out: [String: Any] = [:]
        try v.fields { n, w, r in
            switch (n, w) {
            case (1, 2): out["stringValue"] = try r.string()
            case (2, 0): out["boolValue"] = try r.varint() != 0
            case (3, 0): out["intValue"] = String(Int64(bitPattern: try r.varint()))
            case (4, 1): out["doubleValue"] = NSNumber(value: Double(bitPattern: try r.fixed64()))
            case (5, 2):
                var a = try r.nested()
                var values: [Any] = []
                try a.fields { n, w, r in if n == 1, w == 2 { values.append(try anyValue(&r)) } }
                out["arrayValue"] = ["values": values]
            default: break
            }
        }
        return out
    }
}
