import type { Logger } from 'pino';
import type { ApiSpec } from '../config/api-spec.js';
import type { PredictArgs } from '../predictor/predictor-contract.js';

/** One prediction as the replica hands it to a backend. */
export interface BackendPredictArgs extends PredictArgs {
  readonly requestId: string;
  /** `?debug=true`: log the value after each stage (pre_inference, inference, post_inference) under the request id; the replica logs the raw sample itself. */
  readonly debug: boolean;
  /** Child logger bound to the request id. */
  readonly log: Logger;
  /**
   * The request body as received, when the predictor runs in the replica's thread (absent in worker
   * threads, which get the parsed `payload` only). The Python bridge hands JSON to `json.loads` from it,
   * so Python sees exactly what Cortex's `request.json()` gave (`1.0` stays a float).
   */
  readonly body?: Uint8Array;
  /**
   * `cancelled` turns true when the replica stopped waiting for this prediction (it answered 504):
   * a backend may skip work it has not started yet (the Python bridge never sends it to Python).
   */
  readonly cancel?: { readonly cancelled: boolean };
}

/**
 * A loaded predictor instance (one per worker). Created by the backend of `predictor.type`; may run in
 * the replica's main thread or in a worker thread, so everything crossing `predict` must be
 * structured-clonable (plain data, typed arrays, `PredictorResponse`).
 */
export interface LoadedPredictor {
  predict(args: BackendPredictArgs): Promise<unknown>;
  /**
   * Server-side batching (`predictor.server_side_batching`) for predictors whose code takes lists
   * (Python's `predict(payload=[…])`, TypeScript's `predictBatch`): runs several requests in one call.
   * The result has one entry per request, in order: its answer, or the `Error` that request alone gets.
   * Throwing fails every request of the batch. Absent: the backend batches inside its model client
   * (onnx, tensorflow) or not at all.
   */
  predictBatch?(batch: readonly BackendPredictArgs[]): Promise<ReadonlyArray<unknown>>;
  /**
   * Model cache and batching counters since start, for the replica's `/metrics` (read at each
   * scrape). Absent: the predictor has no model cache.
   */
  modelStats?(): ModelStats;
  /** Runs after the response is sent (the user's `postPredict`, if any). */
  postPredict?(args: BackendPredictArgs & { readonly response: unknown }): Promise<void>;
  /** Shown in GET `/` (`model_metadata`) and logged at start: backend in use, models, signatures. */
  describe(): Record<string, unknown>;
  /**
   * Predictions this instance takes at once, for a predictor that runs its own workers (the Python
   * bridge: live worker processes × `threads_per_process`). Absent: `threads_per_process`. Changes are
   * announced through `PredictorHost.onDidChangeCapacity`.
   */
  capacity?(): number;
  close(): Promise<void>;
}

/** Counters of a predictor's models (monotonic unless noted). */
export interface ModelStats {
  /** A prediction found its model version loaded in memory. */
  readonly hits: number;
  /** A prediction had to load its model version first (from disk, or after a download). */
  readonly misses: number;
  /** Versions unloaded from memory to honour `cache_size` (or its byte limit). */
  readonly evictions: number;
  /** Versions deleted from disk to honour `disk_cache_size`. */
  readonly diskEvictions: number;
  /** Loads done, and the time they took in all, ms. */
  readonly loads: number;
  readonly loadMsSum: number;
  /** Gauges: versions in memory and on local disk now. */
  readonly inMemory: number;
  readonly onDisk: number;
  /** Server-side batching: batches run and requests they carried (requests / batches = mean batch size). */
  readonly batches?: number;
  readonly batchedRequests?: number;
}

/**
 * What the replica tells a predictor that runs its own workers about itself (passed to `load`).
 * Backends that run in the replica's thread or in worker threads ignore it.
 */
export interface PredictorHost {
  /** `LoadedPredictor.capacity()` changed (a worker died or came back). */
  onDidChangeCapacity(): void;
  /** The predictor can never serve again (no worker alive and replacements fail to start): the replica stops. */
  onDidFail(err: Error): void;
  /**
   * Server-side batching inside the backend (onnx, tensorflow: `withTensorBatching`) ran a batch of
   * `size` requests: feeds the replica's `myelin_batch_size` histogram. Optional for hosts; backends
   * that batch call it when present (also in worker threads, where the worker forwards it).
   */
  onDidRunBatch?(size: number): void;
}

/**
 * Supplies predictors for one `predictor.type` (SG 3). Registered by `plugins/predictor-<kind>/`'s module;
 * `kind` matches `predictor.type` (aliases e.g. `typescript`).
 * `load` throws `PredictorError` (or `ConfigError`) when the predictor file, class or model is unusable.
 */
export const PredictorBackendContribution = Symbol('PredictorBackendContribution');
export interface PredictorBackendContribution {
  readonly kind: string;
  readonly aliases?: readonly string[];
  /**
   * Claims a spec whatever its `predictor.type` (e.g. the Python bridge serves `.py` files of the onnx
   * and tensorflow types). `PredictorRegistry.forSpec` asks every contribution before falling back to
   * `kind`. Absent: claims nothing.
   */
  claims?(spec: ApiSpec): boolean;
  /**
   * True when `load` returns one instance that runs its own worker processes (and reports
   * `capacity()`): the replica then loads it once in its own thread, never in worker threads.
   */
  readonly runsOwnWorkers?: boolean;
  load(spec: ApiSpec, log: Logger, host?: PredictorHost): Promise<LoadedPredictor>;
}
