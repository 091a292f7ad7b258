import { Subscription, type SchedulerAction, type SchedulerLike } from 'rxjs';

type Work<T> = (this: SchedulerAction<T>, state?: T) => void;

/**
 * A virtual-time rxjs scheduler for replaying traces (`myelin simulate`, benchmarks): time stands
 * still until `advanceTo(ms)` runs every action due up to then, in (due time, scheduling order), and
 * leaves `now()` exactly at `ms`, so a caller can emit values "at" any instant between actions.
 *
 * Unlike rxjs's VirtualTimeScheduler it keeps actions in a binary heap (no sort per schedule) and a
 * rescheduled periodic action is reused rather than chained, so replaying days of 1 s samples stays
 * O(log n) per action and bounded in memory. An error thrown by an action propagates out of `advanceTo`.
 */
export class ReplayScheduler implements SchedulerLike {
  private nowMs: number;
  private seq = 0;
  private readonly heap: HeapEntry[] = [];

  constructor(startMs = 0) {
    this.nowMs = startMs;
  }

  now(): number {
    return this.nowMs;
  }

  schedule<T>(work: Work<T>, delay = 0, state?: T): Subscription {
    return new ReplayAction<T>(this, work).schedule(state, delay);
  }

  /** Runs every action due at or before `ms` (including ones they schedule), then sets `now()` to `ms`. */
  advanceTo(ms: number): void {
    for (;;) {
      const top = this.heap[0];
      if (top === undefined || top.dueMs > ms) break;
      this.pop();
      if (top.action.closed || top.action.seq !== top.seq) continue; // cancelled or rescheduled
      if (top.dueMs > this.nowMs) this.nowMs = top.dueMs;
      top.action.run();
    }
    if (ms > this.nowMs) this.nowMs = ms;
  }

  /** Due time of the next pending action, or null when none is pending. */
  nextDueMs(): number | null {
    while (this.heap.length > 0) {
      const top = this.heap[0];
      if (!top.action.closed && top.action.seq === top.seq) return top.dueMs;
      this.pop();
    }
    return null;
  }

  /** @internal Queues `action` for `dueMs`; returns the entry's sequence number. */
  enqueue(action: ReplayAction<never>, dueMs: number): number {
    const entry: HeapEntry = { dueMs, seq: ++this.seq, action };
    const h = this.heap;
    h.push(entry);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
    return entry.seq;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop() as HeapEntry;
    if (h.length === 0) return;
    h[0] = last;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && before(h[l], h[m])) m = l;
      if (r < h.length && before(h[r], h[m])) m = r;
      if (m === i) return;
      [h[i], h[m]] = [h[m], h[i]];
      i = m;
    }
  }
}

interface HeapEntry {
  readonly dueMs: number;
  readonly seq: number;
  readonly action: ReplayAction<never>;
}

function before(a: HeapEntry, b: HeapEntry): boolean {
  return a.dueMs < b.dueMs || (a.dueMs === b.dueMs && a.seq < b.seq);
}

/** One scheduled unit of work; `schedule` from inside the work reschedules this same action. */
class ReplayAction<T> extends Subscription implements SchedulerAction<T> {
  /** Sequence number of the live heap entry; older entries for this action are stale. */
  seq = 0;
  private state: T | undefined;

  constructor(
    private readonly scheduler: ReplayScheduler,
    private readonly work: Work<T>,
  ) {
    super();
  }

  schedule(state?: T, delay = 0): Subscription {
    if (this.closed) return this;
    this.state = state;
    this.seq = this.scheduler.enqueue(this as unknown as ReplayAction<never>, this.scheduler.now() + Math.max(0, delay));
    return this;
  }

  /** @internal */
  run(): void {
    this.seq = 0;
    this.work.call(this, this.state);
  }
}
