import { Observable, type OperatorFunction } from 'rxjs';
import type { EngineEvent } from '../events/engine-event.js';
import type { ScalingTick } from '../scaling/scaling-tick.js';

/**
 * Scaling ticks → engine events: `scaling.decided` for every tick that changes the count, and
 * `metrics.unavailable` when an API goes without usable metrics (on the first such tick after data,
 * or the first tick of all; not again every tick while the silence lasts). `t` is the tick's time.
 * Completes and errors with the source.
 */
export function scalingEvents(): OperatorFunction<ScalingTick, EngineEvent> {
  return (source) =>
    new Observable<EngineEvent>((subscriber) => {
      let available = true;
      return source.subscribe({
        next(tick) {
          const d = tick.decision;
          if (!d.valid) {
            if (available) {
              subscriber.next({ v: 1, type: 'metrics.unavailable', api: tick.api, t: tick.atMs, replicas: d.current, reason: d.reason });
            }
            available = false;
            return;
          }
          available = true;
          if (d.desired !== d.current) {
            subscriber.next({
              v: 1,
              type: 'scaling.decided',
              api: tick.api,
              t: tick.atMs,
              from: d.current,
              to: d.desired,
              policy: d.policy,
              avgInFlight: tick.load.avgInFlight ?? 0,
              target: d.target,
              raw: d.raw ?? 0,
              recommendation: d.recommendation ?? d.desired,
              reason: d.reason,
            });
          }
        },
        error: (err) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
    });
}
