/**
 * Event (wire format v1, schema `config-schemas/event.schema.json`), published on
 * `myelin.events.<api>`, the daemon's server-sent-events stream and `myelin events --follow`.
 */
export type EngineEventType =
  | 'scaling.decided'
  | 'replica.started'
  | 'replica.ready'
  | 'replica.stopped'
  | 'replica.crashed'
  | 'api.status'
  | 'api.deployed'
  | 'api.deleted'
  | 'rollout.progress'
  | 'metrics.unavailable'
  | 'scaling.poke'
  | 'deploy.progress'
  | 'model.download'
  | 'model.version'
  | 'splitter.weights';

export interface EngineEventBase {
  readonly v: 1;
  readonly type: EngineEventType;
  readonly api: string;
  /** ms since the epoch. */
  readonly t: number;
}

export interface ScalingDecidedEvent extends EngineEventBase {
  readonly type: 'scaling.decided';
  readonly from: number;
  readonly to: number;
  readonly policy: string;
  readonly avgInFlight: number;
  readonly target: number;
  readonly raw: number;
  readonly recommendation: number;
  readonly reason: string;
}

export interface ReplicaEvent extends EngineEventBase {
  readonly type: 'replica.started' | 'replica.ready' | 'replica.stopped' | 'replica.crashed';
  readonly replica: string;
  readonly revision: string;
  readonly exitCode?: number | null;
  readonly signal?: string | null;
  readonly reason?: string;
}

export interface ApiStatusEvent extends EngineEventBase {
  readonly type: 'api.status';
  readonly status: string;
  readonly message?: string;
}

export interface RolloutProgressEvent extends EngineEventBase {
  readonly type: 'rollout.progress';
  readonly revision: string;
  readonly updated: number;
  readonly stale: number;
  readonly requested: number;
}

export interface MetricsUnavailableEvent extends EngineEventBase {
  readonly type: 'metrics.unavailable';
  readonly replicas: number;
  readonly reason: string;
}

/**
 * The gateway holds requests for an API with no ready replica (scaled to zero, or still starting) and
 * asks its autoscaler for capacity at once (Knative's activator poke). Published when the number
 * held rises; a `scaling.decided` follows when the autoscaler raises the count.
 */
export interface ScalingPokeEvent extends EngineEventBase {
  readonly type: 'scaling.poke';
  /** Requests held at the gateway now. */
  readonly held: number;
  /** Replicas the API had when poked. */
  readonly replicas: number;
}

/**
 * One line of output of a deploy step that runs before the API changes: `stage: 'requirements'` is
 * the project's requirements.txt being installed (venv and pip output, as it comes; `api` is the
 * first API of the deploy that runs Python); `stage: 'models'` is a model version being downloaded
 * into the machine's model cache (`api` is the first API of the deploy that uses it).
 */
export interface DeployProgressEvent extends EngineEventBase {
  readonly type: 'deploy.progress';
  readonly stage: 'requirements' | 'models';
  readonly line: string;
}

/**
 * A model version being downloaded into the machine's model cache (at deploy by the daemon, or by a
 * replica for a version that appeared or was evicted). Emitted at most about once a second per
 * download, and once with `done: true`.
 */
export interface ModelDownloadEvent extends EngineEventBase {
  readonly type: 'model.download';
  /** The version's URL. */
  readonly url: string;
  readonly bytes: number;
  readonly total: number;
  readonly rateBytesPerSec: number;
  readonly done: boolean;
  /** The replica downloading, when it is not the daemon. */
  readonly replica?: string;
}

/**
 * Live reload: a replica found a model version that appeared in the store (`added`, loaded or ready to
 * load) or disappeared from it (`removed`, unloaded).
 */
export interface ModelVersionEvent extends EngineEventBase {
  readonly type: 'model.version';
  readonly model: string;
  readonly version: string;
  readonly change: 'added' | 'removed';
  readonly replica?: string;
}

/** One backend of a TrafficSplitter in a `splitter.weights` event. */
export interface SplitterWeight {
  readonly name: string;
  /** Percent of the splitter's requests (the weights sum to 100). */
  readonly weight: number;
}

/**
 * A TrafficSplitter was deployed with these weights (`previous` null) or a deploy changed them;
 * `api` is the splitter's name. Not published for a deploy that leaves the weights as they were.
 */
export interface SplitterWeightsEvent extends EngineEventBase {
  readonly type: 'splitter.weights';
  readonly endpoint: string;
  readonly weights: readonly SplitterWeight[];
  readonly previous: readonly SplitterWeight[] | null;
}

export interface GenericEngineEvent extends EngineEventBase {
  readonly type: 'api.deployed' | 'api.deleted';
  readonly [key: string]: unknown;
}

export type EngineEvent =
  | ScalingDecidedEvent
  | ReplicaEvent
  | ApiStatusEvent
  | RolloutProgressEvent
  | MetricsUnavailableEvent
  | ScalingPokeEvent
  | DeployProgressEvent
  | ModelDownloadEvent
  | ModelVersionEvent
  | SplitterWeightsEvent
  | GenericEngineEvent;

/** Largest encoded event the transports accept. */
export const MAX_EVENT_BYTES = 64 * 1024;
