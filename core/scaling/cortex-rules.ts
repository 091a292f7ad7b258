import type { AutoscalingSpec } from '../config/api-spec.js';
import type { ScalingBounds, ScalingDecision, ScalingPolicyState, ScalingResult } from '../ports/scaling-policy.js';
import { formatDuration, formatNumber } from './format.js';

/**
 * Cortex's per-tick rules (reference/cortex.md §2.3), shared by the `cortex`, `burst` and `cpu`
 * policies. Pure functions: time comes in as `nowMs`, state in and out as plain JSON.
 *
 * Order (it matters): raw → ceil → tolerances (compare raw with current) → factor caps ("always allow
 * ±1") → clamp to [min_replicas, max_replicas] → record → stabilization in its own direction
 * only (the rule Cortex fixed after 0.25) with the start-up holds.
 */

/** The recommendation before stabilization, with the notes that explain how it was reached. */
export interface CortexRecommendation {
  /** After tolerance, factor caps and clamp: the value the history records. */
  readonly recommendation: number;
  readonly factorFloor: number;
  readonly factorCeiling: number;
  readonly notes: readonly string[];
}

/**
 * Steps 1–4 of a tick: ceil, tolerances, factor caps, clamp.
 *
 * Worked example (reference §2.3): cur 4, target 1, avg 9.3 ⇒ raw 9.3 ⇒ ceil 10; 9.3 > 4 × 1.05 so the
 * tolerance does not hold it; ceiling = max(4 + 1, ceil(4 × 1.5)) = 6 ⇒ recommendation 6.
 */
export function recommend(raw: number, current: number, spec: AutoscalingSpec): CortexRecommendation {
  const notes: string[] = [];
  let rec = Math.ceil(raw);
  // The tolerances compare the raw (unrounded) value with the current count, as Cortex does.
  if (raw < current && raw > current * (1 - spec.downscaleTolerance)) {
    if (rec !== current) notes.push(`within downscale tolerance (raw ${formatNumber(raw)} > ${current} × ${formatNumber(1 - spec.downscaleTolerance)})`);
    rec = current;
  }
  if (raw > current && raw < current * (1 + spec.upscaleTolerance)) {
    if (rec !== current) notes.push(`within upscale tolerance (raw ${formatNumber(raw)} < ${current} × ${formatNumber(1 + spec.upscaleTolerance)})`);
    rec = current;
  }
  // Per-event step limits; "always allow ±1" so small APIs can move at all (1 × 0.75 would round back to 1).
  const factorFloor = Math.min(current - 1, Math.ceil(current * spec.maxDownscaleFactor));
  const factorCeiling = Math.max(current + 1, Math.ceil(current * spec.maxUpscaleFactor));
  if (rec < factorFloor) {
    notes.push(`capped by max_downscale_factor ${formatNumber(spec.maxDownscaleFactor)} (floor ${factorFloor})`);
    rec = factorFloor;
  }
  if (rec > factorCeiling) {
    notes.push(`capped by max_upscale_factor ${formatNumber(spec.maxUpscaleFactor)} (ceiling ${factorCeiling})`);
    rec = factorCeiling;
  }
  // min_replicas 0 (scale to zero) lets rec reach 0, which only raw 0 gives: no request in flight
  // over the whole window (any load, 0.01 in flight, rounds up to 1).
  const lowest = Math.max(0, spec.minReplicas);
  if (rec < lowest) {
    notes.push(`raised to min_replicas ${spec.minReplicas}`);
    rec = lowest;
  }
  if (rec > spec.maxReplicas) {
    notes.push(`limited to max_replicas ${spec.maxReplicas}`);
    rec = spec.maxReplicas;
  }
  return { recommendation: rec, factorFloor, factorCeiling, notes };
}

/**
 * Appends `[nowMs, rec]` and drops entries that no stabilization period can see any more
 * (older than or exactly at `nowMs − max(down, up)`). Returns a new array.
 */
export function recordRecommendation(
  history: ScalingPolicyState['history'],
  nowMs: number,
  rec: number,
  spec: AutoscalingSpec,
): ScalingPolicyState['history'] {
  const keepMs = Math.max(spec.downscaleStabilizationPeriodMs, spec.upscaleStabilizationPeriodMs);
  const out: (readonly [number, number])[] = [];
  for (const e of history) if (e[0] > nowMs - keepMs) out.push(e);
  out.push([nowMs, rec]);
  return out;
}

/** Highest (`max`) or lowest (`min`) recommendation with time in (nowMs − periodMs, nowMs]; null if none. */
export function extremeSince(
  history: ScalingPolicyState['history'],
  nowMs: number,
  periodMs: number,
  which: 'max' | 'min',
): number | null {
  let best: number | null = null;
  for (const [t, r] of history) {
    if (t <= nowMs - periodMs || t > nowMs) continue;
    if (best === null || (which === 'max' ? r > best : r < best)) best = r;
  }
  return best;
}

/** The outcome of stabilization: the count to request and the bounds it applied. */
export interface Stabilized {
  readonly desired: number;
  readonly stabilizationFloor: number | null;
  readonly stabilizationCeiling: number | null;
  readonly notes: readonly string[];
}

/**
 * Stabilization as Cortex fixed it after 0.25, each direction only when going that way:
 * - going down: not below min(highest recommendation of the downscale period, cur); no scale-down at
 *   all before `downscale_stabilization_period` has passed since the first tick;
 * - going up: not above max(lowest recommendation of the upscale period, cur); no scale-up before
 *   `upscale_stabilization_period` has passed since the first tick.
 * `history` must already hold this tick's recommendation.
 *
 * Example: cur 4, rec 6, the last minute recommended 4, 4, 4, 4, 4, 6 ⇒ ceiling max(4, 4) = 4 ⇒ hold 4.
 */
export function stabilize(
  rec: number,
  current: number,
  history: ScalingPolicyState['history'],
  uptimeMs: number,
  nowMs: number,
  spec: AutoscalingSpec,
): Stabilized {
  const notes: string[] = [];
  let desired = rec;
  let stabilizationFloor: number | null = null;
  let stabilizationCeiling: number | null = null;
  if (desired < current) {
    const down = spec.downscaleStabilizationPeriodMs;
    const highest = extremeSince(history, nowMs, down, 'max');
    if (highest !== null) stabilizationFloor = Math.min(highest, current);
    if (uptimeMs < down) {
      notes.push(`held by start-up (no scale-down in the first ${formatDuration(down)})`);
      desired = current;
    } else if (stabilizationFloor !== null && desired < stabilizationFloor) {
      desired = stabilizationFloor;
      notes.push(
        `${desired === current ? 'held' : 'limited'} by downscale stabilization (highest rec ${highest} in last ${formatDuration(down)})`,
      );
    }
  }
  if (desired > current) {
    const up = spec.upscaleStabilizationPeriodMs;
    const lowest = extremeSince(history, nowMs, up, 'min');
    if (lowest !== null) stabilizationCeiling = Math.max(lowest, current);
    if (uptimeMs < up) {
      notes.push(`held by start-up (no scale-up in the first ${formatDuration(up)})`);
      desired = current;
    } else if (stabilizationCeiling !== null && desired > stabilizationCeiling) {
      desired = stabilizationCeiling;
      notes.push(
        `${desired === current ? 'held' : 'limited'} by upscale stabilization (lowest rec ${lowest} in last ${formatDuration(up)})`,
      );
    }
  }
  return { desired, stabilizationFloor, stabilizationCeiling, notes };
}

/** Joins the notes into the decision's reason, led by the change when there is one. */
export function composeReason(current: number, desired: number, rec: number | null, notes: readonly string[]): string {
  const head = desired > current ? `scale up ${current} → ${desired}` : desired < current ? `scale down ${current} → ${desired}` : null;
  if (head !== null) return [head, ...notes].join('; ');
  if (notes.length > 0) return notes.join('; ');
  return rec === null ? `hold ${current}` : `recommendation ${rec} equals current`;
}

/** Arguments of `cortexTick`. */
export interface CortexTickArgs {
  readonly policy: string;
  readonly metric: ScalingDecision['metric'];
  readonly spec: AutoscalingSpec;
  readonly current: number;
  /** The measurement (in flight, or CPU percent) and its target. */
  readonly avg: number;
  readonly target: number;
  /** Replicas asked for before rounding (avg / target for in-flight policies). */
  readonly raw: number;
  readonly state: ScalingPolicyState;
  readonly nowMs: number;
}

/**
 * One whole Cortex tick from a raw recommendation: recommend, record, stabilize. The state's
 * `startMs` is set on the first tick; `panic` is carried through unchanged.
 */
export function cortexTick(a: CortexTickArgs): ScalingResult {
  const startMs = a.state.startMs ?? a.nowMs;
  const r = recommend(a.raw, a.current, a.spec);
  const history = recordRecommendation(a.state.history, a.nowMs, r.recommendation, a.spec);
  const s = stabilize(r.recommendation, a.current, history, a.nowMs - startMs, a.nowMs, a.spec);
  const bounds: ScalingBounds = {
    minReplicas: a.spec.minReplicas,
    maxReplicas: a.spec.maxReplicas,
    factorFloor: r.factorFloor,
    factorCeiling: r.factorCeiling,
    stabilizationFloor: s.stabilizationFloor,
    stabilizationCeiling: s.stabilizationCeiling,
  };
  return {
    decision: {
      policy: a.policy,
      valid: true,
      current: a.current,
      desired: s.desired,
      metric: a.metric,
      avg: a.avg,
      target: a.target,
      raw: a.raw,
      recommendation: r.recommendation,
      bounds,
      reason: composeReason(a.current, s.desired, r.recommendation, [...r.notes, ...s.notes]),
    },
    state: { v: 1, startMs, history, panic: a.state.panic },
  };
}

/**
 * The decision for a tick without usable data: hold the current count, record nothing (as Cortex,
 * which returned before recording). The first tick still starts the start-up clock.
 */
export function holdForMissingData(
  policy: string,
  metric: ScalingDecision['metric'],
  target: number,
  current: number,
  reason: string,
  state: ScalingPolicyState,
  nowMs: number,
): ScalingResult {
  return {
    decision: {
      policy,
      valid: false,
      current,
      desired: current,
      metric,
      avg: null,
      target,
      raw: null,
      recommendation: null,
      bounds: null,
      // At zero no replica can report: the silence is the expected state, and a request held at the gateway pokes it.
      reason: current === 0 ? 'scaled to zero (no replica reports; a request held at the gateway starts one)' : `metrics unavailable (${reason}): holding ${current}`,
    },
    state: state.startMs === null ? { ...state, startMs: nowMs } : state,
  };
}
