import type { Logger } from 'pino';
import type { Clock } from '../../core/clock.js';
import type { MetricSample } from '../../core/metrics/metric-sample.js';
import { InFlightRing, type InFlightPoint } from './in-flight-recording.js';
import type { StateStore } from './state-store.js';

/** What the recorder reads of a served API once a second. */
export interface RecordedApi {
  readonly name: string;
  readonly replicas: number;
  readonly target: number;
}

export interface InFlightRecorderOptions {
  readonly store: StateStore;
  readonly clock: Clock;
  readonly log: Logger;
  /** The APIs served now (a point a second is recorded for each). */
  readonly apis: () => Iterable<RecordedApi>;
  /** How often the rings are written to the state folder, ms (default 30 s; and always on close). */
  readonly persistEveryMs?: number;
}

/**
 * The daemon's in-flight recording (the dashboard's chart, the what-if, `myelin simulate --since`):
 * one `InFlightRing` per API fed by every metric sample, sealed once a second on a timer, persisted
 * under `<state>/recordings/` every `persistEveryMs` and on `close()`, and restored by `start()`.
 * Listeners of `onDidRecord` get each second's points of every API.
 */
export class InFlightRecorder {
  private readonly rings = new Map<string, InFlightRing>();
  private timer?: NodeJS.Timeout;
  private lastPersist = 0;
  private persisting: Promise<void> = Promise.resolve();
  private readonly listeners = new Set<(points: ReadonlyMap<string, InFlightPoint>) => void>();
  private readonly log: Logger;

  constructor(private readonly o: InFlightRecorderOptions) {
    this.log = o.log.child({ component: 'daemon/in-flight-recorder' });
  }

  /** Restores the persisted rings of `names` and starts the one-second timer. */
  async start(names: Iterable<string>): Promise<void> {
    for (const name of names) this.ring(name).restore(await this.o.store.getRecording(name));
    this.lastPersist = this.o.clock.now();
    // Aligned a little after each second boundary, so a point holds the samples of its own second.
    const tick = (): void => {
      this.seal();
      this.timer = setTimeout(tick, 1000 - (this.o.clock.now() % 1000) + 50);
      this.timer.unref();
    };
    this.timer = setTimeout(tick, 1000 - (this.o.clock.now() % 1000) + 50);
    this.timer.unref();
  }

  /** Takes a sample of a served API (the daemon passes only those). */
  observe(s: MetricSample): void {
    this.ring(s.api).observe(s);
  }

  /** The recorded points of `api` since `sinceMs` (empty for an API not recorded). */
  points(api: string, sinceMs = 0): InFlightPoint[] {
    return this.rings.get(api)?.since(sinceMs) ?? [];
  }

  /** Called with every API's point after each second; returns the unsubscribe function. */
  onDidRecord(listener: (points: ReadonlyMap<string, InFlightPoint>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Drops an API's ring (its file goes with `StateStore.deleteApi`). */
  forget(api: string): void {
    this.rings.delete(api);
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.persisting;
    await this.persist();
  }

  private ring(name: string): InFlightRing {
    let r = this.rings.get(name);
    if (!r) {
      r = new InFlightRing();
      this.rings.set(name, r);
    }
    return r;
  }

  /** Closes the current second for every served API. */
  seal(): void {
    const now = this.o.clock.now();
    const out = new Map<string, InFlightPoint>();
    for (const a of this.o.apis()) out.set(a.name, this.ring(a.name).seal(now, a.replicas, a.target));
    for (const l of this.listeners) {
      try {
        l(out);
      } catch (err) {
        this.log.warn({ err }, 'recording listener failed');
      }
    }
    if (now - this.lastPersist >= (this.o.persistEveryMs ?? 30_000)) {
      this.lastPersist = now;
      this.persisting = this.persist();
    }
  }

  private async persist(): Promise<void> {
    const served = new Set([...this.o.apis()].map((a) => a.name));
    for (const [name, ring] of this.rings) {
      // An API deleted meanwhile (`forget`) is not written back after its file was removed.
      if (!served.has(name) || ring.size === 0 || this.rings.get(name) !== ring) continue;
      try {
        await this.o.store.putRecording(name, ring.toStored());
      } catch (err) {
        this.log.warn({ err, api: name }, 'could not persist the in-flight recording');
      }
    }
  }
}
