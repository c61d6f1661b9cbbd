import Accounting
/// Batch steps: forming them, costing them, and what their ends do to requests.
extension ServingSimulator {
    /// Starts a step on unit `u` if it is idle and has work. Colocated units alternate prefill and
    /// decode steps when both have work.
    mutating func startStepIfIdle(_ u: Int) {
        guard !units[u].stepping, units[u].inService else { return }
        switch units[u].role {
        case .prefill:
            _ = startPrefill(u)
        case .decode:
            admitWaiting(u)
            if !units[u].batch.isEmpty { startDecode(u) }
        case .colocated:
            let preferDecode = units[u].lastStepWasPrefill && (!units[u].batch.isEmpty || !units[u].waiting.isEmpty)
            if !preferDecode && startPrefill(u) { return }
            admitWaiting(u)
            if !units[u].batch.isEmpty {
                startDecode(u)
            } else {
                _ = startPrefill(u)
            }
        }
    }

    /// Forms a prefill step from the head of the queue, up to the unit's token budget, chunking a
    /// prompt that does not fit. Returns whether a step started.
    mutating func startPrefill(_ u: Int) -> Bool {
        guard !units[u].prefillQueue.isEmpty else { return false }
        let model = models[units[u].pool]
        let colocated = units[u].role == .colocated
        var budget = model.tokenBudget
        var computed = 0
        var prefix = 0
        units[u].chunks.removeAll(keepingCapacity: true)
        while budget > 0, let slot = units[u].prefillQueue.first {
            let i = Int(slot)
            if colocated && !flights[i].holdsReservation {
                let need = flights[i].kvNeed
                guard units[u].reserved + need <= model.kvTokens, units[u].batch.count + units[u].held < model.maxBatch else { break }
                units[u].reserved += need
                units[u].queuedNeed -= need
                units[u].held += 1
                flights[i].holdsReservation = true
            }
            let remaining = flights[i].request.computedTokens - flights[i].scheduled
            let take = min(remaining, budget)
            units[u].chunks.append((slot, take))
            prefix += flights[i].request.cachedTokens + flights[i].scheduled
            computed += take
            budget -= take
            if flights[i].prefillStart < 0 { flights[i].prefillStart = now }
            flights[i].scheduled += take
            if take == remaining { _ = units[u].prefillQueue.removeFirst() } else { break }
        }
        guard !units[u].chunks.isEmpty else { return false }
        let cost = models[units[u].pool].prefillStep(sequences: units[u].chunks.count, computed: computed, prefix: prefix)
        accrue(u, to: now)
        units[u].chunkTokens = computed
        beginStep(u, prefill: true, cost: cost, batch: units[u].chunks.count)
        return true
    }

    /// Starts a decode step over the whole batch.
    mutating func startDecode(_ u: Int) {
        let b = units[u].batch.count
        let mean = Double(units[u].sumContext) / Double(b)
        let cost = models[units[u].pool].decodeStep(batch: b, meanContext: mean)
        accrue(u, to: now)
        beginStep(u, prefill: false, cost: cost, batch: b)
    }

    private mutating func beginStep(_ u: Int, prefill: Bool, cost: UnitModel.StepCost, batch: Int) {
        units[u].stepping = true
        units[u].stepIsPrefill = prefill
        units[u].lastStepWasPrefill = prefill
        units[u].stepGPUWatts = cost.gpuWatts
        units[u].stepHostWatts = cost.hostWatts
        units[u].stepBatch = batch
        stats.steps += 1
        schedule(.stepEnd, at: now + cost.seconds, subject: Int32(u))
    }

    /// Ends unit `u`'s step; returns how many requests finished.
    mutating func endStep(unit u: Int) -> Int {
        accrue(u, to: now)
        units[u].stepping = false
        var finished = 0
        if units[u].stepIsPrefill {
            let colocated = units[u].role == .colocated
            let chunks = units[u].chunks
            for (slot, tokens) in chunks {
                let i = Int(slot)
                flights[i].computedDone += tokens
                units[u].queuedTokens -= tokens
                guard flights[i].computedDone == flights[i].request.computedTokens else { continue }
                flights[i].firstToken = now
                stats.prefillTokensServed += flights[i].request.promptTokens
                stats.outputTokensProduced += 1
                if !colocated { units[u].queuedNeed -= flights[i].kvNeed }
                if flights[i].request.outputTokens == 1 {
                    if colocated {
                        units[u].reserved -= flights[i].kvNeed
                        units[u].held -= 1
                    }
                    finish(slot)
                    finished += 1
                } else if colocated {
                    flights[i].decodeUnit = Int32(u)
                    units[u].waiting.append(slot)
                } else {
                    let d = routeToDecode(slot)
                    flights[i].decodeUnit = Int32(d)
                    units[d].pendingReserved += flights[i].kvNeed
                    let transfer = models[decodePool].kvTransferSeconds(tokens: flights[i].request.promptTokens)
                    schedule(.kvArrived, at: now + transfer, subject: slot, target: Int32(d))
                }
            }
            units[u].chunks.removeAll(keepingCapacity: true)
        } else {
            let b = units[u].stepBatch
            units[u].stepCounter += 1
            units[u].sumContext += b
            stats.outputTokensProduced += b
            while let top = units[u].finishing.top, top.step <= units[u].stepCounter {
                _ = units[u].finishing.pop()
                leaveDecode(u, slot: top.slot)
                finished += 1
            }
        }
        startStepIfIdle(u)
        retireIfDrained(u)
        return finished
    }

    /// A KV cache has reached decode unit `u`: the request waits for the next step boundary.
    mutating func kvArrived(slot: Int32, unit u: Int) {
        units[u].waiting.append(slot)
        startStepIfIdle(u)
    }

    /// Moves waiting requests into the batch, first come first served, while KV cache and the
    /// batch limit allow (colocated requests reserved theirs when their prefill began).
    mutating func admitWaiting(_ u: Int) {
        let model = models[units[u].pool]
        let colocated = units[u].role == .colocated
        while let slot = units[u].waiting.first {
            let i = Int(slot)
            let need = flights[i].kvNeed
            if colocated {
                units[u].held -= 1
            } else {
                guard units[u].reserved + need <= model.kvTokens, units[u].batch.count < model.maxBatch else { break }
                units[u].reserved += need
                units[u].pendingReserved -= need
            }
            _ = units[u].waiting.removeFirst()
            flights[i].batchIndex = Int32(units[u].batch.count)
            units[u].batch.append(slot)
            flights[i].joinTotals = units[u].totals
            flights[i].mark = weight(of: units[u].totals)
            units[u].sumContext += flights[i].request.promptTokens + 1
            units[u].finishing.push(FinishingStep(step: units[u].stepCounter + flights[i].request.outputTokens - 1, slot: slot))
        }
    }

    /// Takes a request that has produced its last token out of the batch and settles its direct share.
    mutating func leaveDecode(_ u: Int, slot: Int32) {
        let i = Int(slot)
        let totals = units[u].totals
        flights[i].direct += totals - flights[i].joinTotals
        units[u].pieces.append((slot, weight(of: totals) - flights[i].mark))
        let position = Int(flights[i].batchIndex)
        let last = units[u].batch.removeLast()
        if position < units[u].batch.count {
            units[u].batch[position] = last
            flights[Int(last)].batchIndex = Int32(position)
        }
        flights[i].batchIndex = -1
        units[u].sumContext -= flights[i].kvNeed
        units[u].reserved -= flights[i].kvNeed
        finish(slot)
    }

    /// Marks a request finished; its record is written when the open interval closes.
    mutating func finish(_ slot: Int32) {
        flights[Int(slot)].finish = now
        awaiting.append(slot)
    }
}
