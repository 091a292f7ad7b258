import { asyncScheduler, Observable, type OperatorFunction, type SchedulerLike, type Subscription } from 'rxjs';
import type { LoadLevel } from '../metrics/api-load.js';
import type { MetricSample } from '../metrics/metric-sample.js';

/** Options of `totalInFlight`. */
export interface TotalInFlightOptions {
  /** A replica silent for more than this many of its sample intervals drops out (default 3). */
  readonly staleAfterIntervals?: number;
  /** Also average `cpuUtilization` over the reporting replicas (only the `cpu` policy needs it). */
  readonly cpu?: boolean;
}

interface ReplicaEntry {
  inFlight: number;
  cpu: number | undefined;
  lastSeenMs: number;
  staleMs: number;
}

/**
 * One API's samples → its load level after every change: the latest sample of each replica, summed.
 * A replica silent for more than `staleAfterIntervals` × its `intervalMs` (3 × 1 s by default) drops
 * out at that moment (a scheduled check, so drop-outs happen even when no sample arrives); when the
 * last one drops out the level says `replicas: 0`, which downstream means "no data", never zero load.
 *
 * Example: a: 2 at 0 s, b: 3 at 0.5 s ⇒ 2, then 5; a silent after that ⇒ at 3.001 s the total is 3.
 *
 * Time is `scheduler.now()` at arrival (the replicas' clocks are not trusted). Samples with a
 * non-finite or negative `inFlight` are ignored (the transports validate; this is a second fence).
 * Replicas are kept in arrival order, so the drop-out check looks only at the least recently heard
 * one; with mixed sample intervals inside one API a short-interval replica can drop out late.
 * Completes and errors with the source; the pending check is cancelled on teardown.
 */
export function totalInFlight(options: TotalInFlightOptions = {}, scheduler: SchedulerLike = asyncScheduler): OperatorFunction<MetricSample, LoadLevel> {
  const staleIntervals = options.staleAfterIntervals ?? 3;
  const withCpu = options.cpu ?? false;
  return (source) =>
    new Observable<LoadLevel>((subscriber) => {
      const table = new Map<string, ReplicaEntry>();
      let sum = 0;
      let cpuSum = 0;
      let cpuCount = 0;
      let check: Subscription | null = null;

      const emit = (atMs: number): void => {
        subscriber.next({
          atMs,
          totalInFlight: table.size > 0 ? sum : 0,
          replicas: table.size,
          cpuUtilization: cpuCount > 0 ? cpuSum / cpuCount : null,
        });
      };
      const dropExpired = (nowMs: number): boolean => {
        let dropped = false;
        for (const [id, e] of table) {
          if (nowMs - e.lastSeenMs <= e.staleMs) break;
          table.delete(id);
          sum -= e.inFlight;
          if (e.cpu !== undefined) {
            cpuSum -= e.cpu;
            cpuCount--;
          }
          dropped = true;
        }
        return dropped;
      };
      // Exact sums again, so float drift from += / -= cannot build up over days.
      const resum = (): void => {
        sum = 0;
        cpuSum = 0;
        cpuCount = 0;
        for (const e of table.values()) {
          sum += e.inFlight;
          if (e.cpu !== undefined) {
            cpuSum += e.cpu;
            cpuCount++;
          }
        }
      };
      const arm = (nowMs: number): void => {
        if (check !== null || table.size === 0) return;
        const front = table.values().next().value as ReplicaEntry;
        // "More than" staleMs: the first instant the oldest replica counts as silent.
        const dueMs = front.lastSeenMs + front.staleMs + 1;
        check = scheduler.schedule(() => {
          check = null;
          const now = scheduler.now();
          const dropped = dropExpired(now);
          resum();
          if (dropped) emit(now);
          arm(now);
        }, Math.max(0, dueMs - nowMs));
      };

      const sub = source.subscribe({
        next(s) {
          const v = s.inFlight;
          if (!(v >= 0) || v === Infinity) return;
          const nowMs = scheduler.now();
          const cpu = withCpu && s.cpuUtilization !== undefined && s.cpuUtilization >= 0 && Number.isFinite(s.cpuUtilization) ? s.cpuUtilization : undefined;
          let e = table.get(s.replica);
          if (e === undefined) {
            e = { inFlight: v, cpu, lastSeenMs: nowMs, staleMs: staleIntervals * (s.intervalMs > 0 ? s.intervalMs : 1000) };
            sum += v;
          } else {
            sum += v - e.inFlight;
            if (e.cpu !== undefined) {
              cpuSum -= e.cpu;
              cpuCount--;
            }
            e.inFlight = v;
            e.cpu = cpu;
            e.lastSeenMs = nowMs;
            e.staleMs = staleIntervals * (s.intervalMs > 0 ? s.intervalMs : 1000);
            table.delete(s.replica); // re-insert: the map stays in order of last arrival
          }
          if (cpu !== undefined) {
            cpuSum += cpu;
            cpuCount++;
          }
          table.set(s.replica, e);
          dropExpired(nowMs);
          emit(nowMs);
          arm(nowMs);
        },
        error: (err) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
      return () => {
        sub.unsubscribe();
        check?.unsubscribe();
        check = null;
      };
    });
}
