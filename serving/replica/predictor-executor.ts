import type { ModelStats } from '../../core/ports/predictor-backend.js';
import type { MonitoringSpec } from '../../core/config/api-spec.js';
import { HttpError, PredictorError, WORKER_LOST_CODE } from '../../core/errors.js';
import type { Logger } from '../../core/ports/logger.js';
import type { BackendPredictArgs, LoadedPredictor } from '../../core/ports/predictor-backend.js';
import type { QueryParams, RequestHeaders } from '../../core/predictor/predictor-contract.js';
import { monitoredValue } from './prediction-monitor.js';
import { encodePrediction, type EncodedResponse } from './response-encoding.js';

/** One prediction as the replica hands it to an executor: plain data (it may cross to a worker thread). */
export interface PredictTask {
  readonly requestId: string;
  readonly payload: unknown;
  readonly query: QueryParams;
  readonly headers: RequestHeaders;
  readonly debug: boolean;
  /** The raw request body; only in-thread predictors get it (it is not copied to worker threads). */
  readonly body?: Uint8Array;
}

/** Why a prediction has no response. */
export type PredictFailure =
  /** The predictor threw `HttpError(status, message)`: answered with that status. */
  | { readonly kind: 'http'; readonly status: number; readonly message: string; readonly headers: Readonly<Record<string, string>> }
  /** Any other exception (or an unserializable prediction): 500, the detail only in the log. */
  | { readonly kind: 'exception'; readonly name: string; readonly message: string; readonly stack?: string }
  /** `predictor.timeoutMs` passed: 504. */
  | { readonly kind: 'timeout'; readonly timeoutMs: number }
  /** The instance running it went away (a worker was replaced): 503, the client may retry. */
  | { readonly kind: 'unavailable'; readonly message: string };

export type PredictOutcome =
  | {
      readonly ok: true;
      readonly response: EncodedResponse;
      /** The value prediction monitoring watches; null when the prediction had none; absent without monitoring. */
      readonly monitored?: string | number | null;
    }
  | { readonly ok: false; readonly failure: PredictFailure };

/**
 * Runs predictions on the loaded predictor instances of one replica, in the replica's thread or in
 * worker threads. `run` never rejects: every failure is a `PredictOutcome` with `ok: false`.
 */
export interface PredictorExecutor {
  readonly mode: 'in-thread' | 'worker-threads';
  /** Constructs every predictor instance; resolves when all are ready, rejects when one fails to load. */
  start(): Promise<void>;
  /** Prediction slots ready now: ready instances × `threadsPerProcess`. */
  capacity(): number;
  /**
   * Runs one prediction, answering a timeout after `predictor.timeoutMs`. `releaseSlot` is called once,
   * when the instance can take another prediction (possibly after a timeout was answered).
   */
  run(task: PredictTask, releaseSlot: () => void): Promise<PredictOutcome>;
  /** `model_metadata` of GET `/`. */
  describe(): Record<string, unknown>;
  /** The predictors' model cache counters (summed over worker threads), when they have models. */
  modelStats?(): ModelStats | undefined;
  /** Closes every predictor instance (their `close()`), then releases threads. */
  close(): Promise<void>;
}

/** Events an executor reports to the replica. */
export interface ExecutorEvents {
  /** Ready slots changed (an instance became ready or was lost). */
  onDidChangeCapacity(capacity: number): void;
  /** No instance can ever become ready again (replacements fail to load): the replica must stop. */
  onDidFail(err: Error): void;
  /** Server-side batching ran a batch of `size` requests (request batcher or a backend's tensor batcher, any thread). */
  onDidRunBatch?(size: number): void;
}

/** Set when the replica stopped waiting for this prediction (timed out): skip `postPredict`. */
export interface CancelState {
  cancelled: boolean;
}

/**
 * Runs one prediction on `loaded` and encodes it, in whichever thread `loaded` lives: calls `predict`,
 * encodes the response (so only plain data crosses a thread boundary), extracts the monitored value,
 * and schedules the predictor's `postPredict` on `setImmediate`, i.e. after the caller has written the
 * response (its errors are logged under the request id, never sent). Never rejects.
 */
export async function executePrediction(
  loaded: LoadedPredictor,
  task: PredictTask,
  log: Logger,
  monitoring: MonitoringSpec | undefined,
  cancel: CancelState,
): Promise<PredictOutcome> {
  const call = new PredictCall(task, log, cancel);
  let value: unknown;
  let response: EncodedResponse;
  try {
    value = await loaded.predict(call);
    response = encodePrediction(value);
  } catch (err) {
    return { ok: false, failure: toFailure(err) };
  }
  if (loaded.postPredict && !cancel.cancelled) {
    const post = loaded.postPredict.bind(loaded);
    setImmediate(() => {
      if (cancel.cancelled) return;
      post({ requestId: call.requestId, payload: call.payload, query: call.query, headers: call.headers, debug: call.debug, log: call.log, response: value }).catch(
        (err: unknown) => call.log.error({ err }, 'postPredict failed'),
      );
    });
  }
  if (monitoring === undefined) return { ok: true, response };
  return { ok: true, response, monitored: monitoredValue(value, monitoring) };
}

/**
 * The arguments a backend's `predict` gets. `log` (bound to the request id) is made on first use:
 * most predictions never log, and a pino child costs more than the rest of this object.
 */
class PredictCall implements BackendPredictArgs {
  readonly requestId: string;
  readonly payload: unknown;
  readonly query: QueryParams;
  readonly headers: RequestHeaders;
  readonly debug: boolean;
  readonly body: Uint8Array | undefined;
  private requestLog: Logger | undefined;

  constructor(
    task: PredictTask,
    private readonly baseLog: Logger,
    readonly cancel: CancelState,
  ) {
    this.requestId = task.requestId;
    this.payload = task.payload;
    this.query = task.query;
    this.headers = task.headers;
    this.debug = task.debug;
    this.body = task.body;
  }

  get log(): Logger {
    return (this.requestLog ??= this.baseLog.child({ requestId: this.requestId }));
  }
}

/** A thrown value as a `PredictFailure`: `HttpError` (or anything named so with a valid status) keeps its status. */
export function toFailure(err: unknown): PredictFailure {
  if (err instanceof PredictorError && err.code === WORKER_LOST_CODE) return { kind: 'unavailable', message: err.message };
  if (err instanceof HttpError) return { kind: 'http', status: err.status, message: err.message, headers: { ...err.headers } };
  const e = err as { name?: unknown; status?: unknown; message?: unknown; headers?: unknown; stack?: unknown } | null;
  if (e && e.name === 'HttpError' && Number.isInteger(e.status) && (e.status as number) >= 100 && (e.status as number) <= 599) {
    const headers = e.headers && typeof e.headers === 'object' ? (e.headers as Record<string, string>) : {};
    return { kind: 'http', status: e.status as number, message: String(e.message ?? ''), headers };
  }
  if (err instanceof Error) return { kind: 'exception', name: err.name, message: err.message, stack: err.stack };
  return { kind: 'exception', name: typeof err, message: String(err) };
}
