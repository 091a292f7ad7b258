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
 * The per-sample cost is O(1); one scheduled sweep per API, at the earliest instant a replica can go
 * silent, drops replicas and recomputes the sums (O(replicas), about every 2 intervals).
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
      let checkDueMs = Infinity;

      const emit = (atMs: number): void => {
        subscriber.next({
          atMs,
          totalInFlight: table.size > 0 ? sum : 0,
          replicas: table.size,
          cpuUtilization: cpuCount > 0 ? cpuSum / cpuCount : null,
        });
      };
      // Drops the replicas silent for longer than their staleMs, recomputes the sums exactly (no float
      // drift from += / -= over days) and returns the next instant one can go silent (Infinity if none).
      const sweep = (nowMs: number): { dropped: boolean; nextDueMs: number } => {
        let dropped = false;
        let nextDueMs = Infinity;
        sum = 0;
        cpuSum = 0;
        cpuCount = 0;
        for (const [id, e] of table) {
          if (nowMs - e.lastSeenMs > e.staleMs) {
            table.delete(id);
            dropped = true;
            continue;
          }
          sum += e.inFlight;
          if (e.cpu !== undefined) {
            cpuSum += e.cpu;
            cpuCount++;
          }
          // "More than" staleMs: the first whole ms at which this replica counts as silent.
          const due = e.lastSeenMs + e.staleMs + 1;
          if (due < nextDueMs) nextDueMs = due;
        }
        return { dropped, nextDueMs };
      };
      const arm = (dueMs: number, nowMs: number): void => {
        check?.unsubscribe();
        checkDueMs = dueMs;
        check = scheduler.schedule(() => {
          check = null;
          checkDueMs = Infinity;
          const now = scheduler.now();
          const { dropped, nextDueMs } = sweep(now);
          if (dropped) emit(now);
          if (nextDueMs !== Infinity) arm(nextDueMs, now);
        }, Math.max(0, dueMs - nowMs));
      };

      const sub = source.subscribe({
        next(s) {
          const v = s.inFlight;
          if (!(v >= 0) || v === Infinity) return;
          const nowMs = scheduler.now();
          const cpu = withCpu && s.cpuUtilization !== undefined && s.cpuUtilization >= 0 && Number.isFinite(s.cpuUtilization) ? s.cpuUtilization : undefined;
          let e = table.get(s.replica);
          const isNew = e === undefined;
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
          }
          if (cpu !== undefined) {
            cpuSum += cpu;
            cpuCount++;
          }
          if (isNew) table.set(s.replica, e);
          emit(nowMs);
          // Drop-outs happen in the scheduled sweep, at the exact instant this replica (or an earlier one)
          // can go silent; a pending sweep is moved only when this replica would be due before it.
          const dueMs = nowMs + e.staleMs + 1;
          if (dueMs < checkDueMs) arm(dueMs, nowMs);
        },
        error: (err) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
      return () => {
        sub.unsubscribe();
        check?.unsubscribe();
        check = null;
        checkDueMs = Infinity;
      };
    });
}
