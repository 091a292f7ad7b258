/**
 * Server-side batching of whole requests, for predictors whose code takes lists
 * (`LoadedPredictor.predictBatch`: Python's `predict(payload=[…])`, a TypeScript `predictBatch`).
 * Cortex 0.25's `DynamicBatcher`, without its thread barrier: requests are gathered in the thread
 * that holds the predictor (the replica's, or one worker thread's), so a batch never spans instances.
 */
import type { ApiSpec } from '../../core/config/api-spec.js';
import { PredictorError } from '../../core/errors.js';
import type { BackendPredictArgs, LoadedPredictor } from '../../core/ports/predictor-backend.js';
import { timerScheduler, type BatchScheduler } from '../../core/predictor/tensor-batcher.js';

export interface RequestBatchOptions {
  /** Requests in one batch at most: a batch runs as soon as this many are waiting. */
  readonly maxBatchSize: number;
  /** A batch runs this long (ms) after its first request at the latest. */
  readonly intervalMs: number;
  /** Called with the size of every batch handed to `predictBatch`. */
  onBatch?(size: number): void;
  /** Default `timerScheduler` (setTimeout); tests fire the interval by hand. */
  readonly scheduler?: BatchScheduler;
}

interface Waiting {
  readonly args: BackendPredictArgs;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: unknown) => void;
}

/**
 * Gathers `submit`ted requests into batches for `runBatch`: a batch runs when `maxBatchSize` requests
 * wait, or `intervalMs` after the first of them (Cortex: "whichever comes first"). Each request's
 * promise settles with its own entry of the result: the value, or a rejection when the entry is an
 * `Error`. When `runBatch` throws, or returns something other than one entry per request, every
 * request of the batch rejects with that error. A request whose `cancel.cancelled` is set by the time
 * its batch runs (it was answered 504) is left out of the batch. Batches run concurrently (a new one
 * gathers while one runs). Single-threaded: call from the thread that holds the predictor.
 */
export class RequestBatcher {
  private waiting: Waiting[] = [];
  private cancelTimer: (() => void) | undefined;
  private readonly scheduler: BatchScheduler;
  /** Batches run and the requests they carried, since start. */
  batches = 0;
  batchedRequests = 0;

  constructor(
    private readonly runBatch: (batch: readonly BackendPredictArgs[]) => Promise<ReadonlyArray<unknown>>,
    private readonly options: RequestBatchOptions,
  ) {
    if (!(options.maxBatchSize >= 1)) throw new RangeError(`maxBatchSize must be >= 1 (got ${options.maxBatchSize})`);
    this.scheduler = options.scheduler ?? timerScheduler;
  }

  /** Queues one request; settles with its answer once its batch ran. */
  submit(args: BackendPredictArgs): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ args, resolve, reject });
      if (this.waiting.length === 1) this.cancelTimer = this.scheduler(this.flush, this.options.intervalMs);
      if (this.waiting.length >= this.options.maxBatchSize) this.flush();
    });
  }

  /** Requests waiting for their batch now. */
  pending(): number {
    return this.waiting.length;
  }

  private readonly flush = (): void => {
    const all = this.waiting;
    if (all.length === 0) return;
    this.waiting = [];
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    const live: Waiting[] = [];
    for (const w of all) {
      if (w.args.cancel?.cancelled) w.reject(new PredictorError('the request was answered before its batch ran', { code: 'ENG_PREDICTOR_CANCELLED' }));
      else live.push(w);
    }
    if (live.length > 0) void this.run(live);
  };

  private async run(batch: readonly Waiting[]): Promise<void> {
    this.batches++;
    this.batchedRequests += batch.length;
    this.options.onBatch?.(batch.length);
    let results: ReadonlyArray<unknown>;
    try {
      results = await this.runBatch(batch.map((w) => w.args));
      if (!Array.isArray(results) || results.length !== batch.length) {
        const got = Array.isArray(results) ? `${results.length} results` : results === null ? 'null' : typeof results;
        throw new PredictorError(`predictBatch got ${batch.length} requests and returned ${got}; it must return one entry per request, in order`, {
          code: 'ENG_PREDICTOR_BATCH',
        });
      }
    } catch (err) {
      for (const w of batch) w.reject(err);
      return;
    }
    batch.forEach((w, i) => {
      const r = results[i];
      if (r instanceof Error) w.reject(r);
      else w.resolve(r);
    });
  }
}

/**
 * Slots (predictions at once) one predictor instance takes: `threads_per_process`, raised to
 * `max_batch_size` under server-side batching so that a full batch can gather in one instance (in
 * worker threads each instance batches on its own; Cortex's `max_batch_size <= processes × threads`
 * check alone would let 4 workers × 8 threads never see a batch of 32).
 */
export function slotsPerInstance(spec: ApiSpec): number {
  const b = spec.predictor.serverSideBatching;
  return b ? Math.max(spec.predictor.threadsPerProcess, b.maxBatchSize) : spec.predictor.threadsPerProcess;
}

/**
 * `loaded` with its predictions gathered into `predictBatch` calls when the spec sets
 * `server_side_batching` and the predictor has `predictBatch`; `loaded` itself otherwise (onnx and
 * tensorflow batch inside their model client, `withTensorBatching`). `predict` of the result queues
 * the request; everything else (`postPredict`, `capacity`, `close`, …) is the predictor's own, and
 * `describe()` adds `serverSideBatching`. `modelStats()`, when the predictor has it, adds the
 * `batches` / `batchedRequests` counters.
 */
export function withRequestBatching(loaded: LoadedPredictor, spec: ApiSpec, onBatch?: (size: number) => void, scheduler?: BatchScheduler): LoadedPredictor {
  const b = spec.predictor.serverSideBatching;
  if (!b || !loaded.predictBatch) return loaded;
  const run = loaded.predictBatch.bind(loaded);
  const batcher = new RequestBatcher(run, { maxBatchSize: b.maxBatchSize, intervalMs: b.batchIntervalMs, ...(onBatch ? { onBatch } : {}), ...(scheduler ? { scheduler } : {}) });
  const out: LoadedPredictor = {
    predict: (args) => batcher.submit(args),
    predictBatch: run,
    describe: () => ({ ...loaded.describe(), serverSideBatching: { maxBatchSize: b.maxBatchSize, batchIntervalMs: b.batchIntervalMs } }),
    close: () => loaded.close(),
  };
  // Optional members stay absent when the predictor has none: the executor tests `capacity` for presence.
  if (loaded.postPredict) out.postPredict = loaded.postPredict.bind(loaded);
  if (loaded.modelStats) out.modelStats = loaded.modelStats.bind(loaded);
  if (loaded.capacity) out.capacity = loaded.capacity.bind(loaded);
  if (loaded.modelStats) {
    const stats = loaded.modelStats.bind(loaded);
    out.modelStats = () => ({ ...stats(), batches: batcher.batches, batchedRequests: batcher.batchedRequests });
  }
  return out;
}
