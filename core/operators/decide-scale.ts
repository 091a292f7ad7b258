import { Observable, type OperatorFunction } from 'rxjs';
import type { AutoscalingSpec } from '../config/api-spec.js';
import type { TickLoad } from '../metrics/api-load.js';
import {
  INITIAL_SCALING_POLICY_STATE,
  type ScalingMetrics,
  type ScalingPolicy,
  type ScalingPolicyState,
} from '../ports/scaling-policy.js';
import type { ScalingTick } from '../scaling/scaling-tick.js';

/** Options of `decideScale`. */
export interface DecideScaleOptions {
  readonly api: string;
  readonly spec: AutoscalingSpec;
  readonly policy: ScalingPolicy;
  /** The replica count before the first tick (the orchestrator's view at start). */
  readonly initialReplicas: number;
  /** Policy state from a previous run (persisted); default: a fresh start. */
  readonly initialState?: ScalingPolicyState;
  /**
   * The orchestrator's view of the replica count. Each value replaces the count the next tick decides
   * from; between values the count follows the decisions (a decision is assumed applied).
   */
  readonly currentReplicas$?: Observable<number>;
  /** New autoscaling settings (same tick and windows); each value is used from the next tick on. */
  readonly spec$?: Observable<AutoscalingSpec>;
}

/** What the policy is told when a tick has no usable measurement. */
export function tickMetrics(load: TickLoad): ScalingMetrics {
  if (load.replicasReporting === 0) return { valid: false, reason: 'no fresh samples from any replica' };
  if (load.avgInFlight === null) return { valid: false, reason: 'no samples in the window yet' };
  return {
    valid: true,
    avgInFlight: load.avgInFlight,
    panicAvgInFlight: load.panicAvgInFlight,
    avgCpuUtilization: load.avgCpuUtilization,
    replicasReporting: load.replicasReporting,
  };
}

/**
 * Tick loads → scaling ticks: runs the pure policy once per tick, threading its state (state in,
 * state out) and the current replica count. Not time-dependent itself: the time is each tick's
 * `atMs` (from the scheduler upstream). Completes and errors with the source; an exception thrown by
 * the policy errors the stream (with that exception).
 */
export function decideScale(options: DecideScaleOptions): OperatorFunction<TickLoad, ScalingTick> {
  return (source) =>
    new Observable<ScalingTick>((subscriber) => {
      let state = options.initialState ?? INITIAL_SCALING_POLICY_STATE;
      let current = options.initialReplicas;
      let spec = options.spec;
      const specSub = options.spec$?.subscribe({
        next: (s) => {
          spec = s;
        },
        error: (err) => subscriber.error(err),
      });
      const currentSub = options.currentReplicas$?.subscribe({
        next: (n) => {
          current = n;
        },
        error: (err) => subscriber.error(err),
      });
      const sub = source.subscribe({
        next(load) {
          let r: ReturnType<ScalingPolicy['decide']>;
          try {
            r = options.policy.decide({ spec, currentReplicas: current, metrics: tickMetrics(load) }, state, load.atMs);
          } catch (err) {
            // Thrown inside an observer, rxjs would only report it as unhandled; make it a stream error.
            subscriber.error(err);
            return;
          }
          let decision = r.decision;
          if (load.betweenTicks) {
            // Between ticks only entering a panic with a scale-up is kept (ScalingPolicy.decidesBetweenTicks);
            // the rest, a panic's further steps included, waits for the tick.
            if (state.panic !== null || decision.panic?.active !== true || decision.desired <= current) return;
            decision = { ...decision, reason: `${decision.reason}; decided between ticks` };
          }
          state = r.state;
          current = decision.desired;
          subscriber.next({ api: options.api, atMs: load.atMs, load, decision, state });
        },
        error: (err) => subscriber.error(err),
        complete: () => subscriber.complete(),
      });
      return () => {
        currentSub?.unsubscribe();
        specSub?.unsubscribe();
        sub.unsubscribe();
      };
    });
}
