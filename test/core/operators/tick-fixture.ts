import type { TickLoad } from '../../../core/metrics/api-load.js';
import type { ScalingDecision } from '../../../core/ports/scaling-policy.js';
import { INITIAL_SCALING_POLICY_STATE } from '../../../core/ports/scaling-policy.js';
import type { ScalingTick } from '../../../core/scaling/scaling-tick.js';

/** A tick load with `avg` in flight from one replica (null: no replica reports). */
export function load(atMs: number, avg: number | null): TickLoad {
  return {
    atMs,
    replicasReporting: avg === null ? 0 : 1,
    totalInFlight: avg,
    avgInFlight: avg,
    panicAvgInFlight: avg,
    avgCpuUtilization: null,
    coveredMs: avg === null ? 0 : 10,
  };
}

/** A scaling tick whose decision goes from `current` to `desired` (valid unless said otherwise). */
export function scalingTick(atMs: number, current: number, desired: number, valid = true): ScalingTick {
  const decision: ScalingDecision = {
    policy: 'cortex',
    valid,
    current,
    desired,
    metric: 'inFlight',
    avg: valid ? desired : null,
    target: 1,
    raw: valid ? desired : null,
    recommendation: valid ? desired : null,
    bounds: null,
    reason: valid ? `to ${desired}` : 'metrics unavailable (no fresh samples from any replica): holding ' + current,
  };
  return { api: 'iris', atMs, load: load(atMs, valid ? desired : null), decision, state: INITIAL_SCALING_POLICY_STATE };
}
