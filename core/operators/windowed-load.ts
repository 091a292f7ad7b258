import { asyncScheduler, Observable, type OperatorFunction, type SchedulerAction, type SchedulerLike } from 'rxjs';
import { roundMicro, type LoadLevel, type TickLoad } from '../metrics/api-load.js';
import { TimeWeightedWindow } from '../metrics/time-weighted-window.js';

/** Options of `windowedLoad`; all durations in ms. */
export interface WindowedLoadOptions {
  /** Period of the ticks; the first tick is one period after subscription. */
  readonly tickMs: number;
  /** The averaging window (`autoscaling.window`). */
  readonly windowMs: number;
  /** A second, shorter window for the burst policy's panic mode; 0 or absent: not computed. */
  readonly panicWindowMs?: number;
  /** Also average the replicas' mean CPU utilization over the window. */
  readonly cpu?: boolean;
  /**
   * Also emit a load marked `betweenTicks` every this many ms between ticks (none within this long
   * after a tick, none while no replica reports): the policy may act on a burst before the next
   * tick. 0 or absent: ticks only.
   */
  readonly betweenTicksMinGapMs?: number;
}

/** How often at most a policy with `decidesBetweenTicks` is asked between ticks, ms. */
export const BETWEEN_TICKS_MIN_GAP_MS = 250;

/**
 * Load levels (from `totalInFlight`) → one `TickLoad` per tick: the time-weighted mean of the total
 * in flight over (now − windowMs, now] (and over the panic window), counting only the time when
 * some replica reported: a stretch with no reporting replica is unknown, not zero.
 *
 * Example (window 60 s): total 4 from 0 s, 10 from 50 s ⇒ the tick at 60 s says avg (4 × 50 + 10 × 10) / 60 = 5;
 * with data only since 30 s (a new API) the mean is over those 30 s.
 *
 * Ticks are scheduled on `scheduler` every `tickMs` from subscription; time is `scheduler.now()`
 * and the levels' `atMs`. Completes when the source completes (no tick after that); errors pass through.
 */
export function windowedLoad(options: WindowedLoadOptions, scheduler: SchedulerLike = asyncScheduler): OperatorFunction<LoadLevel, TickLoad> {
  const { tickMs, windowMs } = options;
  const panicWindowMs = options.panicWindowMs ?? 0;
  if (!(tickMs > 0) || !(windowMs > 0)) throw new RangeError(`windowedLoad needs tickMs and windowMs > 0 (got ${tickMs}, ${windowMs})`);
  return (source) =>
    new Observable<TickLoad>((subscriber) => {
      const inFlight = new TimeWeightedWindow(Math.max(windowMs, panicWindowMs));
      const cpu = options.cpu ? new TimeWeightedWindow(windowMs) : null;
      const gapMs = options.betweenTicksMinGapMs ?? 0;
      let replicas = 0;
      let total = 0;
      // When the last load (tick or between ticks) was emitted; the subscription counts as one.
      let lastEmitMs = scheduler.now();
      const load = (nowMs: number): TickLoad => {
        lastEmitMs = nowMs;
        const stable = inFlight.summary(nowMs, windowMs);
        const panic = panicWindowMs > 0 ? inFlight.average(nowMs, panicWindowMs) : null;
        const cpuAvg = cpu?.average(nowMs, windowMs) ?? null;
        return {
          atMs: nowMs,
          replicasReporting: replicas,
          totalInFlight: replicas > 0 ? roundMicro(total) : null,
          avgInFlight: stable.knownMs > 0 ? roundMicro(stable.integral / stable.knownMs) : null,
          panicAvgInFlight: panic === null ? null : roundMicro(panic),
          avgCpuUtilization: cpuAvg === null ? null : roundMicro(cpuAvg),
          coveredMs: stable.knownMs,
        };
      };
      const sub = source.subscribe({
        next(level) {
          replicas = level.replicas;
          total = level.totalInFlight;
          inFlight.record(level.atMs, level.replicas > 0 ? level.totalInFlight : null);
          cpu?.record(level.atMs, level.replicas > 0 ? level.cpuUtilization : null);
        },
        error: (err) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
      const ticks = scheduler.schedule(function (this: SchedulerAction<void>) {
        subscriber.next(load(scheduler.now()));
        this.schedule(undefined, tickMs);
      }, tickMs);
      // Between ticks, every gapMs while some replica reports (a tick just emitted resets the gap).
      const between =
        gapMs > 0
          ? scheduler.schedule(function (this: SchedulerAction<void>) {
              const nowMs = scheduler.now();
              if (replicas > 0 && nowMs - lastEmitMs >= gapMs) subscriber.next({ ...load(nowMs), betweenTicks: true });
              this.schedule(undefined, gapMs);
            }, gapMs)
          : null;
      return () => {
        sub.unsubscribe();
        ticks.unsubscribe();
        between?.unsubscribe();
      };
    });
}
