import { injectable } from 'inversify';
import type { PanicInfo, ScalingInput, ScalingPolicy, ScalingPolicyState, ScalingResult } from '../../core/ports/scaling-policy.js';
import { composeReason, cortexTick, holdForMissingData } from '../../core/scaling/cortex-rules.js';
import { formatDuration, formatNumber } from '../../core/scaling/format.js';
import { decideFromZero } from '../../core/scaling/scale-from-zero.js';

/**
 * `autoscaling.policy: burst`: the cortex rules plus Knative's panic mode (reference/peers.md §2), so
 * a load step is answered within a tick or two instead of minutes.
 *
 * - Panic starts when the panic window (default 10 % of `window`) asks for at least
 *   `panic_threshold` × current replicas: panicRaw = panicAvg / target ≥ threshold × max(1, cur).
 * - While panicking the API scales up at once to ceil(panicRaw), bounded by [max(1, min), max],
 *   ignoring upscale stabilization, the start-up hold and the upscale factor, and never scales down.
 * - Panic ends once a full `window` has passed since the panic window last crossed the threshold;
 *   then the cortex rules apply again. The recommendation recorded while panicking is
 *   max(cortex recommendation, panic want), so downscale stabilization keeps the burst capacity for
 *   `downscale_stabilization_period` after the panic ends.
 *
 * Example: cur 2, target 1, threshold 2, panic window 6 s averaging 10 in flight ⇒ panicRaw 10 ≥ 4 ⇒
 * scale 2 → 10 now (the stable 60 s window, still mostly quiet, would only have allowed 3, a minute later).
 */
@injectable()
export class BurstScalingPolicy implements ScalingPolicy {
  readonly kind = 'burst';
  readonly metric = 'inFlight' as const;
  /** A panic scale-up is taken as the sample that shows it arrives, not at the next tick. */
  readonly decidesBetweenTicks = true;

  decide(input: ScalingInput, state: ScalingPolicyState, nowMs: number): ScalingResult {
    const { spec, currentReplicas: current, metrics } = input;
    const target = spec.targetReplicaConcurrency;
    // No data: hold, and leave the panic as it is (silence neither starts nor ends it).
    if (!metrics.valid) return holdForMissingData(this.kind, this.metric, target, current, metrics.reason, state, nowMs);
    const avg = metrics.avgInFlight;
    // At zero, load is requests held at the gateway: rise at once (scale-from-zero.ts); no panic to enter.
    if (current === 0) {
      const up = decideFromZero({ policy: this.kind, spec, avgInFlight: avg, state, nowMs });
      if (up !== null) return { decision: { ...up.decision, panic: { active: false, avg: metrics.panicAvgInFlight ?? avg, raw: (metrics.panicAvgInFlight ?? avg) / target, threshold: spec.panicThreshold } }, state: up.state };
    }
    const base = cortexTick({ policy: this.kind, metric: this.metric, spec, current, avg, target, raw: avg / target, state, nowMs });

    const panicAvg = metrics.panicAvgInFlight ?? avg;
    const panicRaw = panicAvg / target;
    const threshold = spec.panicThreshold * Math.max(1, current);
    const over = panicRaw >= threshold;
    let panic = state.panic;
    let ended = false;
    if (over) panic = { sinceMs: panic?.sinceMs ?? nowMs, lastOverMs: nowMs };
    else if (panic !== null && nowMs - panic.lastOverMs >= spec.windowMs) {
      panic = null;
      ended = true;
    }
    const info: PanicInfo = { active: panic !== null, avg: panicAvg, raw: panicRaw, threshold };

    if (panic === null) {
      const reason = ended ? `${base.decision.reason}; panic ended (below threshold for ${formatDuration(spec.windowMs)})` : base.decision.reason;
      return { decision: { ...base.decision, reason, panic: info }, state: { ...base.state, panic: null } };
    }

    const baseRec = base.decision.recommendation as number;
    // Never 0, also with min_replicas 0: panic does not scale down, and it ends a window after the
    // last crossing; only then may the cortex rules take an idle API to zero.
    const panicWant = Math.min(spec.maxReplicas, Math.max(1, spec.minReplicas, Math.ceil(panicRaw)));
    const recommendation = Math.max(baseRec, panicWant);
    const desired = Math.max(current, base.decision.desired, panicWant);
    // Record the panic recommendation instead of the cortex one for this tick.
    const history = [...base.state.history.slice(0, -1), [nowMs, recommendation] as const];

    const panicNote =
      `${state.panic === null ? 'entered' : 'in'} panic mode (${formatNumber(panicAvg)} in flight over the last ` +
      `${formatDuration(spec.panicWindowMs)} ⇒ ${formatNumber(panicRaw)} replicas, threshold ${formatNumber(threshold)})`;
    let reason: string;
    if (desired === base.decision.desired && desired !== current) reason = `${base.decision.reason}; ${panicNote}`;
    else {
      const notes = [panicNote];
      if (desired === panicWant && panicWant > base.decision.desired) notes.push(`panic window asks ${panicWant}, upscale stabilization ignored`);
      if (base.decision.desired < current) notes.push(`no scale-down while panicking (stable window asks ${base.decision.desired})`);
      reason = composeReason(current, desired, recommendation, notes);
    }
    return {
      decision: { ...base.decision, desired, recommendation, reason, panic: info },
      state: { ...base.state, history, panic },
    };
  }
}
