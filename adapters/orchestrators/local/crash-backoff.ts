/**
 * Delay before a crashed replica is replaced: `baseMs · 2^(crashes − 1)`, capped at `maxMs`
 * (Kubernetes' CrashLoopBackOff shape). `crashes` counts this revision's crashes in the recent
 * window, this one included. Example with base 1 s, cap 30 s: 1 s, 2 s, 4 s, 8 s, 16 s, 30 s, 30 s.
 */
export function backoffDelayMs(crashes: number, baseMs: number, maxMs: number): number {
  if (crashes <= 0) return 0;
  // 2^30 already exceeds any sensible cap; bounding the exponent keeps the number finite.
  return Math.min(maxMs, baseMs * 2 ** Math.min(crashes - 1, 30));
}

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
