import { injectable } from 'inversify';
import type { ScalingInput, ScalingPolicy, ScalingPolicyState, ScalingResult } from '../../core/ports/scaling-policy.js';
import { cortexTick, holdForMissingData } from '../../core/scaling/cortex-rules.js';

/** Used when a spec with `policy: cpu` carries no `targetCpuUtilization` (the legacy dialect's default). */
export const DEFAULT_TARGET_CPU_UTILIZATION_PERCENT = 80;

/**
 * `autoscaling.policy: cpu`, for the legacy dialect's `target_cpu_utilization` (percent): like the
 * Kubernetes HPA Cortex used then, raw = cur × mean utilization / target, then the same tolerance,
 * factor caps, clamp and stabilization as the cortex policy.
 *
 * Example: 4 replicas at a mean 90 % of their CPU request, target 80 % ⇒ raw 4 × 90 / 80 = 4.5 ⇒ 5.
 * Utilization is rounded to 1e-6 percent first, so 0.8 × 100 is exactly 80 and 4 × 80 / 80 is exactly 4.
 */
@injectable()
export class CpuScalingPolicy implements ScalingPolicy {
  readonly kind = 'cpu';
  readonly metric = 'cpuUtilization' as const;

  decide(input: ScalingInput, state: ScalingPolicyState, nowMs: number): ScalingResult {
    const { spec, currentReplicas: current, metrics } = input;
    const target = spec.targetCpuUtilization ?? DEFAULT_TARGET_CPU_UTILIZATION_PERCENT;
    if (!metrics.valid) return holdForMissingData(this.kind, this.metric, target, current, metrics.reason, state, nowMs);
    if (metrics.avgCpuUtilization === null) {
      return holdForMissingData(this.kind, this.metric, target, current, 'no replica reports CPU utilization', state, nowMs);
    }
    const percent = Math.round(metrics.avgCpuUtilization * 100 * 1e6) / 1e6;
    const raw = (current * percent) / target;
    return cortexTick({ policy: this.kind, metric: this.metric, spec, current, avg: percent, target, raw, state, nowMs });
  }
}
