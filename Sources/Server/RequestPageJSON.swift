import Foundation
import Hummingbird
import Accounting
import Ledger

/// A page of request rows: `{"items": [...], "nextCursor": "..."}`.
///
/// Encoded by hand, byte for byte what `JSONBody` (Foundation's `JSONEncoder`, sorted keys) gives
/// for the same value (`ServerTests` checks it on random rows): a page of 100 rows is about 100 kB
/// of JSON, and the generic encoder spent most of a page's time sorting each object's keys.
struct RequestPageJSON: Encodable, Sendable {
    var items: [RequestRow]
    /// Pass as `cursor` for the next page; absent on the last page.
    var nextCursor: String?

    /// The JSON, or nil when a figure is not finite (`JSONEncoder` refuses those: `JSONBody` then
    /// says why).
    func json() -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(1100 * items.count + 64)
        out.append(contentsOf: #"{"items":["#.utf8)
        for (k, row) in items.enumerated() {
            if k > 0 { out.append(UInt8(ascii: ",")) }
            guard Self.write(row, into: &out) else { return nil }
        }
        out.append(UInt8(ascii: "]"))
        if let nextCursor {
            guard nextCursor.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
            out.append(contentsOf: #","nextCursor":""#.utf8)
            out.append(contentsOf: nextCursor.utf8)
            out.append(UInt8(ascii: "\""))
        }
        out.append(UInt8(ascii: "}"))
        return out
    }

    /// One row's object, its keys in the order `JSONEncoder`'s `.sortedKeys` writes them (by
    /// UTF-8 bytes): the row's identity and every field `RequestRecord.encode` writes, absent
    /// ones left out as `encodeIfPresent` does.
    private static func write(_ row: RequestRow, into out: inout [UInt8]) -> Bool {
        let r = row.record
        var w = ObjectWriter(into: &out)
        w.real("arrival", r.arrival)
        w.real("arrivalEpochSeconds", row.arrivalEpochSeconds)
        w.integer("cachedTokens", r.cachedTokens)
        w.integer("decodeUnit", r.decodeUnit)
        w.real("embodiedCarbonGrams", r.embodiedCarbonGrams)
        w.real("endToEnd", r.endToEnd)
        w.real("facilityJoules", r.facilityJoules)
        w.real("facilityOverheadJoules", r.facilityOverheadJoules)
        w.real("finish", r.finish)
        w.real("firstToken", r.firstToken)
        w.real("gpuActiveJoules", r.gpuActiveJoules)
        w.real("gpuIdleJoules", r.gpuIdleJoules)
        w.real("gpuSeconds", r.gpuSeconds)
        w.real("hostJoules", r.hostJoules)
        w.integer("id", r.id)
        w.flag("inFlight", r.inFlight)
        w.real("intensityGramsPerKWh", r.intensityGramsPerKWh)
        w.real("itJoules", r.itJoules)
        w.real("meanPowerWatts", r.meanPowerWatts)
        w.real("operationalCarbonGrams", r.operationalCarbonGrams)
        w.integer("outputTokens", r.outputTokens)
        w.real("prefillStart", r.prefillStart)
        w.integer("prefillUnit", r.prefillUnit)
        w.integer("promptTokens", r.promptTokens)
        w.real("queueWait", r.queueWait)
        w.integer("row", Int(row.rowID))
        w.integer("run", Int(row.runID))
        w.real("totalCarbonGrams", r.totalCarbonGrams)
        w.real("tpot", r.tpot)
        if let t = r.training {
            w.key("training")
            var inner = ObjectWriter(into: &w.out)
            inner.real("carbonGrams", t.carbonGrams)
            inner.real("facilityJoules", t.facilityJoules)
            inner.real("gpuSeconds", t.gpuSeconds)
            inner.real("tokens", t.tokens)
            inner.finish(into: &w.out)
            w.finite = w.finite && inner.finite
        }
        w.real("ttft", r.ttft)
        w.finish(into: &out)
        return w.finite
    }

    /// Writes one JSON object's members at the end of a buffer it holds meanwhile (swapped in
    /// and out, never copied).
    private struct ObjectWriter {
        var out: [UInt8] = []
        var first = true
        /// False once a double was not finite.
        var finite = true

        init(into buffer: inout [UInt8]) {
            swap(&out, &buffer)
            out.append(UInt8(ascii: "{"))
        }

        mutating func finish(into buffer: inout [UInt8]) {
            out.append(UInt8(ascii: "}"))
            swap(&out, &buffer)
        }

        mutating func key(_ name: StaticString) {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            out.append(UInt8(ascii: "\""))
            name.withUTF8Buffer { out.append(contentsOf: $0) }
            out.append(UInt8(ascii: "\""))
            out.append(UInt8(ascii: ":"))
        }

        mutating func integer(_ name: StaticString, _ value: Int?) {
            guard let value else { return }
            key(name)
            var text = String(value)
            text.withUTF8 { out.append(contentsOf: $0) }
        }

        mutating func flag(_ name: StaticString, _ value: Bool) {
            key(name)
            out.append(contentsOf: value ? [116, 114, 117, 101] : [102, 97, 108, 115, 101])
        }

        /// A finite double as `JSONEncoder` writes it: Swift's shortest round-trip digits, without
        /// a trailing `.0`.
        mutating func real(_ name: StaticString, _ value: Double?) {
            guard let value else { return }
            key(name)
            guard value.isFinite else {
                finite = false
                return
            }
            var text = value.description
            text.withUTF8 { bytes in
                let integral = bytes.count >= 2 && bytes[bytes.count - 2] == UInt8(ascii: ".") && bytes[bytes.count - 1] == UInt8(ascii: "0")
                out.append(contentsOf: integral ? UnsafeBufferPointer(rebasing: bytes.dropLast(2)) : bytes)
            }
        }
    }

}

/// The response for a `RequestPageJSON`: its hand-made JSON, or `JSONBody`'s when that refuses.
struct RequestPageBody: ResponseGenerator {
    var page: RequestPageJSON

    func response(from request: Request, context: some RequestContext) throws -> Response {
        guard let bytes = page.json() else { return try JSONBody(value: page).response(from: request, context: context) }
        return Response(status: .ok, headers: [.contentType: "application/json; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }
}
