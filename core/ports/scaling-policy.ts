import type { AutoscalingSpec } from '../config/api-spec.js';

/**
 * What the pipeline measured for one API at one tick. "No data" is a value (`valid: false`), never an
 * exception and never zero load (SG 2.2): a policy given invalid metrics holds the current count.
 */
export type ScalingMetrics =
  | { readonly valid: false; readonly reason: string }
  | {
      readonly valid: true;
      /** Time-weighted mean of the API's total requests in flight over (now − windowMs, now]. */
      readonly avgInFlight: number;
      /** The same mean over (now − panicWindowMs, now]; null when the pipeline did not compute it. */
      readonly panicAvgInFlight: number | null;
      /**
       * Time-weighted mean over the window of the replicas' mean CPU utilization, as a fraction of the
       * CPU request (0.8 = 80 %); null when no replica reports CPU.
       */
      readonly avgCpuUtilization: number | null;
      /** Replicas with a fresh sample at this tick (at least 1 when valid). */
      readonly replicasReporting: number;
    };

/** Everything a policy decides from, besides its own state and the time. */
export interface ScalingInput {
  readonly spec: AutoscalingSpec;
  /** Replicas the API runs now as the orchestrator sees them (requested, not necessarily ready). */
  readonly currentReplicas: number;
  readonly metrics: ScalingMetrics;
}

/** The limits applied on the way from the raw recommendation to the decision, for explainability. */
export interface ScalingBounds {
  readonly minReplicas: number;
  readonly maxReplicas: number;
  /** Lowest count one event may go to: min(cur − 1, ceil(cur × max_downscale_factor)) ("always allow −1"). */
  readonly factorFloor: number;
  /** Highest count one event may go to: max(cur + 1, ceil(cur × max_upscale_factor)) ("always allow +1"). */
  readonly factorCeiling: number;
  /** min(highest recommendation of the downscale period, cur); set only when the tick was going down. */
  readonly stabilizationFloor: number | null;
  /** max(lowest recommendation of the upscale period, cur); set only when the tick was going up. */
  readonly stabilizationCeiling: number | null;
}

/** Panic mode details of the `burst` policy. */
export interface PanicInfo {
  /** True while panicking (from entering until a full window below the threshold). */
  readonly active: boolean;
  /** Mean total in flight over the panic window. */
  readonly avg: number;
  /** avg / target: the replicas the panic window asks for, before rounding. */
  readonly raw: number;
  /** The threshold the raw value was compared with: panicThreshold × max(1, current). */
  readonly threshold: number;
}

/** One tick's decision with everything needed to explain it (`myelin simulate`, `scaling.decided`). */
export interface ScalingDecision {
  readonly policy: string;
  /** False when there was no usable data: `desired === current`, avg/raw/recommendation are null. */
  readonly valid: boolean;
  readonly current: number;
  /** The replica count to run from now on. */
  readonly desired: number;
  /** What `avg` and `target` measure: requests in flight (total per API) or CPU utilization (percent). */
  readonly metric: 'inFlight' | 'cpuUtilization';
  /** inFlight: mean total in flight over the window; cpuUtilization: mean utilization in percent. */
  readonly avg: number | null;
  /** inFlight: target_replica_concurrency; cpuUtilization: target_cpu_utilization (percent). */
  readonly target: number;
  /** Replicas asked for before rounding, e.g. 9.3 in flight at target 1 ⇒ 9.3. */
  readonly raw: number | null;
  /** After tolerance, factor caps and clamping, before stabilization; what the history records. */
  readonly recommendation: number | null;
  readonly bounds: ScalingBounds | null;
  /** For people: "scale up 4 → 6; capped by max_upscale_factor 1.5 (ceiling 6)", "within upscale tolerance …". */
  readonly reason: string;
  /** Only from the `burst` policy. */
  readonly panic?: PanicInfo;
}

/**
 * A policy's memory between ticks: plain JSON, so it can be persisted and handed back after a restart
 * (stabilization then resumes instead of starting over as it did in Cortex). Every policy reads and
 * writes this one shape, so switching policy keeps the history.
 */
export interface ScalingPolicyState {
  readonly v: 1;
  /** `nowMs` of the API's first tick (start-up holds count from here); null before the first tick. */
  readonly startMs: number | null;
  /** Recommendations after caps and clamping, before stabilization, as `[tMs, replicas]`, oldest first. */
  readonly history: readonly (readonly [number, number])[];
  /** `burst` only: set while panicking. */
  readonly panic: { readonly sinceMs: number; readonly lastOverMs: number } | null;
}

/** The state before an API's first tick. */
export const INITIAL_SCALING_POLICY_STATE: ScalingPolicyState = Object.freeze({
  v: 1,
  startMs: null,
  history: Object.freeze([]) as readonly (readonly [number, number])[],
  panic: null,
});

/** True when `x` (e.g. parsed from a state file) is a usable `ScalingPolicyState`. */
export function isScalingPolicyState(x: unknown): x is ScalingPolicyState {
  if (typeof x !== 'object' || x === null) return false;
  const s = x as Record<string, unknown>;
  if (s.v !== 1) return false;
  if (s.startMs !== null && !Number.isFinite(s.startMs)) return false;
  if (!Array.isArray(s.history)) return false;
  for (const e of s.history) {
    if (!Array.isArray(e) || e.length !== 2 || !Number.isFinite(e[0]) || !Number.isInteger(e[1])) return false;
  }
  if (s.panic !== null) {
    if (typeof s.panic !== 'object') return false;
    const p = s.panic as Record<string, unknown>;
    if (!Number.isFinite(p.sinceMs) || !Number.isFinite(p.lastOverMs)) return false;
  }
  return true;
}

/** What `decide` returns: the decision and the state to pass to the next tick. */
export interface ScalingResult {
  readonly decision: ScalingDecision;
  readonly state: ScalingPolicyState;
}

/**
 * A scaling policy (kinds `cortex`, `burst`, `cpu`; chosen by `autoscaling.policy`). `decide` is pure:
 * no clock, no I/O, no mutation of its arguments; time is `nowMs` (ms, any consistent epoch) and the
 * returned state is the only memory. It never throws for missing data: invalid metrics give a
 * hold decision (`valid: false`, desired = current).
 */
export const ScalingPolicy = Symbol('ScalingPolicy');
export interface ScalingPolicy {
  readonly kind: string;
  /** Which measurement the policy scales on; the pipeline computes the CPU mean only when asked. */
  readonly metric: 'inFlight' | 'cpuUtilization';
  /**
   * Also decide between ticks: every `BETWEEN_TICKS_MIN_GAP_MS` (250 ms) between ticks, the pipeline
   * asks the policy with the windows as they stand, and keeps the answer only when it enters a
   * panic with a scale-up (no panic before, `decision.panic.active` and more replicas); anything else,
   * a panic's later steps included, is dropped, state untouched. The burst policy sets it, so a load step is answered once the panic window shows it,
   * not at the next tick (docs/autoscaling.md). The cortex policy does not: its decisions stay on ticks.
   */
  readonly decidesBetweenTicks?: boolean;
  decide(input: ScalingInput, state: ScalingPolicyState, nowMs: number): ScalingResult;
}
