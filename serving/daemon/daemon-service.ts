import type { Observable } from 'rxjs';
import type { ConfigProblem } from '../../core/errors.js';
import type { EngineEvent } from '../../core/events/engine-event.js';
import type { ProjectBundle } from './project-bundle.js';
import type { TrafficSplitterView } from './traffic-splitters.js';

/** Cortex's status strings (reference/cortex.md §8), in the order they are decided. */
export type ApiStatusCode = 'live' | 'updating' | 'error' | 'compute unavailable' | 'scaled to zero' | 'unknown';

export interface DeployResult {
  readonly api: string;
  /** `created`, `updated` (new revision, rolling), `reconfigured` (autoscaling/networking only), `up to date`. */
  readonly action: 'created' | 'updated' | 'reconfigured' | 'up to date';
  readonly revision: string;
  readonly endpoint: string;
  readonly message: string;
}

export interface DeployResponse {
  /** The file's RealtimeAPIs (what `deploy --wait` waits on). */
  readonly results: readonly DeployResult[];
  /** The file's TrafficSplitters, routed once their APIs are (nothing to wait for); absent when it has none. */
  readonly splitters?: readonly DeployResult[];
  readonly warnings: readonly ConfigProblem[];
}

/** The autoscaler's view of one API, for `myelin get <api>`. */
export interface AutoscalerView {
  readonly policy: string;
  readonly avgInFlight: number | null;
  readonly target: number;
  readonly raw: number | null;
  readonly recommendation: number | null;
  readonly lastDecision: { readonly t: number; readonly from: number; readonly to: number; readonly reason: string } | null;
  readonly lastTick: { readonly t: number; readonly reason: string } | null;
}

export interface RequestStats {
  readonly '2xx': number;
  readonly '4xx': number;
  readonly '5xx': number;
  /** Mean latency over every response counted, ms; null without responses. */
  readonly avgLatencyMs: number | null;
}

export type MonitoringView =
  | { readonly modelType: 'classification'; readonly classes: Readonly<Record<string, number>> }
  | { readonly modelType: 'regression'; readonly count: number; readonly min: number | null; readonly max: number | null; readonly avg: number | null };

export interface ApiSummary {
  readonly name: string;
  readonly status: ApiStatusCode;
  readonly message?: string;
  readonly endpoint: string;
  readonly url: string;
  readonly revision: string;
  readonly upToDate: number;
  readonly stale: number;
  readonly requested: number;
  readonly failed: number;
  /** ms since the epoch. */
  readonly lastUpdated: number;
  readonly requests: RequestStats;
}

export interface ApiDetail extends ApiSummary {
  readonly spec: unknown;
  readonly replicas: ReadonlyArray<{ readonly id: string; readonly revision: string; readonly state: string; readonly pid?: number; readonly pendingReason?: string }>;
  readonly autoscaler: AutoscalerView;
  readonly monitoring?: MonitoringView;
  readonly lastLogLines: readonly string[];
}

/**
 * What the control API exposes; implemented by the daemon. Every method that names an API throws
 * `NotFoundError` when it does not exist.
 */
export interface DaemonService {
  deploy(bundle: ProjectBundle, options: { readonly force: boolean }): Promise<DeployResponse>;
  list(): Promise<readonly ApiSummary[]>;
  get(name: string): Promise<ApiDetail>;
  /** Deletes an API or a TrafficSplitter; `ConflictError` for an API a TrafficSplitter uses. */
  delete(name: string): Promise<void>;
  /** The deployed TrafficSplitters, by name (absent: a service without them). */
  listSplitters?(): Promise<readonly TrafficSplitterView[]>;
  /** The TrafficSplitter `name`; undefined when there is none of that name. */
  getSplitter?(name: string): Promise<TrafficSplitterView | undefined>;
  refresh(name: string, options: { readonly force: boolean }): Promise<DeployResult>;
  logs$(name: string, options: { readonly follow: boolean; readonly tail?: number }): Observable<string>;
  /** Retained events newer than `sinceMs` (replayed), then live ones; never completes. */
  events$(options: { readonly api?: string; readonly sinceMs?: number }): Observable<EngineEvent>;
  /** Retained events newer than `sinceMs`, oldest first (`myelin events` without `--follow`). */
  recentEvents(options: { readonly api?: string; readonly sinceMs: number }): readonly EngineEvent[];
  /** Prometheus text exposition. */
  metrics(): Promise<string>;
  /** Asks the daemon to stop (graceful). */
  shutdown(): void;
}
