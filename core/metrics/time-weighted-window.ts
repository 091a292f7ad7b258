/**
 * The time-weighted mean of a step function over a trailing window (SG 2.3): `record(nowMs, value)`
 * says "from nowMs on the value is `value`" (null = unknown), `average(nowMs, windowMs)` integrates
 * the known parts of (nowMs − windowMs, nowMs] and divides by their length. Unknown stretches are
 * left out of both, so silence never counts as zero; a window only partly covered gives the mean of
 * the covered part (as Cortex averaged fewer buckets when fewer existed). Never reads a clock.
 *
 * Example: 4 from 0 s, 10 from 50 s; at 60 s a 60 s window averages (4 × 50 + 10 × 10) / 60 = 5.
 *
 * Change points live in a growable ring buffer; records at the same ms overwrite each other and
 * records that do not change the value are dropped, so memory is bounded by the distinct changes per
 * window (at most one per ms). Times must not go backwards; an earlier time is treated as the last one.
 */
export class TimeWeightedWindow {
  private times: Float64Array;
  private values: Float64Array; // NaN = unknown
  private head = 0;
  private size = 0;

  /** `maxWindowMs`: the longest window `average` will be asked for; older change points are dropped. */
  constructor(
    readonly maxWindowMs: number,
    initialCapacity = 64,
  ) {
    this.times = new Float64Array(initialCapacity);
    this.values = new Float64Array(initialCapacity);
  }

  /** The value is `value` (null: unknown) from `nowMs` on. */
  record(nowMs: number, value: number | null): void {
    const v = value === null ? NaN : value;
    const cap = this.times.length;
    if (this.size > 0) {
      const last = (this.head + this.size - 1) % cap;
      const lastT = this.times[last];
      const lastV = this.values[last];
      if (nowMs <= lastT) {
        this.values[last] = v;
        return;
      }
      if (lastV === v || (lastV !== lastV && v !== v)) return; // unchanged (NaN !== NaN)
      this.prune(nowMs);
    }
    if (this.size === this.times.length) this.grow();
    const i = (this.head + this.size) % this.times.length;
    this.times[i] = nowMs;
    this.values[i] = v;
    this.size++;
  }

  /** Mean over the known parts of (nowMs − windowMs, nowMs], or null when nothing in it is known. */
  average(nowMs: number, windowMs: number): number | null {
    const s = this.summary(nowMs, windowMs);
    return s.knownMs > 0 ? s.integral / s.knownMs : null;
  }

  /** The integral (value × ms) and the known length (ms) of (nowMs − windowMs, nowMs]. */
  summary(nowMs: number, windowMs: number): { readonly integral: number; readonly knownMs: number } {
    const start = nowMs - windowMs;
    const cap = this.times.length;
    let integral = 0;
    let knownMs = 0;
    let end = nowMs;
    for (let k = this.size - 1; k >= 0; k--) {
      const i = (this.head + k) % cap;
      const t = this.times[i];
      const from = t > start ? t : start;
      const v = this.values[i];
      if (end > from && v === v) {
        integral += v * (end - from);
        knownMs += end - from;
      }
      if (t <= start) break;
      end = t < end ? t : end;
    }
    return { integral, knownMs };
  }

  /** The latest recorded value (null when unknown or nothing recorded). */
  latest(): number | null {
    if (this.size === 0) return null;
    const v = this.values[(this.head + this.size - 1) % this.times.length];
    return v === v ? v : null;
  }

  /** Number of change points held (for tests and memory accounting). */
  points(): number {
    return this.size;
  }

  private prune(nowMs: number): void {
    // Point k covers [t_k, t_{k+1}); keep the oldest point that still covers nowMs − maxWindowMs.
    const cutoff = nowMs - this.maxWindowMs;
    const cap = this.times.length;
    while (this.size >= 2 && this.times[(this.head + 1) % cap] <= cutoff) {
      this.head = (this.head + 1) % cap;
      this.size--;
    }
  }

  private grow(): void {
    const cap = this.times.length;
    const times = new Float64Array(cap * 2);
    const values = new Float64Array(cap * 2);
    for (let k = 0; k < this.size; k++) {
      times[k] = this.times[(this.head + k) % cap];
      values[k] = this.values[(this.head + k) % cap];
    }
    this.times = times;
    this.values = values;
    this.head = 0;
  }
}
