import Accounting

/// One request while the simulator holds it.
struct Flight {
    var request: ServingRequest
    var prefillUnit: Int32 = -1
    var decodeUnit: Int32 = -1
    var prefillStart = -1.0
    var firstToken = -1.0
    var finish = -1.0
    /// Prompt tokens computed so far (cached ones excluded).
    var computedDone = 0
    /// Prompt tokens put into steps so far (≥ `computedDone`).
    var scheduled = 0
    /// Whether its KV cache is reserved on a colocated unit.
    var holdsReservation = false
    /// What it drew in its steps, and the idle draw attributed to it.
    var direct = Draw()
    var overhead = Draw()
    /// The decode unit's per-slot totals when it joined the batch.
    var joinTotals = Draw()
    /// The attribution weight of the decode unit's per-slot totals at the last interval close (or join).
    var mark = 0.0
    /// Position in the decode unit's batch, or −1.
    var batchIndex: Int32 = -1

    /// KV-cache tokens it needs when its last token is written.
    var kvNeed: Int { request.promptTokens + request.outputTokens }
}

/// Energy one unit drew in the accounting interval that is open.
struct IntervalAccount {
    var gpuActive = 0.0
    var hostActive = 0.0
    var activeCarbon = 0.0
    var activeGpuSeconds = 0.0
    var idle = Draw()
    /// Σ attribution weight of the requests the unit served in the interval.
    var weight = 0.0
    var busySeconds = 0.0
    var inServiceSeconds = 0.0

    var itJoules: Double { gpuActive + hostActive + idle.gpuJoules + idle.hostJoules }
    var books: IdleAttribution.UnitBooks { IdleAttribution.UnitBooks(idle: idle, weight: weight) }
}

/// One deployment unit's state.
struct UnitState {
    let pool: Int
    let role: UnitRole
    var inService = false
    var draining = false
    var accruedUntil = 0.0

    var stepping = false
    var stepIsPrefill = false
    var lastStepWasPrefill = false
    var stepGPUWatts = 0.0
    var stepHostWatts = 0.0
    var stepBatch = 0

    // Prefill side.
    var prefillQueue = SlotQueue()
    /// Prompt tokens still to compute for requests routed here.
    var queuedTokens = 0
    /// KV tokens the queued requests will need (colocated routing).
    var queuedNeed = 0
    var chunks: [(slot: Int32, tokens: Int)] = []
    var chunkTokens = 0
    /// Colocated: requests holding a KV reservation but not yet in the decode batch.
    var held = 0

    // Decode side.
    var waiting = SlotQueue()
    /// KV tokens of requests routed here that are not yet in the batch (in transit or waiting).
    var pendingReserved = 0
    var batch: [Int32] = []
    var finishing = MinHeap<FinishingStep>()
    var stepCounter = 0
    /// Running totals per batch slot: each decode step adds its share ÷ batch size.
    var totals = Draw()
    var sumContext = 0
    /// KV tokens reserved by the batch (colocated: and by held requests).
    var reserved = 0

    var account = IntervalAccount()
    /// Attribution weights earned in the open interval by requests that left the unit's steps
    /// (prefill chunks, requests that left the decode batch).
    var pieces: [(slot: Int32, weight: Double)] = []

    init(pool: Int, role: UnitRole) {
        self.pool = pool
        self.role = role
    }

    var isEmpty: Bool {
        !stepping && prefillQueue.isEmpty && waiting.isEmpty && batch.isEmpty && pendingReserved == 0 && held == 0
    }
}
