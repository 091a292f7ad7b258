import type { Observable } from 'rxjs';
import type { MetricSample } from '../metrics/metric-sample.js';

/** Counters every transport keeps about what crossed its boundary. */
export interface TransportStats {
  readonly published: number;
  readonly received: number;
  /** Malformed or oversized messages that were dropped at the boundary. */
  readonly invalid: number;
  /** Messages dropped because a bounded outage buffer was full (oldest first). */
  readonly dropped: number;
}

/**
 * Carries metric samples from replicas to the autoscaler (subject `myelin.metrics.<api>`).
 * Kinds: `local` (in-process, embedded default) and `nats`.
 * `publish` never throws for transport trouble: during an outage it buffers a bounded amount and
 * drops oldest first. Incoming messages are validated; invalid ones are counted and logged, never emitted.
 */
export const MetricsTransport = Symbol('MetricsTransport');
export interface MetricsTransport {
  readonly kind: string;
  start(): Promise<void>;
  close(): Promise<void>;
  publish(sample: MetricSample): void;
  /** Samples of one API, or of every API when `api` is omitted. Hot: only samples published after subscribing. */
  samples$(api?: string): Observable<MetricSample>;
  stats(): TransportStats;
}

/**
 * The IPC side of a child process, as much as `ChildMetricsSink` needs; a node `ChildProcess` forked or
 * spawned with an `'ipc'` stdio entry fits it.
 */
export interface IpcMessageSource {
  readonly pid?: number | undefined;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

/**
 * Receives metric samples that local replica processes send over their IPC channel as
 * `{ type: 'myelin.metrics', sample }` (the `local` transport; bound only by its module). The local
 * orchestrator attaches each child it starts; samples are validated like any other incoming message
 * and emitted on the transport's `samples$`. Other IPC messages are ignored.
 */
export const ChildMetricsSink = Symbol('ChildMetricsSink');
export interface ChildMetricsSink {
  /** Starts listening to `child`; returns a function that stops listening (also safe after the child exited). */
  attachChild(child: IpcMessageSource): () => void;
}
