/** One closed interval of in-flight accounting. */
export interface InFlightInterval {
  /** Time-weighted mean of the value over the interval. */
  readonly mean: number;
  /** Highest value reached during the interval (including the value it started with). */
  readonly max: number;
  /** Length of the interval (ms). */
  readonly intervalMs: number;
}

/**
 * Time-weighted mean of a step function (requests in flight) over consecutive intervals (SG 2.3: the
 * caller passes the time in; no clock is read here).
 * Example: 0 in flight for 500 ms, then 4 for 250 ms, then 2 for 250 ms ⇒ mean over 1000 ms =
 * (0·500 + 4·250 + 2·250) / 1000 = 1.5, max 4.
 */
export class InFlightWindow {
  private current = 0;
  private max = 0;
  private startMs: number;
  private lastMs: number;
  private area = 0;

  constructor(startMs: number) {
    this.startMs = startMs;
    this.lastMs = startMs;
  }

  /** The value changed to `value` at `nowMs` (non-decreasing times; an earlier time counts as `lastMs`). */
  record(nowMs: number, value: number): void {
    if (nowMs > this.lastMs) {
      this.area += this.current * (nowMs - this.lastMs);
      this.lastMs = nowMs;
    }
    this.current = value;
    if (value > this.max) this.max = value;
  }

  /** Closes the interval at `nowMs` and starts the next one from the current value. */
  cut(nowMs: number): InFlightInterval {
    this.record(nowMs, this.current);
    const intervalMs = this.lastMs - this.startMs;
    const mean = intervalMs > 0 ? this.area / intervalMs : this.current;
    const out = { mean, max: this.max, intervalMs };
    this.startMs = this.lastMs;
    this.area = 0;
    this.max = this.current;
    return out;
  }
}
