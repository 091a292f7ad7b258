export { backoffDelayMs } from '../../../core/backoff.js';

/**
 * Crash times of one revision within a sliding window. Bounded: only times inside the window are
 * kept, and never more than `maxKept`. Time is passed in (ms); no clock is read here.
 */
export class CrashWindow {
  private readonly times: number[] = [];

  constructor(
    private readonly windowMs: number,
    private readonly maxKept = 64,
  ) {}

  record(nowMs: number): void {
    this.prune(nowMs);
    this.times.push(nowMs);
    if (this.times.length > this.maxKept) this.times.shift();
  }

  /** Crashes in `(nowMs − windowMs, nowMs]`. */
  count(nowMs: number): number {
    this.prune(nowMs);
    return this.times.length;
  }

  /** When the oldest crash still in the window leaves it (ms), or undefined when there is none. */
  nextExpiryMs(nowMs: number): number | undefined {
    this.prune(nowMs);
    return this.times.length > 0 ? this.times[0] + this.windowMs : undefined;
  }

  private prune(nowMs: number): void {
    while (this.times.length > 0 && this.times[0] <= nowMs - this.windowMs) this.times.shift();
  }
}
