/** What an `EventRing` needs of an entry: its time, and the API it belongs to when it has one. */
export interface RingEntry {
  /** ms since the epoch. */
  readonly t: number;
  readonly api?: string;
}

/**
 * A bounded memory of the newest `capacity` events, oldest overwritten first: the one event history
 * behind the daemon's `GET /v1/events?since=` replay and the `local` event bus. `push` is O(1) and
 * never allocates; `since` is O(capacity) and returns a fresh array, so callers may emit from it
 * while more events are pushed. Entries are kept in push order, not sorted by `t`. Single-threaded.
 *
 * Capacity 3, push t = 1…5 ⇒ slots [4, 5, 3] with the oldest at index 2 ⇒ `since(0)` is [3, 4, 5].
 */
export class EventRing<T extends RingEntry> {
  private readonly slots: (T | undefined)[];
  /** Index the next entry goes to; `count` of them are valid, ending just before `head`. */
  private head = 0;
  private count = 0;

  /** @throws RangeError unless `capacity` is a positive integer. */
  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RangeError(`event history capacity must be a positive integer (got ${capacity})`);
    }
    this.slots = new Array<T | undefined>(capacity);
  }

  /** How many entries are retained, at most `capacity`. */
  get size(): number {
    return this.count;
  }

  /** Retains `e` as the newest entry, overwriting the oldest once the ring is full. */
  push(e: T): void {
    this.slots[this.head] = e;
    this.head = (this.head + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
  }

  /** Retained entries with `t >= sinceMs` (and of `api` when given), oldest first, as a snapshot. */
  since(sinceMs: number, api?: string): T[] {
    const out: T[] = [];
    const start = (this.head - this.count + this.capacity) % this.capacity;
    for (let i = 0; i < this.count; i++) {
      const e = this.slots[(start + i) % this.capacity] as T;
      if (e.t >= sinceMs && (api === undefined || e.api === api)) out.push(e);
    }
    return out;
  }
}
