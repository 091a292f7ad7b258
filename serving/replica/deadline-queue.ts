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
 *
 * An item that ends should be given to `finish`, which forgets it at once when it is the oldest (and
 * every done item after it), and compacts the queue when done items pile up behind a slow one: without
 * it, a finished item stayed queued until its deadline passed, i.e. `timeoutMs` (60 s by default) of
 * requests were kept alive — 20 000 req/s ⇒ 1.2 M items and their responses, which made the replica's
 * heap grow by ~1 kB per request and its GC and cache misses cost ~10 µs per request (docs/performance.md).
 */
export class DeadlineQueue<T extends Deadline> {
  private items: T[] = [];
  private head = 0;
  /** Items added and neither finished nor expired. */
  private live = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly timeoutMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  add(item: T): void {
    item.deadlineMs = this.now() + this.timeoutMs;
    this.items.push(item);
    this.live++;
    if (!this.timer) this.arm(this.timeoutMs);
  }

  /**
   * `item` (added, not expired) is over: marks it `done` and forgets it, together with every done item
   * at the head of the queue. When done items behind an older pending one outnumber the pending ones
   * (plus 1024), they are filtered out: memory stays in proportion to the items pending, not to the
   * rate × `timeoutMs`. Amortized O(1). Calling it for an item already done (expired) does nothing.
   */
  finish(item: T): void {
    if (item.done) return;
    item.done = true;
    this.live--;
    const items = this.items;
    let head = this.head;
    while (head < items.length && items[head].done) head++;
    if (head === items.length) {
      // The common case (requests answered in order): the queue is empty again.
      items.length = 0;
      this.head = 0;
      return;
    }
    this.head = head;
    if (items.length - head > 2 * this.live + 1024) {
      this.items = items.slice(head).filter((x) => !x.done);
      this.head = 0;
    }
  }

  /** Items queued: pending ones, and done ones not yet forgotten (marked done without `finish`, or behind a pending one). */
  size(): number {
    return this.items.length - this.head;
  }

  /** Stops the timer; pending items never expire. */
  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.items = [];
    this.head = 0;
    this.live = 0;
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
        q.live--;
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
