import { performance } from 'node:perf_hooks';

/** Something that times out unless it is marked `done` first. */
export interface Deadline {
  /** Set by the owner once the work is over; the queue then skips it. */
  done: boolean;
  /** Filled in by `DeadlineQueue.add` (ms, `performance.now()` clock). */
  deadlineMs: number;
  /** Called once, at or after the deadline, when not `done`. */
  expire(): void;
}

/**
 * Timeouts of equal length for many short-lived items, with one timer for all of them: every item gets
 * `now + timeoutMs`, so deadlines come in insertion order and a FIFO is enough. The timer is armed for
 * the oldest item; when it fires, every item whose deadline passed expires (done ones are dropped) and it
 * is re-armed for the next. Adding and finishing an item costs no timer call, unlike a `setTimeout` per
 * request, whose list empties and re-schedules the libuv timer on every request at low concurrency.
 * The timer is unref'd: pending timeouts alone do not keep the process alive.
 */
export class DeadlineQueue<T extends Deadline> {
  private items: T[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly timeoutMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  add(item: T): void {
    item.deadlineMs = this.now() + this.timeoutMs;
    this.items.push(item);
    if (!this.timer) this.arm(this.timeoutMs);
  }

  /** Items added and not yet expired or dropped (done items still count until the timer passes them). */
  size(): number {
    return this.items.length - this.head;
  }

  /** Stops the timer; pending items never expire. */
  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.items = [];
    this.head = 0;
  }

  private arm(ms: number): void {
    this.timer = setTimeout(DeadlineQueue.onTimer, Math.max(0, ms), this);
    this.timer.unref();
  }

  private static onTimer<T extends Deadline>(q: DeadlineQueue<T>): void {
    q.timer = undefined;
    const now = q.now();
    while (q.head < q.items.length) {
      const item = q.items[q.head];
      if (!item.done && item.deadlineMs > now) break;
      q.head++;
      if (!item.done) {
        item.done = true;
        item.expire();
      }
    }
    if (q.head === q.items.length) {
      q.items = [];
      q.head = 0;
      return;
    }
    if (q.head > 1024) {
      q.items = q.items.slice(q.head);
      q.head = 0;
    }
    q.arm(q.items[q.head].deadlineMs - now);
  }
}
