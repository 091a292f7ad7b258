import { resolveIntOrPercent, type UpdateStrategySpec } from '../../../core/config/api-spec.js';

/** `max_surge` / `max_unavailable` resolved to replica counts for `requested` replicas. */
export interface UpdateBudget {
  readonly maxSurge: number;
  readonly maxUnavailable: number;
}

/**
 * Resolves the update strategy the way Kubernetes does for a Deployment: surge rounds up,
 * unavailable rounds down, and when both come out 0 (`0` and `0%`, which the loader rejects, or a
 * budget resolved for 0 replicas) one replica may be unavailable so a rollout can always move.
 * Example: 25 %/25 % of 4 → surge 1, unavailable 1; of 1 → surge 1, unavailable 0.
 */
export function resolveUpdateBudget(strategy: UpdateStrategySpec, requested: number): UpdateBudget {
  const maxSurge = resolveIntOrPercent(strategy.maxSurge, requested, true);
  const maxUnavailable = resolveIntOrPercent(strategy.maxUnavailable, requested, false);
  return maxSurge === 0 && maxUnavailable === 0 ? { maxSurge: 0, maxUnavailable: 1 } : { maxSurge, maxUnavailable };
}

/**
 * Replicas of one API by revision. A *slot* is a replica that exists or will exist again: pending,
 * starting, ready, or crashed and waiting for its replacement. Terminating replicas are not slots
 * (as Kubernetes does not count pods a ReplicaSet already scaled away).
 */
export interface RolloutInput {
  readonly requested: number;
  readonly budget: UpdateBudget;
  /** Slots and ready replicas of the revision being deployed. */
  readonly current: { readonly slots: number; readonly ready: number };
  /** Slots and ready replicas of every older revision together. */
  readonly old: { readonly slots: number; readonly ready: number };
  /**
   * The current revision crash-loops while an earlier revision was fully rolled out: the rollout
   * stops, nothing old is stopped, and the earlier revision is brought back to `requested`.
   */
  readonly halted: boolean;
}

/** What to do now; the caller then waits for the next change (ready, exit, crash) and plans again. */
export interface RolloutPlan {
  readonly startCurrent: number;
  /** Current-revision slots to stop (crashed, pending and starting ones before ready ones). */
  readonly stopCurrent: number;
  /** Old slots that do not serve (crashed, pending, starting). */
  readonly stopOldNotReady: number;
  /** Old ready replicas to stop. */
  readonly stopOldReady: number;
  /** Replicas of the earlier, fully rolled-out revision to start again (only when halted). */
  readonly startOld: number;
}

/**
 * One step of a Kubernetes-style RollingUpdate (reference/cortex.md §8), pure. With R requested:
 * - never more than R + maxSurge slots: `startCurrent = min(R − current, R + surge − all slots)`;
 * - old ready replicas stop only while `ready(current) + ready(old) − stopped ≥ R − maxUnavailable`;
 * - old replicas that do not serve are stopped at once (they take room and give nothing).
 * Without old replicas this is plain scaling to R. A halted rollout keeps every slot and brings
 * the old revision back up to `R − ready(current)`.
 *
 * Example, R = 3, surge 0, unavailable 1, three old ready: stop 1 old (3 ready − 1 ≥ minimum 2)
 * and start 1 new in its place (2 old + 1 new = 3 slots). Next step: nothing until the new one is
 * ready; then 3 ready → stop 1 old, start 1 new, and so on. With surge 1, unavailable 0: start 1
 * new (4 slots), stop nothing until it is ready, then stop 1 old and start 1 new, …
 */
export function planRollout(input: RolloutInput): RolloutPlan {
  const R = Math.max(0, input.requested);
  const { current, old } = input;
  const oldNotReady = old.slots - old.ready;
  const stopCurrent = Math.max(0, current.slots - R);
  const curSlots = current.slots - stopCurrent;
  // Not-ready slots go first, so the ready count only drops when too many are ready.
  const curReady = Math.min(current.ready, curSlots);

  if (input.halted) {
    const wantOld = Math.max(0, R - curReady);
    const excessOld = Math.max(0, old.slots - wantOld);
    const stopOldNotReady = Math.min(oldNotReady, excessOld);
    return {
      startCurrent: 0,
      stopCurrent,
      stopOldNotReady,
      stopOldReady: excessOld - stopOldNotReady,
      startOld: Math.max(0, wantOld - old.slots),
    };
  }

  const minReady = Math.max(0, R - input.budget.maxUnavailable);
  const maxTotal = R + input.budget.maxSurge;
  const stopOldReady = Math.max(0, Math.min(old.ready, curReady + old.ready - minReady));
  const oldSlotsLeft = old.ready - stopOldReady;
  const startCurrent = Math.max(0, Math.min(R - curSlots, maxTotal - curSlots - oldSlotsLeft));
  return { startCurrent, stopCurrent, stopOldNotReady: oldNotReady, stopOldReady, startOld: 0 };
}
