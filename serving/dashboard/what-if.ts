import { ContainerModule } from 'inversify';
import { pino } from 'pino';
import type { AutoscalingSpec } from '../../core/config/api-spec.js';
import { formatDuration, parseDuration } from '../../core/config/quantities.js';
import { ScalingPolicyRegistry } from '../../core/contribution/scaling-policy-registry.js';
import type { ScalingPolicyState } from '../../core/ports/scaling-policy.js';
import type { LoadTrace, TracePoint } from '../../core/scaling/load-trace.js';
import { replayTrace } from '../../core/scaling/replay-trace.js';
import type { ScalingTick } from '../../core/scaling/scaling-tick.js';
import { scalingBurstModule } from '../../plugins/scaling-burst/scaling-burst-module.js';
import { scalingCortexModule } from '../../plugins/scaling-cortex/scaling-cortex-module.js';
import { scalingCpuModule } from '../../plugins/scaling-cpu/scaling-cpu-module.js';
import { createContainer } from '../composition/composition-root.js';
import type { InFlightPoint } from '../daemon/in-flight-recording.js';
import { WhatIfError } from './what-if-error.js';

export { WhatIfError };

type Kind = 'duration' | 'int' | 'number' | 'policy';
/** The autoscaling fields a what-if may change, by their config-file names. */
export const WHAT_IF_FIELDS: Readonly<Record<string, { readonly field: keyof AutoscalingSpec; readonly kind: Kind }>> = {
  policy: { field: 'policy', kind: 'policy' },
  min_replicas: { field: 'minReplicas', kind: 'int' },
  max_replicas: { field: 'maxReplicas', kind: 'int' },
  target_replica_concurrency: { field: 'targetReplicaConcurrency', kind: 'number' },
  window: { field: 'windowMs', kind: 'duration' },
  downscale_stabilization_period: { field: 'downscaleStabilizationPeriodMs', kind: 'duration' },
  upscale_stabilization_period: { field: 'upscaleStabilizationPeriodMs', kind: 'duration' },
  max_downscale_factor: { field: 'maxDownscaleFactor', kind: 'number' },
  max_upscale_factor: { field: 'maxUpscaleFactor', kind: 'number' },
  downscale_tolerance: { field: 'downscaleTolerance', kind: 'number' },
  upscale_tolerance: { field: 'upscaleTolerance', kind: 'number' },
  tick: { field: 'tickMs', kind: 'duration' },
  panic_window: { field: 'panicWindowMs', kind: 'duration' },
  panic_threshold: { field: 'panicThreshold', kind: 'number' },
};

/** Short names accepted for the longest fields (`--set target=1`). */
const ALIASES: Readonly<Record<string, string>> = {
  target: 'target_replica_concurrency',
  stabilization: 'downscale_stabilization_period',
  downscale_stabilization: 'downscale_stabilization_period',
  upscale_stabilization: 'upscale_stabilization_period',
};

/** Parses `key=value` strings (`--set window=30s`) into a map; throws `WhatIfError` for one without `=`. */
export function parseSetOptions(items: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of items) {
    const i = item.indexOf('=');
    if (i <= 0) throw new WhatIfError(`--set ${item}: expected key=value, e.g. window=30s`);
    out[item.slice(0, i).trim()] = item.slice(i + 1).trim();
  }
  return out;
}

/**
 * `base` with the fields of `set` (config-file names or the aliases above, values as written in a config
 * file) replaced and checked as the config loader checks them: tick ≥ 1 s, window ≥ tick and a multiple
 * of it, min ≤ max, and for the burst policy a panic window within [tick, window]. A new window without a panic window keeps the
 * default panic window of 10 % (at least one tick). Throws `WhatIfError` naming the field.
 */
export function applyOverrides(base: AutoscalingSpec, set: Readonly<Record<string, string>>, policyKinds: readonly string[]): AutoscalingSpec {
  const out: Record<string, unknown> = { ...base };
  const given = new Set<string>();
  for (const [rawKey, value] of Object.entries(set)) {
    const key = ALIASES[rawKey] ?? rawKey;
    const f = WHAT_IF_FIELDS[key];
    if (!f) throw new WhatIfError(`unknown autoscaling field "${rawKey}" (known: ${[...Object.keys(WHAT_IF_FIELDS), ...Object.keys(ALIASES)].join(', ')})`);
    given.add(key);
    const bad = (why: string): never => {
      throw new WhatIfError(`${key}=${value}: ${why}`);
    };
    if (f.kind === 'policy') {
      if (!policyKinds.includes(value)) bad(`unknown policy (known: ${policyKinds.join(', ')})`);
      out[f.field] = value;
    } else if (f.kind === 'duration') {
      const r = parseDuration(value);
      if (!r.ok) bad(r.message);
      else out[f.field] = r.value;
    } else {
      const n = Number(value);
      if (value === '' || !Number.isFinite(n)) bad('must be a number');
      if (f.kind === 'int' && !Number.isInteger(n)) bad('must be a whole number');
      if (n < 0) bad('must not be negative');
      out[f.field] = n;
    }
  }
  const a = out as unknown as AutoscalingSpec;
  if (a.targetReplicaConcurrency <= 0) throw new WhatIfError(`target_replica_concurrency must be greater than 0 (got ${a.targetReplicaConcurrency})`);
  if (a.minReplicas < 0 || a.maxReplicas < 1) throw new WhatIfError(`max_replicas must be at least 1 (got ${a.maxReplicas})`);
  if (a.minReplicas > a.maxReplicas) throw new WhatIfError(`min_replicas cannot be greater than max_replicas (${a.minReplicas} > ${a.maxReplicas})`);
  if (a.tickMs < 1000) throw new WhatIfError(`tick must be at least 1s, the metric sampling interval (got ${formatDuration(a.tickMs)})`);
  if (a.windowMs < a.tickMs) throw new WhatIfError(`window must be at least the tick, ${formatDuration(a.tickMs)} (got ${formatDuration(a.windowMs)})`);
  if (a.windowMs % a.tickMs !== 0) throw new WhatIfError(`window ${formatDuration(a.windowMs)} is not a multiple of the tick, ${formatDuration(a.tickMs)}`);
  let panicWindowMs = a.panicWindowMs;
  if (!given.has('panic_window') && (given.has('window') || given.has('tick'))) panicWindowMs = Math.max(a.tickMs, Math.round(a.windowMs * 0.1));
  // Only the burst policy has a panic mode; the others ignore the field (as the config loader warns).
  if (a.policy === 'burst' && (panicWindowMs < a.tickMs || panicWindowMs > a.windowMs)) {
    throw new WhatIfError(`panic_window must be from one tick to the window (${formatDuration(a.tickMs)}..${formatDuration(a.windowMs)}, got ${formatDuration(panicWindowMs)})`);
  }
  const initReplicas = Math.min(a.maxReplicas, Math.max(a.minReplicas, a.initReplicas));
  return { ...a, panicWindowMs, initReplicas };
}

/** The scaling policies `myelin simulate` and the daemon's what-if replay through (the built-in plugins). */
export function scalingPolicies(): ScalingPolicyRegistry {
  const container = createContainer({
    logger: pino({ level: 'silent' }),
    modules: [
      scalingCortexModule,
      scalingBurstModule,
      scalingCpuModule,
      new ContainerModule(({ bind }) => {
        bind(ScalingPolicyRegistry).toSelf().inSingletonScope();
      }),
    ],
  });
  return container.get(ScalingPolicyRegistry);
}

/**
 * A recording as a `total`-mode load trace (seconds since the epoch): each point's total holds until
 * the next; a gap of more than a second (the daemon was down) is a null point, i.e. nobody reported.
 */
export function recordingTrace(points: readonly InFlightPoint[]): LoadTrace {
  const out: TracePoint[] = [];
  for (let i = 0; i < points.length; i++) {
    const p = points[i];
    const prev = points[i - 1];
    if (prev && p.t - prev.t > 1500) out.push({ tSec: (prev.t + 1000) / 1000, total: null, replicas: {}, cpu: null });
    out.push({ tSec: p.t / 1000, total: p.inFlight, replicas: {}, cpu: null });
  }
  return { mode: 'total', replicaIds: [], points: out };
}

export interface WhatIfInput {
  readonly autoscaling: AutoscalingSpec;
  /** When the API was created (its start-up holds count from there), ms since the epoch. */
  readonly createdMs: number;
  /** The recording, oldest first; it may start before `sinceMs` (used to warm the windows up). */
  readonly points: readonly InFlightPoint[];
  /** Start of the range shown, ms since the epoch. */
  readonly sinceMs: number;
  readonly set: Readonly<Record<string, string>>;
  readonly policies?: ScalingPolicyRegistry;
}

export interface WhatIfResult {
  readonly autoscaling: AutoscalingSpec;
  readonly policy: string;
  /** Ticks at or after `sinceMs`, `atMs` in ms since the epoch. */
  readonly ticks: ScalingTick[];
  /** Replicas the replay started from (the recorded count at its first point). */
  readonly startReplicas: number;
}

/**
 * Re-runs a recording through the real pipeline (`replayTrace`, as `myelin simulate` does) with the
 * API's autoscaling changed by `set`. The replay starts up to one window plus the longer stabilization
 * period before `sinceMs`, where the recording has it, from the replica count recorded there, so the
 * windows and the stabilization history are full when the range begins; ticks before `sinceMs` are
 * dropped. Throws `WhatIfError` for bad overrides or a recording with nothing in the range.
 */
export function whatIf(i: WhatIfInput): WhatIfResult {
  const policies = i.policies ?? scalingPolicies();
  const autoscaling = applyOverrides(i.autoscaling, i.set, policies.kinds());
  const warmMs = autoscaling.windowMs + Math.max(autoscaling.downscaleStabilizationPeriodMs, autoscaling.upscaleStabilizationPeriodMs);
  const from = i.sinceMs - warmMs;
  const points = i.points.filter((p) => p.t >= from);
  if (!points.some((p) => p.t >= i.sinceMs)) throw new WhatIfError(`nothing was recorded since ${new Date(i.sinceMs).toISOString()}`);
  const startReplicas = Math.min(autoscaling.maxReplicas, Math.max(autoscaling.minReplicas, points[0].replicas));
  // An API created before the replay starts has its start-up holds counted from its creation; one created
  // within it starts as a fresh deploy does (and as `myelin simulate` starts a trace).
  const state: ScalingPolicyState | undefined = i.createdMs < points[0].t ? { v: 1, startMs: i.createdMs, history: [], panic: null } : undefined;
  const ticks = replayTrace({
    api: 'what-if',
    spec: autoscaling,
    policy: policies.get(autoscaling.policy),
    trace: recordingTrace(points),
    replicas: startReplicas,
    state,
  });
  return { autoscaling, policy: autoscaling.policy, ticks: ticks.filter((t) => t.atMs >= i.sinceMs), startReplicas };
}
