import { Subject } from 'rxjs';
import type { AutoscalingSpec } from '../config/api-spec.js';
import type { MetricSample } from '../metrics/metric-sample.js';
import type { ScalingPolicy, ScalingPolicyState } from '../ports/scaling-policy.js';
import { scaleApi } from './api-scaler.js';
import type { LoadTrace, TracePoint } from './load-trace.js';
import { ReplayScheduler } from './replay-scheduler.js';
import type { ScalingTick } from './scaling-tick.js';

/** Options of `replayTrace`. */
export interface ReplayTraceOptions {
  readonly api: string;
  readonly spec: AutoscalingSpec;
  readonly policy: ScalingPolicy;
  readonly trace: LoadTrace;
  /** Replicas at the start (default `spec.initReplicas`). */
  readonly replicas?: number;
  /** How often every replica reports, ms (default 1000, as replicas do). */
  readonly sampleIntervalMs?: number;
  /** Replay until this trace time in seconds (default: the last point's time). */
  readonly untilSec?: number;
  /** Policy state to start from (default: a fresh start, as after a deploy). */
  readonly state?: ScalingPolicyState;
}

/**
 * Replays a load trace through the real pipeline (`scaleApi`: drop-outs, time-weighted windows, the
 * policy) in virtual time and returns every tick. Time 0 of the scheduler is the trace's own time
 * (ms = seconds × 1000), so tick times read as trace times.
 *
 * Every `sampleIntervalMs` from the first point on, each replica reports the level in effect at that
 * instant (the last point at or before it). In `total` mode the total is spread evenly over the
 * current replica count, which follows the decisions: new replicas report from the next sample,
 * removed ones report a drained 0 once and then fall silent (as a terminating replica does).
 * In `replicas` mode the trace's replicas report their own values whatever the decisions.
 * Ticks come every `spec.tickMs` from the first point; a tick and a sample at the same instant run
 * tick first (the sample's level only counts from its instant on, so averages do not depend on it).
 */
export function replayTrace(o: ReplayTraceOptions): ScalingTick[] {
  const points = o.trace.points;
  if (points.length === 0) return [];
  const intervalMs = o.sampleIntervalMs ?? 1000;
  const startMs = Math.round(points[0].tSec * 1000);
  const endMs = Math.round((o.untilSec ?? points[points.length - 1].tSec) * 1000);
  const scheduler = new ReplayScheduler(startMs);
  const samples$ = new Subject<MetricSample>();
  const ticks: ScalingTick[] = [];
  let current = o.replicas ?? o.spec.initReplicas;
  const sub = scaleApi(samples$, { api: o.api, spec: o.spec, policy: o.policy, replicas: current, state: o.state, scheduler }).subscribe({
    next: (t) => {
      ticks.push(t);
      current = t.decision.desired;
    },
  });

  const seq = new Map<string, number>();
  const emit = (replica: string, inFlight: number, cpu: number | null, tMs: number): void => {
    const n = (seq.get(replica) ?? -1) + 1;
    seq.set(replica, n);
    samples$.next({
      v: 1,
      api: o.api,
      replica,
      revision: 'simulated',
      seq: n,
      t: tMs,
      intervalMs,
      inFlight,
      inFlightMax: Math.ceil(inFlight),
      ...(cpu === null ? {} : { cpuUtilization: cpu }),
      requests: { '2xx': 0, '4xx': 0, '5xx': 0 },
      latencyMsSum: 0,
      ready: true,
    });
  };

  let k = 0;
  let reporting = 0; // replicas replica-1 … replica-<reporting> reported at the last sample time
  for (let tMs = startMs; tMs <= endMs; tMs += intervalMs) {
    scheduler.advanceTo(tMs);
    while (k + 1 < points.length && Math.round(points[k + 1].tSec * 1000) <= tMs) k++;
    const p: TracePoint = points[k];
    if (o.trace.mode === 'replicas') {
      for (const id of o.trace.replicaIds) {
        const v = p.replicas[id];
        if (v !== null && v !== undefined) emit(id, v, p.cpu, tMs);
      }
      continue;
    }
    if (p.total === null) {
      reporting = 0;
      continue;
    }
    for (let i = 1; i <= current; i++) emit(`replica-${i}`, p.total / current, p.cpu, tMs);
    // Replicas removed since the last sample drained their requests before going.
    for (let i = current + 1; i <= reporting; i++) emit(`replica-${i}`, 0, p.cpu, tMs);
    reporting = current;
  }
  scheduler.advanceTo(endMs);
  sub.unsubscribe();
  return ticks;
}
