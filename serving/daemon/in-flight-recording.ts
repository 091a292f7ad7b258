import type { MetricSample } from '../../core/metrics/metric-sample.js';

/**
 * One second of one API as the daemon recorded it: the total in flight its replicas reported, the
 * replica count the daemon had asked for, the target per replica, and the responses of that second.
 */
export interface InFlightPoint {
  /** Start of the second, ms since the epoch (a multiple of 1000). */
  readonly t: number;
  /** Sum of the fresh replicas' latest `inFlight` (time-weighted means); null when no replica reported. */
  readonly inFlight: number | null;
  /** Replicas requested (the autoscaler's count) at the end of the second. */
  readonly replicas: number;
  /** `target_replica_concurrency` at the time. */
  readonly target: number;
  /** Responses reported during the second, by status class, and their summed latency (ms). */
  readonly '2xx': number;
  readonly '4xx': number;
  readonly '5xx': number;
  readonly latencyMsSum: number;
}

/** Seconds kept per API: one hour, enough for `myelin simulate --since 30m` and the dashboard's 15 minutes. */
export const RECORDING_SECONDS = 3600;

/** A replica whose last sample is older than this many ms no longer counts (the pipeline's 3 intervals of 1 s). */
const STALE_MS = 3000;

/** The persisted form (`<state>/recordings/<api>.json`): columns, one entry per second, oldest first. */
export interface StoredRecording {
  readonly v: 1;
  readonly t: number[];
  readonly inFlight: (number | null)[];
  readonly replicas: number[];
  readonly target: number[];
  readonly r2xx: number[];
  readonly r4xx: number[];
  readonly r5xx: number[];
  readonly latencyMsSum: number[];
}

/**
 * A bounded ring of per-second points for one API. `observe` takes every sample; `seal(nowMs, …)`,
 * called once a second, closes the second that `nowMs` falls in: e.g. two replicas whose latest samples
 * say 3.5 and 1.5 in flight ⇒ a point of 5; none fresh (silent for 3 s) ⇒ null. Time comes from the
 * caller (SG 2.3).
 */
export class InFlightRing {
  private readonly points: InFlightPoint[] = [];
  private readonly latest = new Map<string, { readonly tMs: number; readonly inFlight: number }>();
  private counts = { '2xx': 0, '4xx': 0, '5xx': 0, latencyMsSum: 0 };

  constructor(private readonly capacity = RECORDING_SECONDS) {}

  observe(s: MetricSample): void {
    this.latest.set(s.replica, { tMs: s.t, inFlight: s.inFlight });
    this.counts['2xx'] += s.requests['2xx'];
    this.counts['4xx'] += s.requests['4xx'];
    this.counts['5xx'] += s.requests['5xx'];
    this.counts.latencyMsSum += s.latencyMsSum;
  }

  /** Closes the second `nowMs` falls in (a second closed already is overwritten with the newer view). */
  seal(nowMs: number, replicas: number, target: number): InFlightPoint {
    let total = 0;
    let fresh = 0;
    for (const [id, l] of this.latest) {
      if (nowMs - l.tMs > STALE_MS) {
        this.latest.delete(id);
        continue;
      }
      total += l.inFlight;
      fresh++;
    }
    const t = Math.floor(nowMs / 1000) * 1000;
    const point: InFlightPoint = { t, inFlight: fresh > 0 ? total : null, replicas, target, ...this.counts };
    this.counts = { '2xx': 0, '4xx': 0, '5xx': 0, latencyMsSum: 0 };
    const last = this.points[this.points.length - 1];
    if (last && last.t >= t) {
      // The timer fired twice in one second (or the clock stepped back): keep one point per second.
      this.points[this.points.length - 1] = { ...point, t: last.t, '2xx': last['2xx'] + point['2xx'], '4xx': last['4xx'] + point['4xx'], '5xx': last['5xx'] + point['5xx'], latencyMsSum: last.latencyMsSum + point.latencyMsSum };
      return this.points[this.points.length - 1];
    }
    this.points.push(point);
    if (this.points.length > this.capacity) this.points.splice(0, this.points.length - this.capacity);
    return point;
  }

  /** Points with `t >= sinceMs`, oldest first. */
  since(sinceMs = 0): InFlightPoint[] {
    let i = this.points.length;
    while (i > 0 && this.points[i - 1].t >= sinceMs) i--;
    return this.points.slice(i);
  }

  get size(): number {
    return this.points.length;
  }

  toStored(): StoredRecording {
    const p = this.points;
    return {
      v: 1,
      t: p.map((x) => x.t),
      inFlight: p.map((x) => x.inFlight),
      replicas: p.map((x) => x.replicas),
      target: p.map((x) => x.target),
      r2xx: p.map((x) => x['2xx']),
      r4xx: p.map((x) => x['4xx']),
      r5xx: p.map((x) => x['5xx']),
      latencyMsSum: p.map((x) => x.latencyMsSum),
    };
  }

  /** Restores persisted points (anything malformed is dropped: a recording is worth less than a start). */
  restore(stored: unknown): void {
    if (!isStoredRecording(stored)) return;
    const n = stored.t.length;
    const out: InFlightPoint[] = [];
    for (let i = Math.max(0, n - this.capacity); i < n; i++) {
      out.push({
        t: stored.t[i],
        inFlight: stored.inFlight[i],
        replicas: stored.replicas[i],
        target: stored.target[i],
        '2xx': stored.r2xx[i],
        '4xx': stored.r4xx[i],
        '5xx': stored.r5xx[i],
        latencyMsSum: stored.latencyMsSum[i],
      });
    }
    const first = this.points[0];
    this.points.splice(0, 0, ...out.filter((x) => first === undefined || x.t < first.t));
    if (this.points.length > this.capacity) this.points.splice(0, this.points.length - this.capacity);
  }
}

function isStoredRecording(x: unknown): x is StoredRecording {
  if (typeof x !== 'object' || x === null) return false;
  const s = x as Record<string, unknown>;
  if (s.v !== 1 || !Array.isArray(s.t)) return false;
  const n = s.t.length;
  const cols = ['inFlight', 'replicas', 'target', 'r2xx', 'r4xx', 'r5xx', 'latencyMsSum'];
  if (!cols.every((c) => Array.isArray(s[c]) && (s[c] as unknown[]).length === n)) return false;
  const finite = (v: unknown): boolean => typeof v === 'number' && Number.isFinite(v);
  for (let i = 0; i < n; i++) {
    if (!finite((s.t as unknown[])[i]) || (i > 0 && (s.t as number[])[i] <= (s.t as number[])[i - 1])) return false;
    const f = (s.inFlight as unknown[])[i];
    if (f !== null && !finite(f)) return false;
  }
  return cols.slice(1).every((c) => (s[c] as unknown[]).every(finite));
}
