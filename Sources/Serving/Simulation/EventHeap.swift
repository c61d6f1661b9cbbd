import Accounting
/// Events the simulator schedules ahead: a unit's step ending, a KV transfer arriving.
struct ScheduledEvent {
    enum Kind: UInt8 {
        case stepEnd = 0
        case kvArrived = 1
    }

    var time: Double
    var kind: Kind
    /// Order among events at the same time and kind: the simulator's own counter.
    var sequence: Int
    /// The unit (step end) or the request slot (KV arrived).
    var subject: Int32
    /// The decode unit a KV transfer is going to.
    var target: Int32

    func precedes(_ other: ScheduledEvent) -> Bool {
        if time != other.time { return time < other.time }
        if kind != other.kind { return kind.rawValue < other.kind.rawValue }
        return sequence < other.sequence
    }
}

/// Something a `MinHeap` can order.
protocol HeapOrdered {
    /// Whether `self` comes out of the heap before `other`.
    func precedes(_ other: Self) -> Bool
}

extension ScheduledEvent: HeapOrdered {}

/// A decode request's finishing step, ordered by step then slot.
struct FinishingStep: HeapOrdered {
    var step: Int
    var slot: Int32

    func precedes(_ other: FinishingStep) -> Bool { step != other.step ? step < other.step : slot < other.slot }
}

/// A binary min-heap over contiguous storage.
struct MinHeap<Element: HeapOrdered> {
    private var items: [Element] = []

    var isEmpty: Bool { items.isEmpty }
    var count: Int { items.count }
    var top: Element? { items.first }

    mutating func push(_ e: Element) {
        items.append(e)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard items[i].precedes(items[parent]) else { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> Element? {
        guard !items.isEmpty else { return nil }
        let first = items[0]
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1
                let r = l + 1
                var m = i
                if l < items.count && items[l].precedes(items[m]) { m = l }
                if r < items.count && items[r].precedes(items[m]) { m = r }
                if m == i { break }
                items.swapAt(i, m)
                i = m
            }
        }
        return first
    }
}

/// A first-in, first-out queue of request slots (ring buffer).
struct SlotQueue {
    private var buffer: [Int32] = []
    private var head = 0

    var isEmpty: Bool { head == buffer.count }
    var count: Int { buffer.count - head }
    var first: Int32? { isEmpty ? nil : buffer[head] }

    mutating func append(_ slot: Int32) { buffer.append(slot) }

    mutating func removeFirst() -> Int32 {
        let v = buffer[head]
        head += 1
        if head > 1024 && head * 2 > buffer.count {
            buffer.removeFirst(head)
            head = 0
        }
        return v
    }

    /// The slots in queue order.
    var elements: ArraySlice<Int32> { buffer[head...] }
}
