/**
 * The load of one API as the scaling pipeline sees it: `LoadLevel` after every change (sample or
 * drop-out), `TickLoad` once per tick after windowing.
 */

/** The API's load right now, from the latest sample of every replica that is still reporting. */
export interface LoadLevel {
  /** Scheduler time of the change, ms. */
  readonly atMs: number;
  /** Sum of the latest `inFlight` of the reporting replicas (0 when none report; see `replicas`). */
  readonly totalInFlight: number;
  /** Replicas with a fresh sample (silent for at most `staleAfterIntervals` sample intervals). */
  readonly replicas: number;
  /** Mean `cpuUtilization` (fraction) of the reporting replicas that send it; null when none does. */
  readonly cpuUtilization: number | null;
}

/** What the pipeline measured at one tick, before the policy. Means are rounded to 1e-6. */
export interface TickLoad {
  /** Scheduler time of the tick, ms. */
  readonly atMs: number;
  /** Replicas with a fresh sample at the tick; 0 means "no data", never "no load". */
  readonly replicasReporting: number;
  /** Total in flight at the tick (null when no replica reports). */
  readonly totalInFlight: number | null;
  /** Time-weighted mean total in flight over (now − windowMs, now], over the known parts; null if none. */
  readonly avgInFlight: number | null;
  /** The same over the panic window; null when not asked for or nothing known. */
  readonly panicAvgInFlight: number | null;
  /** Time-weighted mean of the replicas' mean CPU utilization over the window; null when not asked for or unknown. */
  readonly avgCpuUtilization: number | null;
  /** How much of the window had data, ms (less than windowMs after a start or an outage). */
  readonly coveredMs: number;
  /** Computed between ticks (`windowedLoad`'s `betweenTicksMinGapMs`); absent on ticks. */
  readonly betweenTicks?: true;
}

/**
 * Rounds a measured mean to 1e-6 so summation noise (2.6667 × 3 = 7.999999999999999) cannot flip a
 * `ceil()` in the policy. A millionth of a request is far below anything a replica can measure.
 */
export function roundMicro(x: number): number {
  return Math.round(x * 1e6) / 1e6;
}
