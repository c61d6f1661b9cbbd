import Hardware
import MoE
import Synchronization

/// Step costs shared by the simulations of many deployments (the planner's candidates): one memo
/// per unit layout, filled by whichever run costs a shape first. Every entry is the cost of its
/// bucket's representative shape, so a run's results do not depend on which run filled it.
public final class StepCostCache: Sendable {
    /// What a unit's step costs depend on: the model as deployed, the hardware, the site and the layout.
    struct Key: Hashable {
        var model: ModelArchitecture
        var node: NodeSpec
        var site: SiteSpec
        var deployment: Deployment
    }

    private let memos = Mutex<[Key: UnitModel.Memo]>([:])

    public init() {}

    func memo(for key: Key) -> UnitModel.Memo? { memos.withLock { $0[key] } }

    func merge(_ memo: UnitModel.Memo, for key: Key) {
        memos.withLock { all in
            if var existing = all[key] {
                existing.absorb(memo)
                all[key] = existing
            } else {
                all[key] = memo
            }
        }
    }

    /// Layouts and step shapes held.
    public var counts: (layouts: Int, shapes: Int) {
        memos.withLock { all in (all.count, all.values.reduce(0) { $0 + $1.count }) }
    }
}
