import type { ApiSpec } from '../../core/config/api-spec.js';
import type { MetricSample } from '../../core/metrics/metric-sample.js';
import type { ApiReplicaStatus, ReplicaInfo } from '../../core/ports/orchestrator-target.js';
import type { AutoscalerTickView } from './api-autoscaler.js';
import { apiStatus } from './api-status.js';
import type { ApiDetail, ApiSummary, AutoscalerView, MonitoringView } from './daemon-service.js';
import type { StoredApi } from './state-store.js';

/** Responses the replicas reported for one API since the daemon started, and their summed latency (ms). */
export interface RequestCounters {
  '2xx': number;
  '4xx': number;
  '5xx': number;
  latencyMsSum: number;
}

/** What the summary of a served API is made of. */
export interface ApiSummaryInput {
  readonly spec: ApiSpec;
  readonly stored: StoredApi;
  /** `OrchestratorTarget.status(name)`; undefined while the target does not know the API. */
  readonly replicaStatus: ApiReplicaStatus | undefined;
  readonly requests: RequestCounters;
  /** The gateway's URL of the API. */
  readonly url: string;
}

/** What `myelin get <api>` shows beyond the summary. */
export interface ApiDetailInput extends ApiSummaryInput {
  /** The orchestrator's replica list; those of other APIs are left out. */
  readonly replicas: readonly ReplicaInfo[];
  readonly lastTick: AutoscalerTickView | null;
  readonly lastDecision: AutoscalerView['lastDecision'];
  readonly monitoring?: MonitoringView;
}

/**
 * One row of `myelin get`: status in Cortex's order (`apiStatus`), replica counts (requested is the
 * daemon's, the others the orchestrator's), responses and their mean latency (null without any).
 */
export function apiSummary(i: ApiSummaryInput): ApiSummary {
  const rs = i.replicaStatus;
  const { status, message } = apiStatus(rs, i.spec.autoscaling.minReplicas);
  const n = i.requests['2xx'] + i.requests['4xx'] + i.requests['5xx'];
  return {
    name: i.spec.name,
    status,
    ...(message ? { message } : {}),
    endpoint: i.spec.networking.endpoint,
    url: i.url,
    revision: i.stored.revision,
    upToDate: rs?.upToDate ?? 0,
    stale: rs?.stale ?? 0,
    requested: i.stored.replicas,
    failed: rs?.failed ?? 0,
    lastUpdated: i.stored.lastUpdated,
    requests: { '2xx': i.requests['2xx'], '4xx': i.requests['4xx'], '5xx': i.requests['5xx'], avgLatencyMs: n > 0 ? i.requests.latencyMsSum / n : null },
  };
}

/** `myelin get <api>`: the summary, the spec with `predictor.env` values redacted, the API's replicas, the autoscaler's last tick. */
export function apiDetail(i: ApiDetailInput): ApiDetail {
  const t = i.lastTick;
  return {
    ...apiSummary(i),
    spec: redactSpec(i.spec),
    replicas: i.replicas
      .filter((r) => r.api === i.spec.name)
      .map((r) => ({ id: r.id, revision: r.revision, state: r.state, ...(r.pid ? { pid: r.pid } : {}), ...(r.pendingReason ? { pendingReason: r.pendingReason } : {}) })),
    autoscaler: {
      policy: i.spec.autoscaling.policy,
      avgInFlight: t?.avgInFlight ?? null,
      target: i.spec.autoscaling.targetReplicaConcurrency,
      raw: t?.raw ?? null,
      recommendation: t?.recommendation ?? null,
      lastDecision: i.lastDecision,
      lastTick: t ? { t: t.t, reason: t.reason } : null,
    },
    ...(i.monitoring ? { monitoring: i.monitoring } : {}),
    lastLogLines: i.replicaStatus?.lastLogLines ?? [],
  };
}

/** A stored API that could not be restored at start: status `error` with `reason`, nothing served. */
export function unrestoredSummary(stored: StoredApi, reason: string): ApiSummary {
  return {
    name: stored.name,
    status: 'error',
    message: reason,
    endpoint: '-',
    url: '',
    revision: stored.revision,
    upToDate: 0,
    stale: 0,
    requested: stored.replicas,
    failed: 0,
    lastUpdated: stored.lastUpdated,
    requests: { '2xx': 0, '4xx': 0, '5xx': 0, avgLatencyMs: null },
  };
}

/** `myelin get <api>` of an API that could not be restored: its summary, no spec, no replicas. */
export function unrestoredDetail(stored: StoredApi, reason: string): ApiDetail {
  return {
    ...unrestoredSummary(stored, reason),
    spec: null,
    replicas: [],
    autoscaler: { policy: '-', avgInFlight: null, target: 0, raw: null, recommendation: null, lastDecision: null, lastTick: null },
    lastLogLines: [],
  };
}

/** The monitoring view of an API before any sample: no classes, or no values. */
export function emptyMonitoring(modelType: 'classification' | 'regression'): MonitoringView {
  return modelType === 'classification' ? { modelType, classes: {} } : { modelType, count: 0, min: null, max: null, avg: null };
}

/**
 * Adds a sample's monitoring to the view: class counts are summed; regression values keep count,
 * min, max and the mean over every value (count 2 mean 2 + a sample count 2 sum 8 ⇒ count 4 mean 3).
 * A sample of the other model type, or a regression sample without values, leaves the view as it is.
 */
export function mergeMonitoring(cur: MonitoringView, s: NonNullable<MetricSample['monitoring']>): MonitoringView {
  if (cur.modelType === 'classification' && s.modelType === 'classification') {
    const classes: Record<string, number> = { ...cur.classes };
    for (const [k, v] of Object.entries(s.classes)) classes[k] = (classes[k] ?? 0) + v;
    return { modelType: 'classification', classes };
  }
  if (cur.modelType === 'regression' && s.modelType === 'regression' && s.count > 0) {
    const count = cur.count + s.count;
    const sum = (cur.avg ?? 0) * cur.count + s.sum;
    return {
      modelType: 'regression',
      count,
      min: cur.min === null ? s.min : Math.min(cur.min, s.min),
      max: cur.max === null ? s.max : Math.max(cur.max, s.max),
      avg: sum / count,
    };
  }
  return cur;
}

/** Shown in place of each `predictor.env` value in API views (they may be secrets). */
export const REDACTED = '<redacted>';

/**
 * The spec as the control API shows it: env names kept, the user's values replaced by `<redacted>`.
 * `MYELIN_*` entries are myelin's own (users cannot write those names), e.g. the virtualenv's python.
 */
export function redactSpec(spec: ApiSpec): ApiSpec {
  const env = Object.fromEntries(Object.entries(spec.predictor.env).map(([k, v]) => [k, k.startsWith('MYELIN_') ? v : REDACTED]));
  return { ...spec, predictor: { ...spec.predictor, env } };
}
