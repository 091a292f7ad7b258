import type { AutoscalingSpec } from '../config/api-spec.js';
import type { ScalingPolicyState, ScalingResult } from '../ports/scaling-policy.js';
import { recordRecommendation } from './cortex-rules.js';
import { formatNumber } from './format.js';

/** Arguments of `decidePoke`. */
export interface PokeArgs {
  /** The policy kind the decision is reported under (`cortex`, `burst`, …). */
  readonly policy: string;
  readonly spec: AutoscalingSpec;
  /** Replicas the API runs now (requested; none of them is ready, or the gateway would not hold). */
  readonly current: number;
  /** Requests the gateway holds for the API now, waiting for a ready replica. */
  readonly held: number;
  readonly state: ScalingPolicyState;
  readonly nowMs: number;
}

/**
 * The decision for a poke (Knative's activator poke): `held` requests wait at the gateway because no
 * replica of the API is ready, typically because it is scaled to zero. The count rises at once to
 * what the held requests ask for, `ceil(held / target_replica_concurrency)`, bounded by
 * [max(1, min_replicas), max_replicas] and never below the current count. Factor caps, tolerances,
 * the start-up hold and upscale stabilization do not apply: they protect running capacity from
 * noise, and there is none running; every held request is a client waiting. The recommendation is
 * recorded in the history, so downscale stabilization keeps the capacity for its period as after
 * any other decision. Returns null when the poke asks for no more than `current` (nothing to do).
 *
 * Examples: 0 replicas, 1 request held, target 1 ⇒ 0 → 1. A burst of 20 held while that one replica
 * starts, target 4 ⇒ ceil(20 / 4) = 5 ⇒ 1 → 5. 20 held at max_replicas 3 ⇒ 3.
 */
export function decidePoke(a: PokeArgs): ScalingResult | null {
  const { held } = a;
  return rise(a, held, `poked: ${held} request${held === 1 ? '' : 's'} held at the gateway with no ready replica`);
}

/** Arguments of `decideFromZero`. */
export interface FromZeroArgs {
  readonly policy: string;
  readonly spec: AutoscalingSpec;
  /** The window mean of the API's total in flight; at zero replicas only the gateway's held requests report. */
  readonly avgInFlight: number;
  readonly state: ScalingPolicyState;
  readonly nowMs: number;
}

/**
 * A tick at zero replicas that measured load (the gateway reports the requests it holds as in
 * flight): the same rise as `decidePoke`, from the window mean. The `cortex` and `burst` policies call
 * it first at zero, so an API leaves zero at its next tick even when no poke reached the autoscaler
 * (the cortex rules alone would cap 0 → 1 and then hold it by upscale stabilization, whose history
 * is all zeros). Null when the mean is 0 (no load: stay at zero).
 *
 * Example: 12 held for the whole measured part of the window, target 4 ⇒ 0 → 3.
 */
export function decideFromZero(a: FromZeroArgs): ScalingResult | null {
  return rise({ ...a, current: 0 }, a.avgInFlight, `from zero: ${formatNumber(a.avgInFlight)} in flight held at the gateway`);
}

function rise(a: Omit<PokeArgs, 'held'>, inFlight: number, why: string): ScalingResult | null {
  const { spec, current } = a;
  if (!(inFlight > 0)) return null;
  const target = spec.targetReplicaConcurrency;
  const raw = inFlight / target;
  const want = Math.min(spec.maxReplicas, Math.max(1, spec.minReplicas, Math.ceil(raw)));
  if (want <= current) return null;
  const startMs = a.state.startMs ?? a.nowMs;
  const history = recordRecommendation(a.state.history, a.nowMs, want, spec);
  const limited = want < Math.ceil(raw) ? `; limited to max_replicas ${spec.maxReplicas}` : '';
  const reason = `scale up ${current} → ${want}; ${why} (${formatNumber(inFlight)} / target ${formatNumber(target)} ⇒ ${formatNumber(raw)})${limited}`;
  return {
    decision: {
      policy: a.policy,
      valid: true,
      current,
      desired: want,
      metric: 'inFlight',
      avg: inFlight,
      target,
      raw,
      recommendation: want,
      bounds: {
        minReplicas: spec.minReplicas,
        maxReplicas: spec.maxReplicas,
        factorFloor: current,
        factorCeiling: want,
        stabilizationFloor: null,
        stabilizationCeiling: null,
      },
      reason,
    },
    state: { v: 1, startMs, history, panic: a.state.panic },
  };
}
