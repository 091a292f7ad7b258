/** Source of wall-clock time in milliseconds since the epoch. Injected everywhere outside rx code (SG 2.4). */
export const Clock = Symbol('Clock');
export interface Clock {
  now(): number;
}

/** A clock that only moves when told to; tests start it at 0 (SG 9.2). */
export class ManualClock implements Clock {
  private t: number;
  constructor(startMs = 0) {
    this.t = startMs;
  }
  now(): number {
    return this.t;
  }
  /** Moves time forward by `ms` (never backwards). */
  advance(ms: number): void {
    if (ms < 0) throw new RangeError(`ManualClock cannot go backwards (advance ${ms})`);
    this.t += ms;
  }
  set(ms: number): void {
    this.t = ms;
  }
}
