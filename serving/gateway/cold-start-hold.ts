import type { MetricSample } from '../../core/metrics/metric-sample.js';
import type { Logger } from '../../core/ports/logger.js';

/** Default `autoscaling.max_held_requests`: requests held per API while no replica is ready. */
export const DEFAULT_MAX_HELD_REQUESTS = 1000;
/** Default `autoscaling.hold_timeout`, ms. */
export const DEFAULT_HOLD_TIMEOUT_MS = 60_000;
/** The replica id of the gateway's own metric samples (held requests), unique within any API. */
export const HELD_SAMPLE_REPLICA = 'gateway:held';
const SAMPLE_INTERVAL_MS = 1000;
/** Pokes of one API are at least this far apart, ms: a burst arriving over 100 ms is a few pokes, not one per request. */
export const POKE_MIN_INTERVAL_MS = 100;

/**
 * Where the gateway tells the control plane about held requests (wired by the daemon): `poke` asks
 * the API's autoscaler for capacity now; `sample` carries the held count as in-flight load into the
 * metrics transport the autoscaler reads, like a replica's sample.
 */
export interface ColdStartListener {
  poke(api: string, held: number): void;
  sample(sample: MetricSample): void;
}

/** A request waiting in a `ColdStartHold`. */
export interface HeldRequest {
  /** A replica is ready: try again (in arrival order). */
  resume(): void;
  /** Not released in time (or the hold closed): answer 503 with `message`. */
  expire(message: string): void;
}

/** Options of `ColdStartHold`. */
export interface ColdStartHoldOptions {
  readonly api: string;
  /** At most this many requests wait; one more is refused (`hold` returns false). */
  readonly maxHeld: number;
  /** A request waits at most this long, ms. */
  readonly timeoutMs: number;
  /** Read when needed, so a listener set after the route is used. */
  readonly listener: () => ColdStartListener | undefined;
  /** Whether a ready replica of the API has a free slot now (below max_replica_concurrency); `drain` resumes while it does. Default: always. */
  readonly canTake?: () => boolean;
  readonly log: Logger;
}

interface Entry {
  readonly req: HeldRequest;
  readonly timer: NodeJS.Timeout;
}

/**
 * The held requests of one API that may scale to zero (`min_replicas: 0`; Knative's activator): a
 * request that finds no ready replica waits here instead of getting 503, in arrival order, bounded in
 * number (`maxHeld`) and time (`timeoutMs`, then 503 naming the API).
 *
 * - When the number held rises, the autoscaler is poked with the count: at once for the first held
 *   request, then at most every `POKE_MIN_INTERVAL_MS` (100 ms), so a burst of 20 is a poke for 1 and
 *   one or two for the rest, which ask for ceil(held / target) replicas.
 * - While requests are held, the held count is published every second as a metric sample of the
 *   pseudo-replica `gateway:held` (time-weighted mean over the second, as replicas sample), so held
 *   requests count as in-flight load; a first sample goes out at once, and a last one of 0 after the
 *   hold empties (the autoscaler drops the pseudo-replica 3 intervals later).
 * - `drain()` (a replica became ready, or `wake()`: a slot freed up) resumes held requests in order
 *   while a ready replica has a free slot (`canTake`); they go to the ready replicas by the gateway's
 *   usual least-outstanding choice. The rest wait for the next slot or replica, so a burst larger than
 *   one replica's max_replica_concurrency is answered in full, not refused.
 *
 * Used on the event loop only. Time for the samples is `performance.now()` (mean) and `Date.now()` (`t`).
 */
export class ColdStartHold {
  private readonly entries = new Set<Entry>();
  private closed = false;
  private pokeTimer: NodeJS.Timeout | null = null;
  private lastPokeMs = -Infinity;
  /** The count at the last poke: a poke goes out only when more are held than then. */
  private poked = 0;
  private sampleTimer: NodeJS.Timeout | null = null;
  private seq = 0;
  /** Time-weighted integral of the held count since the last sample (count × ms), its start and the last change. */
  private integral = 0;
  private intervalStart = 0;
  private lastChange = 0;
  private max = 0;
  private readonly log: Logger;

  private maxHeldValue: number;
  private timeoutMsValue: number;
  private wakeScheduled = false;
  /** 'releasing held requests' was logged since the hold last filled from empty. */
  private releaseLogged = false;

  constructor(private readonly o: ColdStartHoldOptions) {
    this.log = o.log.child({ component: 'gateway/cold-start-hold', api: o.api });
    this.maxHeldValue = o.maxHeld;
    this.timeoutMsValue = o.timeoutMs;
  }

  /** New limits (a redeploy); requests held already keep their deadlines. */
  configure(maxHeld: number, timeoutMs: number): void {
    this.maxHeldValue = maxHeld;
    this.timeoutMsValue = timeoutMs;
  }

  /** Requests waiting now. */
  get size(): number {
    return this.entries.size;
  }

  get maxHeld(): number {
    return this.maxHeldValue;
  }

  get timeoutMs(): number {
    return this.timeoutMsValue;
  }

  /**
   * Holds `req` for at most `timeoutMs` (less when it already waited: `waitedMs`). Returns false when
   * the hold is full or closed (the caller answers 503 itself). The returned function withdraws the
   * request (its client went away).
   */
  hold(req: HeldRequest, waitedMs = 0): (() => void) | false {
    if (this.closed || this.entries.size >= this.maxHeldValue) return false;
    const now = performance.now();
    this.account(now);
    const entry: Entry = {
      req,
      timer: setTimeout(() => this.expireOne(entry), Math.max(0, this.timeoutMsValue - waitedMs)),
    };
    this.entries.add(entry);
    if (this.entries.size > this.max) this.max = this.entries.size;
    if (this.entries.size === 1) {
      this.releaseLogged = false;
      this.log.info({ held: 1 }, 'holding requests until a replica is ready');
    }
    this.schedulePoke();
    this.startSampling(now);
    return () => this.withdraw(entry);
  }

  /**
   * A replica is ready or has a free slot: resumes held requests, oldest first, while `canTake` says
   * one can be served (each resumed request takes its slot at once). Returns how many.
   */
  drain(): number {
    const canTake = this.o.canTake ?? (() => true);
    let n = 0;
    // A snapshot: a resumed request that finds no slot after all is held again, at the end.
    for (const e of [...this.entries]) {
      if (!canTake()) break;
      if (!this.entries.has(e)) continue;
      this.account(performance.now());
      this.entries.delete(e);
      clearTimeout(e.timer);
      n++;
      e.req.resume();
    }
    if (n > 0 && !this.releaseLogged) {
      this.releaseLogged = true;
      this.log.info({ released: n, stillHeld: this.entries.size }, 'releasing held requests to a ready replica');
    }
    if (this.entries.size < this.poked) this.poked = this.entries.size;
    return n;
  }

  /** A slot was freed (a request of the API ended): `drain` once the current event is done. */
  wake(): void {
    if (this.wakeScheduled || this.entries.size === 0) return;
    this.wakeScheduled = true;
    setImmediate(() => {
      this.wakeScheduled = false;
      if (!this.closed) this.drain();
    });
  }

  /** Resumes every held request, oldest first, whatever the replicas' load. Returns how many. */
  private release(): number {
    if (this.entries.size === 0) return 0;
    const all = [...this.entries];
    this.account(performance.now());
    this.entries.clear();
    this.poked = 0;
    this.log.info({ released: all.length }, 'releasing held requests to a ready replica');
    for (const e of all) {
      clearTimeout(e.timer);
      e.req.resume();
    }
    return all.length;
  }

  /**
   * Stops holding (the API was removed or no longer scales to zero): later `hold` calls return false,
   * and every held request is resumed in order, so it is served or refused as any request is.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.pokeTimer !== null) clearTimeout(this.pokeTimer);
    this.pokeTimer = null;
    this.release();
    this.publishSample(performance.now());
    this.stopSampling();
  }

  private expireOne(entry: Entry): void {
    if (!this.entries.has(entry)) return;
    this.account(performance.now());
    this.entries.delete(entry);
    if (this.entries.size < this.poked) this.poked = this.entries.size;
    entry.req.expire(`no replica of ${this.o.api} could take the request within ${formatMs(this.timeoutMsValue)} (held while replicas start; hold_timeout)`);
  }

  private withdraw(entry: Entry): void {
    if (!this.entries.delete(entry)) return;
    this.account(performance.now());
    clearTimeout(entry.timer);
    if (this.entries.size < this.poked) this.poked = this.entries.size;
  }

  private schedulePoke(): void {
    if (this.pokeTimer !== null) return;
    const waitMs = Math.max(0, this.lastPokeMs + POKE_MIN_INTERVAL_MS - performance.now());
    this.pokeTimer = setTimeout(() => {
      this.pokeTimer = null;
      const held = this.entries.size;
      if (held <= this.poked) return;
      this.poked = held;
      this.lastPokeMs = performance.now();
      try {
        this.o.listener()?.poke(this.o.api, held);
      } catch (err) {
        this.log.error({ err }, 'poke failed');
      }
    }, waitMs);
  }

  /** Adds the held count since the last change to the interval's integral. */
  private account(now: number): void {
    this.integral += this.entries.size * (now - this.lastChange);
    this.lastChange = now;
  }

  private startSampling(now: number): void {
    if (this.sampleTimer !== null) return;
    // A first sample at once: the autoscaler has data for its next tick, not one interval later.
    this.intervalStart = now;
    this.lastChange = now;
    this.integral = 0;
    this.max = this.entries.size;
    this.emit(this.entries.size, SAMPLE_INTERVAL_MS);
    this.sampleTimer = setInterval(() => {
      const t = performance.now();
      const wasEmpty = this.max === 0;
      this.publishSample(t);
      // A whole interval empty and its 0 published: stop until the next hold.
      if (wasEmpty && this.entries.size === 0) this.stopSampling();
    }, SAMPLE_INTERVAL_MS);
    this.sampleTimer.unref();
  }

  private stopSampling(): void {
    if (this.sampleTimer !== null) clearInterval(this.sampleTimer);
    this.sampleTimer = null;
  }

  private publishSample(now: number): void {
    this.account(now);
    const intervalMs = now - this.intervalStart;
    const mean = intervalMs > 0 ? this.integral / intervalMs : this.entries.size;
    const max = this.max;
    this.intervalStart = now;
    this.integral = 0;
    this.max = this.entries.size;
    this.emit(mean, intervalMs > 0 ? intervalMs : SAMPLE_INTERVAL_MS, max);
  }

  private emit(inFlight: number, intervalMs: number, inFlightMax = inFlight): void {
    const listener = this.o.listener();
    if (listener === undefined) return;
    try {
      listener.sample({
        v: 1,
        api: this.o.api,
        replica: HELD_SAMPLE_REPLICA,
        revision: 'gateway',
        seq: this.seq++,
        t: Date.now(),
        intervalMs: Math.round(intervalMs),
        inFlight,
        inFlightMax,
        requests: { '2xx': 0, '4xx': 0, '5xx': 0 },
        latencyMsSum: 0,
        ready: false,
      });
    } catch (err) {
      this.log.error({ err }, 'could not publish the held requests sample');
    }
  }
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}
