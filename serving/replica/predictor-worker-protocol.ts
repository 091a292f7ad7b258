import type { ModelStats } from '../../core/ports/predictor-backend.js';
import type { ApiSpec } from '../../core/config/api-spec.js';
import type { PredictTask } from './predictor-executor.js';

/** `workerData` of every predictor worker of one replica. */
export interface PredictorWorkerData {
  readonly spec: ApiSpec;
  /** Predictor plugin modules to load in the worker (the same as the replica's). */
  readonly moduleSpecifiers: readonly string[];
  /** BroadcastChannel name for replica → worker control messages. */
  readonly channel: string;
  readonly logLevel: string;
  /** Bindings of the replica's logger, repeated on every worker log line (plus `thread`). */
  readonly logBindings: Readonly<Record<string, unknown>>;
}

/** One piscina task: a prediction with the replica's sequence number (for cancellation). */
export interface WorkerTask extends PredictTask {
  readonly seq: number;
}

/** Worker → replica, over the worker's parentPort (piscina re-emits them as pool `message` events). */
export type WorkerMessage =
  | { readonly myelin: 'ready'; readonly threadId: number; readonly model: Record<string, unknown> }
  | { readonly myelin: 'load-failed'; readonly threadId: number; readonly message: string; readonly code?: string; readonly stack?: string }
  /** One pino log line (newline included), written by the replica to its own log destination. */
  | { readonly myelin: 'log'; readonly line: string }
  | { readonly myelin: 'closed'; readonly threadId: number }
  /** Server-side batching ran a batch of `size` requests in this worker (for the replica's batch-size histogram). */
  | { readonly myelin: 'batch'; readonly size: number }
  /** The predictor's model counters (`LoadedPredictor.modelStats`), after a prediction, at most twice a second. */
  | { readonly myelin: 'model-stats'; readonly threadId: number; readonly stats: ModelStats };

/** Replica → workers, over the BroadcastChannel (each worker acts on the ones addressed to it). */
export type ControlMessage =
  /** Stop waiting for prediction `seq` on thread `threadId` (it timed out): its task ends at once. */
  | { readonly type: 'cancel'; readonly threadId: number; readonly seq: number }
  /** Close the predictor instance (its `close()`), then answer `closed`. */
  | { readonly type: 'close' };

export function isWorkerMessage(m: unknown): m is WorkerMessage {
  return typeof m === 'object' && m !== null && typeof (m as { myelin?: unknown }).myelin === 'string';
}
