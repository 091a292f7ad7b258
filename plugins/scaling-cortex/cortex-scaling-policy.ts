import { injectable } from 'inversify';
import type { ScalingInput, ScalingPolicy, ScalingPolicyState, ScalingResult } from '../../core/ports/scaling-policy.js';
import { cortexTick, holdForMissingData } from '../../core/scaling/cortex-rules.js';
import { decideFromZero } from '../../core/scaling/scale-from-zero.js';

/**
 * The default policy (`autoscaling.policy: cortex`): Cortex's decisions (reference/cortex.md §2.3),
 * with stabilization as Cortex fixed it after 0.25. raw = avg in flight / target_replica_concurrency.
 *
 * Example: 40 in flight at target 10 ⇒ raw 4; at cur 2 the ceiling is max(3, ceil(2 × 1.5)) = 3 ⇒
 * recommendation 3, then held at 2 by upscale stabilization until a full minute asked for more than 2.
 *
 * With `min_replicas: 0` an API with no request in flight for a whole window recommends 0 and,
 * after `downscale_stabilization_period` of such recommendations, goes to zero; at zero, requests
 * held at the gateway bring it back at once (`decideFromZero`, and the gateway's poke).
 */
@injectable()
export class CortexScalingPolicy implements ScalingPolicy {
  readonly kind = 'cortex';
  readonly metric = 'inFlight' as const;

  decide(input: ScalingInput, state: ScalingPolicyState, nowMs: number): ScalingResult {
    const { spec, currentReplicas: current, metrics } = input;
    const target = spec.targetReplicaConcurrency;
    if (!metrics.valid) return holdForMissingData(this.kind, this.metric, target, current, metrics.reason, state, nowMs);
    const avg = metrics.avgInFlight;
    // At zero, load is requests held at the gateway: rise at once (scale-from-zero.ts).
    if (current === 0) {
      const up = decideFromZero({ policy: this.kind, spec, avgInFlight: avg, state, nowMs });
      if (up !== null) return up;
    }
    return cortexTick({ policy: this.kind, metric: this.metric, spec, current, avg, target, raw: avg / target, state, nowMs });
  }
}
