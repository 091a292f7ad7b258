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
  | 'deploy.progress';

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
 * One line of output of a deploy step that runs before the API changes: `stage: 'requirements'` is
 * the project's requirements.txt being installed (venv and pip output, as it comes). `api` is the
 * first API of the deploy that runs Python.
 */
export interface DeployProgressEvent extends EngineEventBase {
  readonly type: 'deploy.progress';
  readonly stage: 'requirements';
  readonly line: string;
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
  | DeployProgressEvent
  | GenericEngineEvent;

/** Largest encoded event the transports accept. */
export const MAX_EVENT_BYTES = 64 * 1024;
