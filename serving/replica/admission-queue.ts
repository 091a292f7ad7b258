/** Counts the admission queue reports on every change. */
export interface AdmissionCounts {
  /**
   * Requests whose body has arrived and that are not yet answered: queued + running (+ writing the
   * response). This is what autoscaling counts.
   */
  readonly inFlight: number;
  /**
   * Requests admitted whose body is still arriving. They hold a place under `maxInFlight` (so uploads
   * cannot take unbounded memory) but are not in flight: a stalled upload must not scale the API.
   */
  readonly receiving: number;
  /** Requests waiting for a prediction slot. */
  readonly queued: number;
}

/** `granted` of a waiter cancelled while still queued rejects with this. */
export class SlotCancelledError extends Error {
  constructor() {
    super('slot request cancelled');
    this.name = 'SlotCancelledError';
  }
}

/**
 * A request waiting for a prediction slot. `cancel()` takes it out of the queue (client went away):
 * `granted` then rejects with `SlotCancelledError`; if the slot was already granted, it is given back.
 */
export interface SlotWaiter {
  readonly granted: Promise<void>;
  cancel(): void;
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
  cancelled: boolean;
}

/**
 * The replica-wide admission queue (one per replica, Cortex #839/#1240/#1464 fixed at the replica):
 * - `tryEnter()` admits a request or refuses at once when `maxInFlight` requests are already in flight
 *   (the caller answers 503 immediately: never after queueing);
 * - admitted requests take one of `capacity` prediction slots (ready predictor instances × threads per
 *   instance) in strict FIFO order across the whole replica, so a request never waits behind one busy
 *   instance while another is idle;
 * - a slot is released when the instance is free again, which may be later than the request's
 *   answer (a timed-out prediction keeps its slot until the instance gives it back or is replaced).
 * Single-threaded (the replica's event loop); `onDidChange` runs synchronously on every change of the
 * counts, so the in-flight window sees every step.
 */
export class AdmissionQueue {
  private inFlight = 0;
  private receiving = 0;
  private busy = 0;
  private queued = 0;
  private capacity: number;
  private readonly waiters: Waiter[] = [];
  private head = 0;

  constructor(
    /** Most requests in flight (`autoscaling.maxReplicaConcurrency`); the next one is refused. */
    readonly maxInFlight: number,
    capacity: number,
    /** Called with the new counts (numbers, not an object: this runs several times per request). */
    private readonly onDidChange: (inFlight: number, queued: number) => void = () => {},
  ) {
    if (!(maxInFlight >= 1)) throw new RangeError(`maxInFlight must be >= 1 (got ${maxInFlight})`);
    this.capacity = capacity;
  }

  counts(): AdmissionCounts {
    return { inFlight: this.inFlight, queued: this.queued, receiving: this.receiving };
  }

  /** Slots held by predictions (including timed-out ones whose instance has not given the slot back). */
  busySlots(): number {
    return this.busy;
  }

  /**
   * Admits one request whose body is still to be read; false when `maxInFlight` are already admitted
   * (receiving or in flight). Pair every true with `leave()`, and call `received()` once its body is in.
   */
  tryEnter(): boolean {
    if (this.inFlight + this.receiving >= this.maxInFlight) return false;
    this.receiving++;
    return true;
  }

  /** The admitted request's body has arrived: from now on it is in flight. Call at most once per entry. */
  received(): void {
    this.receiving--;
    this.inFlight++;
    this.onDidChange(this.inFlight, this.queued);
  }

  /** The request was answered (or its client went away); `wasReceived` says whether `received()` ran. */
  leave(wasReceived = true): void {
    if (wasReceived) this.inFlight--;
    else this.receiving--;
    // Reported either way: a drain waits for bodies still arriving too.
    this.onDidChange(this.inFlight, this.queued);
  }

  /** Takes a slot at once when one is free and nobody is queued; pair a true with `releaseSlot()`. */
  tryAcquire(): boolean {
    if (this.busy < this.capacity && this.queued === 0) {
      this.busy++;
      return true;
    }
    return false;
  }

  /** Queues for a slot (FIFO); `granted` resolves when the slot is taken for this waiter. */
  enqueue(): SlotWaiter {
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const granted = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    const w: Waiter = { resolve, reject, cancelled: false };
    this.waiters.push(w);
    this.queued++;
    this.onDidChange(this.inFlight, this.queued);
    this.dispatch();
    return {
      granted,
      cancel: () => {
        if (w.cancelled) return;
        w.cancelled = true;
        // Still in the queue (not granted yet): it no longer counts as queued, and `granted` rejects.
        if (this.waiters.indexOf(w, this.head) !== -1) {
          this.queued--;
          this.onDidChange(this.inFlight, this.queued);
          w.reject(new SlotCancelledError());
        } else {
          // Granted but the grant was not used: give the slot back.
          this.releaseSlot();
        }
      },
    };
  }

  releaseSlot(): void {
    this.busy--;
    this.dispatch();
  }

  /** Ready slots changed (an instance became ready, or was lost). Queued requests move when it grows. */
  setCapacity(capacity: number): void {
    this.capacity = capacity;
    this.dispatch();
  }

  /** Empties the queue, rejecting every waiter with `err`: the replica failed for good (callers answer 503). */
  rejectWaiters(err: Error): number {
    let n = 0;
    while (this.head < this.waiters.length) {
      const w = this.waiters[this.head++];
      if (w.cancelled) continue;
      n++;
      w.cancelled = true;
      w.reject(err);
    }
    this.compact();
    this.queued = 0;
    this.onDidChange(this.inFlight, 0);
    return n;
  }

  private dispatch(): void {
    let changed = false;
    while (this.busy < this.capacity && this.head < this.waiters.length) {
      const w = this.waiters[this.head++];
      if (w.cancelled) continue;
      this.busy++;
      this.queued--;
      changed = true;
      w.resolve();
    }
    this.compact();
    if (changed) this.onDidChange(this.inFlight, this.queued);
  }

  private compact(): void {
    if (this.head > 1024 && this.head * 2 > this.waiters.length) {
      this.waiters.splice(0, this.head);
      this.head = 0;
    } else if (this.head === this.waiters.length) {
      this.waiters.length = 0;
      this.head = 0;
    }
  }
}
