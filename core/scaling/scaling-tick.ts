import type { TickLoad } from '../metrics/api-load.js';
import type { ScalingDecision, ScalingPolicyState } from '../ports/scaling-policy.js';

/**
 * One autoscaler tick of one API, for explainability (`ticks$`, `myelin simulate`): what was measured,
 * what the policy decided and why, and the policy state after the tick (persist it to survive restarts).
 */
export interface ScalingTick {
  readonly api: string;
  /** Scheduler time of the tick, ms. */
  readonly atMs: number;
  readonly load: TickLoad;
  readonly decision: ScalingDecision;
  readonly state: ScalingPolicyState;
}

/** True when the tick's decision changes the replica count. */
export function isScalingChange(tick: ScalingTick): boolean {
  return tick.decision.desired !== tick.decision.current;
}
