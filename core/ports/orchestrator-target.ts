import type { Observable } from 'rxjs';
import type { ApiSpec } from '../config/api-spec.js';
import type { EngineEvent } from '../events/engine-event.js';

/** Where a replica listens. Loopback TCP for local replicas, a pod IP for Kubernetes. */
export type ReplicaAddress = { readonly host: string; readonly port: number } | { readonly socketPath: string };

/**
 * Lifecycle of one replica: `pending` (waiting for compute), `starting` (process/pod up, predictor
 * loading), `ready` (readiness probe passed, takes traffic), `terminating` (draining), `stopped`,
 * `crashed` (exited unexpectedly; a replacement is scheduled with backoff).
 */
export type ReplicaState = 'pending' | 'starting' | 'ready' | 'terminating' | 'stopped' | 'crashed';

export interface ReplicaInfo {
  readonly id: string;
  readonly api: string;
  /** The revision (predictor id) this replica runs. */
  readonly revision: string;
  readonly state: ReplicaState;
  readonly address?: ReplicaAddress;
  /** Operating-system process id of a local replica. */
  readonly pid?: number;
  /** ms since the epoch. */
  readonly createdAt: number;
  readonly readyAt?: number;
  /** Why the replica is pending, e.g. `compute unavailable: requested 4 cpu, 1.8 free`. */
  readonly pendingReason?: string;
  /** How a `crashed` replica ended: its exit code (null when a signal ended it or it never started). */
  readonly exitCode?: number | null;
  /** The signal that ended a `crashed` replica, e.g. `SIGKILL`. */
  readonly signal?: string | null;
  /**
   * Why a `crashed` replica ended, for people: what its predictor said when it failed to start, else
   * the exit with the last lines it wrote (bounded). Absent: the target cannot tell more than the code.
   */
  readonly crashReason?: string;
}

/** What the daemon wants running for one API. */
export interface ApiDeployment {
  readonly spec: ApiSpec;
  /**
   * Changes when the predictor, model, monitoring or compute change, or on refresh: a new revision
   * means new replicas (rolling update). Autoscaling/networking changes keep the revision.
   */
  readonly revision: string;
  /** Desired replicas (decided by the autoscaler, clamped to [min, max]). */
  readonly replicas: number;
  /**
   * The stored project bundle the replicas run (targets whose replicas do not share the daemon's
   * disk fetch it: a Kubernetes pod's init container runs `myelin fetch-project`). Absent: the
   * replicas read `spec.projectDir` directly (the local target).
   */
  readonly project?: ProjectRef;
}

/** A deployed project as the daemon stores it (content-addressed) and serves it to pods. */
export interface ProjectRef {
  /** The bundle's content id: the folder name under the daemon's projects store and the URL's last segment. */
  readonly id: string;
  /** Per-API bearer token that lets this API's pods (and nothing else) download the bundle. */
  readonly token: string;
}

/** Counts the daemon shows for an API (reference/cortex.md §8). */
export interface ApiReplicaStatus {
  readonly api: string;
  readonly revision: string;
  readonly requested: number;
  /** Ready replicas of the current revision. */
  readonly upToDate: number;
  /** Ready replicas of older revisions (still serving during a rollout). */
  readonly stale: number;
  readonly pending: number;
  readonly starting: number;
  /** Crashes of the current revision in the recent backoff window. */
  readonly failed: number;
  /** True when the current revision is crash-looping (status `error`). */
  readonly crashLooping: boolean;
  /** True when a replica could not be placed for lack of cpu/mem/gpu (status `compute unavailable`). */
  readonly computeUnavailable: boolean;
  /** Last lines a crashed replica wrote, for `myelin get`. */
  readonly lastLogLines: readonly string[];
  readonly message?: string;
}

/**
 * Runs replicas somewhere (kind `local`: child processes on this machine; `kubernetes`: Deployments).
 * `apply` is idempotent and returns once the change is under way (not when it is done); progress is
 * observable through `replicas$` and `status`. Rolling updates are the target's job: a new revision
 * is rolled out within the spec's update strategy (max_surge / max_unavailable).
 */
export const OrchestratorTarget = Symbol('OrchestratorTarget');
export interface OrchestratorTarget {
  readonly kind: string;
  start(): Promise<void>;
  /** Stops every replica this target started (graceful, bounded by the grace period). */
  close(): Promise<void>;
  apply(deployment: ApiDeployment): Promise<void>;
  /** Only the replica count changed (autoscaling); never restarts replicas. */
  scale(api: string, replicas: number): Promise<void>;
  /** Stops and forgets every replica of the API. */
  remove(api: string): Promise<void>;
  status(api: string): ApiReplicaStatus | undefined;
  /**
   * Compute of `spec` that can never be placed by this target (more CPU, memory, GPUs than the machine
   * has), as `compute.<field>` problems, checked at deploy. Optional: a target that cannot know (a
   * cluster that may grow) leaves it out and waits.
   */
  impossibleCompute?(spec: ApiSpec): Array<{ readonly field: string; readonly message: string }>;
  /** Every replica of every API, re-emitted on each change (replay of the latest list on subscribe). */
  replicas$(): Observable<readonly ReplicaInfo[]>;
  /** Recent log lines of an API's replicas, then live lines when `follow`. */
  logs$(api: string, options: { readonly follow: boolean; readonly tail?: number }): Observable<string>;
  /**
   * Events the replicas report about themselves (`model.download`, `model.version`), hot. Each has
   * passed the event schema, and its `api` and `replica` are the target's own names for the replica
   * that sent it (never what the replica claimed). Optional: a target whose replicas cannot report
   * (Kubernetes pods publish nothing to the daemon) leaves it out.
   */
  events$?(): Observable<EngineEvent>;
}
