/**
 * Server-side batching inside a model client (`predictor.server_side_batching` for onnx and
 * tensorflow, as TF Serving's batching was in Cortex: the predictor's code does not change).
 * Concurrent `run` calls on one model version are gathered, their inputs concatenated along the first
 * (batch) dimension, the model run once, and the outputs split back by each request's row count.
 *
 * Pure but for the timer: the interval is scheduled through `BatchScheduler` (default `setTimeout`),
 * which tests replace to fire the interval by hand.
 */
import { HttpError, PredictorError } from '../errors.js';
import type { Logger } from '../ports/logger.js';
import type { ServerSideBatchingSpec } from '../config/api-spec.js';
import type { PredictorHost } from '../ports/predictor-backend.js';
import type { RunnableModel } from './runnable-model.js';
import type { TensorSignature } from './predictor-contract.js';
import { formatShape, type TensorData, type TensorValues } from './tensor-data.js';

/**
 * Schedules `fire` after `ms` milliseconds and returns the function that cancels it. The default is
 * `setTimeout`; tests pass one that records the callback and fire it themselves (SG 9.2).
 */
export type BatchScheduler = (fire: () => void, ms: number) => () => void;

/** `setTimeout`-based scheduler: the interval ends on the event loop's timer phase. */
export const timerScheduler: BatchScheduler = (fire, ms) => {
  const t = setTimeout(fire, ms);
  return () => clearTimeout(t);
};

export interface TensorBatchOptions {
  /** Requests (not rows) in one batch at most: a batch runs as soon as this many are queued. */
  readonly maxBatchSize: number;
  /** A batch runs this long (ms) after its first request at the latest. */
  readonly intervalMs: number;
  /** Called with the number of requests of every batch run (1 for a request that ran alone). */
  onBatch?(size: number): void;
  /** Names the model version in messages, e.g. `model "iris" version 2`. */
  readonly label: string;
  /** Warned once when the model's outputs cannot be split by rows (batching is then turned off for it). */
  readonly log?: Logger;
  /** Default `timerScheduler`. */
  readonly scheduler?: BatchScheduler;
  /**
   * Batches of this model run at once at most (default 1, TF Serving's `num_batch_threads` for one
   * instance: its onnxruntime session runs single-threaded; processes_per_replica gives more).
   */
  readonly maxConcurrentBatches?: number;
}

/** What a backend passes at model creation: the API's batching and where batch sizes are reported. */
export interface TensorBatching {
  readonly maxBatchSize: number;
  readonly intervalMs: number;
  /** See `TensorBatchOptions.maxConcurrentBatches` (default 1). */
  readonly maxConcurrentBatches?: number;
  onBatch?(size: number): void;
  readonly log?: Logger;
}

/**
 * The batching of `spec.predictor.serverSideBatching` for a backend's models (undefined when off),
 * reporting each batch's size to `host.onDidRunBatch` when the host has it.
 */
export function tensorBatchingOf(
  batching: ServerSideBatchingSpec | undefined,
  host?: Pick<PredictorHost, 'onDidRunBatch'>,
  log?: Logger,
): TensorBatching | undefined {
  if (!batching) return undefined;
  const onBatch = host?.onDidRunBatch ? (size: number): void => host.onDidRunBatch!(size) : undefined;
  return { maxBatchSize: batching.maxBatchSize, intervalMs: batching.batchIntervalMs, ...(onBatch ? { onBatch } : {}), ...(log ? { log } : {}) };
}

function isDynamicDim(d: unknown): boolean {
  return d === null || typeof d === 'string' || (typeof d === 'number' && d < 0);
}

/**
 * Whether a model can take batches of `maxBatchSize` requests along its first dimension. Each input's
 * first dimension must be dynamic (`-1`, a symbolic name such as `batch`, or null), or fixed at a size
 * of at least `maxBatchSize` (batches are then padded to that size); an input of unknown shape (`[]`)
 * is accepted, its requests decide at run time. Returns null when the model fits, else a message
 * naming each input that does not and its shape, e.g.
 * `input "x" has shape [1, 4]: its first (batch) dimension is fixed at 1, below max_batch_size 8`.
 */
export function checkBatchDimension(inputs: readonly TensorSignature[], maxBatchSize: number): string | null {
  const problems: string[] = [];
  const fixed = new Set<number>();
  for (const sig of inputs) {
    const shape = sig.shape as ReadonlyArray<number | string | null>;
    if (shape.length === 0 || isDynamicDim(shape[0])) continue;
    const first = shape[0] as number;
    fixed.add(first);
    if (first < maxBatchSize) {
      problems.push(`input "${sig.name}" has shape ${formatShape(shape)}: its first (batch) dimension is fixed at ${first}, below max_batch_size ${maxBatchSize}`);
    }
  }
  if (problems.length === 0 && fixed.size > 1) {
    return `inputs ${inputs.map((s) => `"${s.name}" ${formatShape(s.shape)}`).join(', ')} have different fixed first (batch) dimensions; a batch cannot be padded to all of them`;
  }
  if (problems.length === 0) return null;
  return `${problems.join('; ')}; server-side batching stacks requests along the first dimension: export the model with a dynamic batch dimension (-1 or a name such as "batch") or lower max_batch_size`;
}

/**
 * `model` with `batching` applied (unchanged when `batching` is undefined). Throws `PredictorError`
 * (code `ENG_PREDICTOR_LOAD`) naming `label`, the input and its shape when the model has no batch
 * dimension that can take `maxBatchSize` requests (`checkBatchDimension`); the caller releases the model.
 */
export function withTensorBatching(model: RunnableModel, batching: TensorBatching | undefined, label: string): RunnableModel {
  if (!batching) return model;
  const problem = checkBatchDimension(model.inputs, batching.maxBatchSize);
  if (problem) throw new PredictorError(`${label}: server_side_batching: ${problem}`, { code: 'ENG_PREDICTOR_LOAD' });
  return batchRunnable(model, { ...batching, label });
}

/**
 * Wraps `model` so that concurrent `run(inputs)` calls are batched:
 * - requests queue per *batch key* (each input's dtype and dimensions after the first): requests whose
 *   other dimensions or dtypes differ never share a batch;
 * - a queue is due when `maxBatchSize` requests are in it, or `intervalMs` after its first request;
 *   requests are counted, not rows (a request of 3 rows counts 1); a due queue runs at once unless
 *   `maxConcurrentBatches` (default 1) batches of the model are running: it then keeps taking
 *   requests, up to `maxBatchSize`, until one ends (as TF Serving's batch threads), so a busy model
 *   runs fuller batches;
 * - the batch's inputs are concatenated along dimension 0, the model runs once, and every output is
 *   split back by each request's row count (each output's first dimension must be the batch's rows);
 * - when the merged run throws, each request of the batch runs again alone, so only a request that
 *   fails on its own gets an error (its own);
 * - a request that cannot be stacked (a scalar input, inputs with different first dimensions) runs alone.
 * A model whose inputs have a fixed first dimension F (F ≥ maxBatchSize, see `checkBatchDimension`)
 * is shown with that dimension dynamic (`-1`): requests of up to F rows are accepted, a batch holds at
 * most F rows, and it is padded with zeros to F rows before the run (the padding's outputs are
 * dropped); a request of more than F rows gets `HttpError(400)`.
 */
export function batchRunnable(model: RunnableModel, options: TensorBatchOptions): RunnableModel {
  return new BatchedModel(model, options);
}

interface Entry {
  readonly inputs: readonly TensorData[];
  readonly rows: number;
  readonly resolve: (out: TensorData[]) => void;
  readonly reject: (err: unknown) => void;
}

interface Queue {
  readonly key: string;
  readonly entries: Entry[];
  rows: number;
  cancel: (() => void) | undefined;
  /** Full or past its interval: waits for a run slot (still open for requests unless full). */
  due: boolean;
}

class BatchedModel implements RunnableModel {
  readonly inputs: readonly TensorSignature[];
  readonly outputs: readonly TensorSignature[];
  readonly info: Readonly<Record<string, unknown>>;
  /** Queues still taking requests, by batch key. */
  private readonly open = new Map<string, Queue>();
  /** Due queues waiting for a run slot, oldest first. */
  private readonly waiting: Queue[] = [];
  private running = 0;
  private readonly maxRunning: number;
  private readonly scheduler: BatchScheduler;
  /** Fixed first dimension every batch is padded to; undefined for a dynamic batch dimension. */
  private readonly padTo: number | undefined;
  /** False once an output could not be split by rows: requests then run alone. */
  private splittable = true;

  constructor(
    private readonly model: RunnableModel,
    private readonly options: TensorBatchOptions,
  ) {
    this.scheduler = options.scheduler ?? timerScheduler;
    this.maxRunning = options.maxConcurrentBatches ?? 1;
    const fixed = model.inputs.map((s) => s.shape[0]).find((d) => d !== undefined && !isDynamicDim(d));
    this.padTo = typeof fixed === 'number' ? fixed : undefined;
    const dynamicFirst = (sigs: readonly TensorSignature[]): TensorSignature[] =>
      sigs.map((s) => (this.padTo !== undefined && s.shape[0] === this.padTo ? { ...s, shape: [-1, ...s.shape.slice(1)] } : s));
    this.inputs = dynamicFirst(model.inputs);
    this.outputs = dynamicFirst(model.outputs);
    this.info = {
      ...model.info,
      serverSideBatching: { maxBatchSize: options.maxBatchSize, batchIntervalMs: options.intervalMs, ...(this.padTo !== undefined ? { paddedTo: this.padTo } : {}) },
    };
  }

  run(inputs: readonly TensorData[]): Promise<TensorData[]> {
    const rows = stackableRows(inputs);
    if (this.padTo !== undefined) {
      if (rows === undefined) return Promise.reject(new HttpError(400, `input "${inputs[0]?.name}": every input needs the same number of rows along the first dimension`));
      if (rows > this.padTo) {
        return Promise.reject(new HttpError(400, `input "${inputs[0].name}": at most ${this.padTo} rows per request (the model's fixed batch dimension), got ${rows}`));
      }
    } else if (rows === undefined || !this.splittable) {
      this.options.onBatch?.(1);
      return this.model.run(inputs);
    }
    return new Promise<TensorData[]>((resolve, reject) => this.enqueue(batchKey(inputs), { inputs, rows, resolve, reject }));
  }

  release(): Promise<void> {
    return this.model.release();
  }

  private enqueue(key: string, entry: Entry): void {
    let q = this.open.get(key);
    // A padded batch holds at most padTo rows: one that would overflow is closed, and this one starts the next.
    if (q && this.padTo !== undefined && q.rows + entry.rows > this.padTo) {
      this.close(q);
      q = undefined;
    }
    if (!q) {
      const fresh: Queue = { key, entries: [], rows: 0, cancel: undefined, due: false };
      fresh.cancel = this.scheduler(() => this.markDue(fresh), this.options.intervalMs);
      this.open.set(key, fresh);
      q = fresh;
    }
    q.entries.push(entry);
    q.rows += entry.rows;
    if (q.entries.length >= this.options.maxBatchSize) this.close(q);
  }

  /** `q` takes no more requests (full, or padding would overflow): due now. */
  private close(q: Queue): void {
    if (this.open.get(q.key) === q) this.open.delete(q.key);
    this.markDue(q);
  }

  private markDue(q: Queue): void {
    if (q.due) return;
    q.due = true;
    q.cancel?.();
    this.waiting.push(q);
    this.pump();
  }

  /** Starts due queues while run slots are free. */
  private pump(): void {
    while (this.running < this.maxRunning && this.waiting.length > 0) {
      const q = this.waiting.shift()!;
      if (this.open.get(q.key) === q) this.open.delete(q.key);
      this.running++;
      void this.execute(q.entries).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  private async execute(entries: readonly Entry[]): Promise<void> {
    this.options.onBatch?.(entries.length);
    let outputs: TensorData[][];
    try {
      outputs = await this.runMerged(entries);
    } catch (err) {
      if (entries.length === 1) {
        entries[0].reject(err);
        return;
      }
      // One bad request must not fail the others: each runs again alone and gets its own answer.
      await Promise.all(entries.map((e) => this.runMerged([e]).then((o) => e.resolve(o[0]), e.reject)));
      return;
    }
    entries.forEach((e, i) => e.resolve(outputs[i]));
  }

  /** Runs `entries` as one model run; returns each entry's outputs. */
  private async runMerged(entries: readonly Entry[]): Promise<TensorData[][]> {
    if (entries.length === 1 && this.padTo === undefined) return [await this.model.run(entries[0].inputs)];
    const total = entries.reduce((n, e) => n + e.rows, 0);
    const runRows = this.padTo ?? total;
    const merged = entries[0].inputs.map((first, k) => concatRows(first, entries.map((e) => e.inputs[k]), runRows));
    const out = await this.model.run(merged);
    const bad = out.find((t) => t.shape.length === 0 || t.shape[0] !== runRows);
    if (bad) {
      const message = `${this.options.label}: output "${bad.name}" has shape ${formatShape(bad.shape)} for a batch of ${runRows} rows, so it cannot be split back by request`;
      if (this.padTo !== undefined) throw new PredictorError(`${message}; server-side batching needs every output to have the batch as its first dimension`, { code: 'ENG_PREDICTOR_RUN' });
      if (this.splittable) {
        this.splittable = false;
        this.options.log?.warn({ model: this.options.label, output: bad.name, shape: bad.shape }, 'outputs cannot be split by rows: server-side batching is off for this model');
      }
      throw new PredictorError(message, { code: 'ENG_PREDICTOR_RUN' });
    }
    const result: TensorData[][] = entries.map(() => []);
    for (const t of out) {
      const per = t.data.length / runRows;
      let row = 0;
      entries.forEach((e, i) => {
        result[i].push({ name: t.name, dtype: t.dtype, shape: [e.rows, ...t.shape.slice(1)], data: t.data.slice(row * per, (row + e.rows) * per) as TensorValues });
        row += e.rows;
      });
    }
    return result;
  }
}

/** Rows along dimension 0 shared by every input, or undefined when they cannot be stacked (a scalar, or differing first dimensions). */
function stackableRows(inputs: readonly TensorData[]): number | undefined {
  if (inputs.length === 0) return undefined;
  const rows = inputs[0].shape[0];
  if (rows === undefined) return undefined;
  for (const t of inputs) if (t.shape.length === 0 || t.shape[0] !== rows) return undefined;
  return rows;
}

/** Requests with the same key can be stacked: same input names, dtypes and dimensions after the first. */
function batchKey(inputs: readonly TensorData[]): string {
  let key = '';
  for (const t of inputs) key += `${t.name}\u0000${t.dtype}\u0000${t.shape.slice(1).join(',')}\u0001`;
  return key;
}

/** Stacks `parts` (same dtype and inner dims) along dimension 0 into `rows` rows; rows past the parts' are zeros (padding). */
function concatRows(first: TensorData, parts: readonly TensorData[], rows: number): TensorData {
  const inner = first.shape.slice(1);
  const per = inner.reduce((a, b) => a * b, 1);
  const shape = [rows, ...inner];
  if (Array.isArray(first.data)) {
    const out: string[] = [];
    for (const p of parts) for (const s of p.data as string[]) out.push(s);
    while (out.length < rows * per) out.push('');
    return { name: first.name, dtype: first.dtype, shape, data: out };
  }
  const Ctor = first.data.constructor as new (n: number) => Exclude<TensorValues, string[]>;
  const out = new Ctor(rows * per);
  let o = 0;
  for (const p of parts) {
    (out as Float32Array).set(p.data as Float32Array, o);
    o += p.data.length;
  }
  return { name: first.name, dtype: first.dtype, shape, data: out };
}
