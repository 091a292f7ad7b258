import { HttpError, PredictorError, WORKER_LOST_CODE } from '../../core/errors.js';
import type { Logger } from '../../core/ports/logger.js';
import type { BackendPredictArgs, LoadedPredictor, ModelStats, PredictorHost } from '../../core/ports/predictor-backend.js';
import type { TensorModelClient } from '../../core/ports/model-runtime.js';
import type { ModelChange, ModelDirectory } from '../../core/predictor/model-directory.js';
import { backoffDelayMs } from '../../core/backoff.js';
import { logDebugStage, type DebugStage } from '../../core/predictor/debug-stage.js';
import { predictorResponse, type FormFile } from '../../core/predictor/predictor-contract.js';
import { tensorFromWire, tensorToWire, type BridgeFrame, type WireTensor } from './bridge-protocol.js';
import { PythonWorker, describeWorkerExit, type PythonWorkerOptions, type WorkerExit, type WorkerModelStats } from './python-worker.js';

export interface PythonPoolOptions {
  readonly processes: number;
  readonly threadsPerProcess: number;
  readonly python: string;
  readonly init: Record<string, unknown>;
  readonly cwd: string;
  readonly env: NodeJS.ProcessEnv;
  readonly log: Logger;
  /** The models the onnx/tensorflow client runs in this replica; absent for python predictors. */
  readonly client?: TensorModelClient;
  /**
   * The models of a PythonPredictor (`python_client`): Python asks it which version a `get_model`
   * means and for local copies; its live-reload changes go to every worker. Closed with the pool.
   */
  readonly models?: ModelDirectory;
  /** `predictor.server_side_batching` is on: `predictBatch` is used and `modelStats` counts batches. */
  readonly batching?: boolean;
  readonly host?: PredictorHost;
  /** Shown in describe(). */
  readonly describe: Record<string, unknown>;
  /** Restart backoff of a worker that died: base and cap (ms). Defaults 500 ms and 30 s. */
  readonly backoffBaseMs?: number;
  readonly backoffMaxMs?: number;
  /** A worker that served this long before dying restarts its backoff from the base (ms, default 60 s). */
  readonly stableAfterMs?: number;
  /** `close()` waits this long for Python to finish its predictions before SIGKILL (ms, default 10 s). */
  readonly stopGraceMs?: number;
}

interface Slot {
  readonly index: number;
  worker: PythonWorker;
  restarts: number;
  startedAt: number;
  /** Handed to a prediction that has not reached the worker yet (so two are never given one thread). */
  reserved: number;
  /** The current worker became ready (a restart that never did keeps backing off). */
  servedOnce: boolean;
  restartTimer?: NodeJS.Timeout;
}

interface Waiter {
  readonly resolve: (slot: Slot) => void;
  readonly reject: (err: Error) => void;
  /** The prediction's cancel state: a waiter whose request was already answered (504) is dropped. */
  readonly cancel?: { readonly cancelled: boolean };
}

const FORM_TYPES = ['application/x-www-form-urlencoded', 'multipart/form-data'];

/**
 * The Python bridge as one `LoadedPredictor`: `processes` worker processes, each running the user's
 * code on `threadsPerProcess` threads. The replica's one admission queue feeds it up to `capacity()`
 * (serving workers × threads) predictions; each goes to the serving worker with the fewest in flight.
 * A prediction that finds every thread busy (a timed-out one still running in Python) waits here.
 *
 * A worker that dies is restarted with backoff (`backoffBaseMs · 2^(n−1)`, capped); its in-flight
 * predictions fail with `PredictorError(WORKER_LOST_CODE)` (503, retry) and the others keep serving.
 * When no worker serves and a replacement fails to start, `host.onDidFail` stops the replica.
 */
/** Longest a disk copy stays pinned for a Python load that never said it finished (a worker that died mid-load). */
const PIN_MAX_MS = 10 * 60_000;

export class PythonWorkerPool implements LoadedPredictor {
  private readonly slots: Slot[] = [];
  /** Disk copies handed to Python's load_model, released by its `unpin` (or after PIN_MAX_MS). */
  private readonly pins = new Map<number, () => void>();
  private pinSeq = 0;
  private readonly waiters: Waiter[] = [];
  private closed = false;
  private readonly log: Logger;
  /** Counters of workers that exited (so the sums stay monotonic across restarts). */
  private retired = { hits: 0, misses: 0, evictions: 0, loads: 0, loadMs: 0 };
  private batches = 0;
  private batchedRequests = 0;
  private stopWatchingModels: (() => void) | undefined;
  /**
   * Model cache and batching counters, summed over the worker processes (each has its own memory
   * cache; the disk cache is the machine's, counted once). Present only with `python_client` models or
   * server-side batching.
   */
  readonly modelStats?: () => ModelStats;
  /**
   * Server-side batching (present with `batching`, i.e. a PythonPredictor with
   * `server_side_batching`): the requests go to one Python thread as one `predict_batch` frame;
   * Python calls `predict` with lists and answers each request (a failed entry is that request's
   * `Error`). Rejects, failing every request, when `predict` raised or did not return one result per
   * request.
   */
  readonly predictBatch?: (batch: readonly BackendPredictArgs[]) => Promise<ReadonlyArray<unknown>>;

  private constructor(private readonly o: PythonPoolOptions) {
    this.log = o.log.child({ component: 'predictor-python/pool' });
    if (o.models || o.batching) this.modelStats = () => this.sumModelStats();
    if (o.batching) this.predictBatch = (batch) => this.runBatch(batch);
    if (o.models) this.stopWatchingModels = o.models.onDidChange((c) => this.onModelChange(c));
  }

  /** The `python_client` models' live tree (absent for other predictors); `poll()` it to reload now. */
  get models(): ModelDirectory | undefined {
    return this.o.models;
  }

  /** Starts every worker; rejects with the first start-up failure (the others are stopped). */
  static async start(o: PythonPoolOptions): Promise<PythonWorkerPool> {
    const pool = new PythonWorkerPool(o);
    for (let i = 0; i < o.processes; i++) pool.slots.push({ index: i, worker: pool.spawn(i), restarts: 0, startedAt: Date.now(), reserved: 0, servedOnce: true });
    try {
      await Promise.all(pool.slots.map((s) => s.worker.ready));
    } catch (err) {
      await pool.close();
      throw err;
    }
    for (const s of pool.slots) pool.watch(s);
    return pool;
  }

  capacity(): number {
    return this.slots.filter((s) => s.worker.serving).length * this.o.threadsPerProcess;
  }

  describe(): Record<string, unknown> {
    const models = this.o.models?.models();
    return {
      ...this.o.describe,
      ...(models ? { models: models.map((m) => ({ name: m.name, versions: m.versions.map((v) => v.version) })) } : {}),
      workers: this.slots.map((s) => ({ pid: s.worker.pid, serving: s.worker.serving, restarts: s.restarts })),
    };
  }

  async predict(args: BackendPredictArgs): Promise<unknown> {
    const slot = await this.acquire(args.cancel);
    slot.reserved--;
    if (args.cancel?.cancelled) {
      // It timed out while waiting for a thread (the replica answered 504): never send it.
      this.drain();
      throw new PredictorError('the prediction timed out before a Python thread was free', { code: WORKER_LOST_CODE });
    }
    const { header, parts } = requestFrame(args, slot.worker.uses);
    const answer = slot.worker.predict(header, parts);
    let frame: BridgeFrame;
    try {
      frame = await answer;
    } finally {
      this.drain();
    }
    return this.answerOf(frame, args);
  }

  /** `predictBatch`: requests already answered (504) are not sent; each gets its own timeout error. */
  private async runBatch(batch: readonly BackendPredictArgs[]): Promise<ReadonlyArray<unknown>> {
    const timedOut = (): Error => new PredictorError('the prediction timed out before a Python thread was free', { code: WORKER_LOST_CODE });
    const slot = await this.acquire();
    slot.reserved--;
    // Cancellation is read once the thread is ours: a request answered meanwhile is left out.
    const sent = batch.map((a) => !a.cancel?.cancelled);
    if (!sent.some(Boolean)) {
      this.drain();
      return batch.map(timedOut);
    }
    const parts: Uint8Array[] = [];
    const uses = slot.worker.uses;
    const items = batch.filter((_, i) => sent[i]).map((a) => requestItem(a, uses, parts));
    this.batches++;
    this.batchedRequests += items.length;
    let frame: BridgeFrame;
    try {
      frame = await slot.worker.predict({ op: 'predict_batch', id: 0, items }, parts);
    } finally {
      this.drain();
    }
    if (frame.header.op === 'error') this.answerOf(frame, batch[0]);
    const answers = frame.header.items as Record<string, unknown>[] | undefined;
    if (!Array.isArray(answers) || answers.length !== items.length) {
      throw new PredictorError(`the Python bridge answered ${Array.isArray(answers) ? answers.length : 'no'} results for a batch of ${items.length}`, { code: 'ENG_PREDICTOR_BATCH' });
    }
    let k = 0;
    return batch.map((args, i) => {
      if (!sent[i]) return timedOut();
      const a = answers[k++];
      try {
        return this.answerOf({ header: { ...a, op: a.ok ? 'result' : 'error' }, parts: a.ok ? [frame.parts[a.buf as number]] : [] }, args);
      } catch (err) {
        return err as Error;
      }
    });
  }

  private sumModelStats(): ModelStats {
    const sum = { ...this.retired, inMemory: 0 };
    for (const s of this.slots) {
      const w = s.worker.modelStats;
      if (!w) continue;
      sum.hits += w.hits;
      sum.misses += w.misses;
      sum.evictions += w.evictions;
      sum.loads += w.loads;
      sum.loadMs += w.loadMs;
      if (s.worker.alive) sum.inMemory += w.inMemory;
    }
    const dir = this.o.models;
    return {
      hits: sum.hits,
      misses: sum.misses,
      evictions: sum.evictions,
      diskEvictions: dir?.diskEvictions() ?? 0,
      loads: sum.loads,
      loadMsSum: Math.round(sum.loadMs * 1000) / 1000,
      inMemory: sum.inMemory,
      onDisk: dir?.onDiskCount() ?? 0,
      ...(this.o.batching ? { batches: this.batches, batchedRequests: this.batchedRequests } : {}),
    };
  }

  /** Keeps a dead worker's counters (its replacement starts from zero). */
  private retire(worker: PythonWorker): void {
    const w: WorkerModelStats | undefined = worker.modelStats;
    if (!w) return;
    this.retired = {
      hits: this.retired.hits + w.hits,
      misses: this.retired.misses + w.misses,
      evictions: this.retired.evictions + w.evictions,
      loads: this.retired.loads + w.loads,
      loadMs: this.retired.loadMs + w.loadMs,
    };
    worker.modelStats = undefined;
  }

  /** Live reload: every worker hears of a version added or removed (it drops removed ones from memory). */
  private onModelChange(c: ModelChange): void {
    for (const s of this.slots) s.worker.notify({ op: 'models_changed', changes: [{ model: c.model, version: c.version, change: c.change }] });
  }

  /** Stops every worker (Python finishes what it runs, SIGKILL after the grace). */
  async close(): Promise<void> {
    this.closed = true;
    this.stopWatchingModels?.();
    for (const w of this.waiters.splice(0)) w.reject(new PredictorError('the predictor is closing', { code: WORKER_LOST_CODE }));
    await Promise.all(
      this.slots.map(async (s) => {
        clearTimeout(s.restartTimer);
        await s.worker.stop(this.o.stopGraceMs ?? 10_000);
      }),
    );
    await this.o.client?.close();
    this.o.models?.close();
  }

  private spawn(index: number): PythonWorker {
    const options: PythonWorkerOptions = {
      python: this.o.python,
      init: { ...this.o.init, worker: index },
      cwd: this.o.cwd,
      env: this.o.env,
      log: this.o.log.child({ worker: index }),
      onModelCall: (frame) => this.runModel(frame),
      onUnpin: (pin) => this.unpin(pin),
    };
    return new PythonWorker(options);
  }

  /** Restarts a slot's worker after it dies, with backoff; reports capacity changes and total failure. */
  private watch(slot: Slot): void {
    const worker = slot.worker;
    void worker.exited.then((exit) => {
      this.retire(worker);
      if (this.closed || slot.worker !== worker) return;
      const lived = Date.now() - slot.startedAt;
      if (slot.servedOnce && lived >= (this.o.stableAfterMs ?? 60_000)) slot.restarts = 0;
      slot.servedOnce = false;
      slot.restarts++;
      const delay = backoffDelayMs(slot.restarts, this.o.backoffBaseMs ?? 500, this.o.backoffMaxMs ?? 30_000);
      this.log.warn({ worker: slot.index, pid: worker.pid, reason: describeWorkerExit(exit), restartInMs: delay }, 'python worker exited; restarting it');
      this.o.host?.onDidChangeCapacity();
      this.failWaitersIfNoneServing(exit);
      slot.restartTimer = setTimeout(() => this.restart(slot), delay);
    });
  }

  private restart(slot: Slot): void {
    if (this.closed) return;
    slot.worker = this.spawn(slot.index);
    slot.startedAt = Date.now();
    slot.reserved = 0;
    this.watch(slot);
    slot.worker.ready.then(
      () => {
        slot.servedOnce = true;
        this.log.info({ worker: slot.index, pid: slot.worker.pid }, 'python worker restarted');
        this.o.host?.onDidChangeCapacity();
        this.drain();
      },
      (err: Error) => {
        if (this.closed) return;
        // The code cannot start any more (a file changed, a dependency broke): with nobody serving, the replica stops.
        if (!this.slots.some((s) => s.worker.serving)) this.o.host?.onDidFail(err);
        else this.log.error({ err, worker: slot.index }, 'python worker failed to restart; trying again');
      },
    );
  }

  private failWaitersIfNoneServing(exit: WorkerExit): void {
    if (this.slots.some((s) => s.worker.serving)) return;
    for (const w of this.waiters.splice(0)) {
      w.reject(new PredictorError(`no Python worker is running (the last one exited: ${describeWorkerExit(exit)}); retry`, { code: WORKER_LOST_CODE }));
    }
  }

  /** The serving worker with the fewest in flight and a free thread; else waits for one. */
  private acquire(cancel?: { readonly cancelled: boolean }): Promise<Slot> {
    const slot = this.pick();
    if (slot) {
      slot.reserved++;
      return Promise.resolve(slot);
    }
    if (this.closed) return Promise.reject(new PredictorError('the predictor is closing', { code: WORKER_LOST_CODE }));
    if (!this.slots.some((s) => s.worker.serving)) {
      return Promise.reject(new PredictorError('no Python worker is running (restarting); retry', { code: WORKER_LOST_CODE }));
    }
    this.dropCancelledWaiters();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject, cancel }));
  }

  /**
   * Rejects the waiters whose request timed out meanwhile (the replica answered 504): behind a stuck
   * prediction they would otherwise pile up, each holding its request body, until a thread frees.
   */
  private dropCancelledWaiters(): void {
    let kept = 0;
    for (const w of this.waiters) {
      if (w.cancel?.cancelled) w.reject(new PredictorError('the prediction timed out before a Python thread was free', { code: WORKER_LOST_CODE }));
      else this.waiters[kept++] = w;
    }
    this.waiters.length = kept;
  }

  private pick(): Slot | undefined {
    let best: Slot | undefined;
    for (const s of this.slots) {
      const w = s.worker;
      const busy = w.inFlight + s.reserved;
      if (!w.serving || busy >= this.o.threadsPerProcess) continue;
      if (!best || busy < best.worker.inFlight + best.reserved) best = s;
    }
    return best;
  }

  private drain(): void {
    this.dropCancelledWaiters();
    while (this.waiters.length > 0) {
      const slot = this.pick();
      if (!slot) return;
      // Reserve the thread at once so the next waiter does not pick the same one.
      slot.reserved++;
      this.waiters.shift()!.resolve(slot);
    }
  }

  /** Python's answer as what `predict` returns: a ready-encoded response, or a thrown error. */
  private answerOf(frame: BridgeFrame, args: BackendPredictArgs): unknown {
    const h = frame.header;
    if (h.op === 'error') {
      if (h.kind === 'http') throw new HttpError(h.status as number, String(h.message ?? ''), { headers: (h.headers as Record<string, string>) ?? {} });
      const err = new Error(String(h.message ?? ''));
      err.name = String(h.name ?? 'Exception');
      // The Python traceback is what the log shows under the request id.
      err.stack = String(h.traceback ?? `${err.name}: ${err.message}`);
      throw err;
    }
    if (args.debug && Array.isArray(h.stages)) for (const [stage, value] of h.stages as [string, unknown][]) logDebugStage(args.log, stage as DebugStage, value);
    const headers: Record<string, string> = {};
    for (const [k, v] of (h.headers as [string, string][]) ?? []) headers[k] = v;
    const body = frame.parts[0] ?? Buffer.alloc(0);
    return { ...predictorResponse({ status: h.status as number, headers, body }), ...(h.monitored !== undefined ? { monitored: h.monitored as string | number | null } : {}) };
  }

  /**
   * `resolve_model` {model, version, local}: the version `python_client.get_model(model, version)`
   * means, by the directory's rules (its HttpError 400/404 becomes the answer's status); with `local`
   * also the version's local path (downloaded into the machine cache first when missing).
   */
  private async resolveModel(h: Record<string, unknown>): Promise<Record<string, unknown>> {
    const dir = this.o.models;
    if (!dir) return { ok: false, status: 500, message: 'this predictor has no models (set multi_model_reloading in the API spec)' };
    try {
      const name = typeof h.model === 'string' ? h.model : null;
      const version = typeof h.version === 'string' || typeof h.version === 'number' ? h.version : null;
      const sel = dir.resolve(name, version);
      const out: Record<string, unknown> = { ok: true, name: sel.name, version: sel.version, timestamp: sel.ref.timestamp };
      if (h.local === true) {
        // Pinned until Python's load_model is done with the files (its `unpin`), or a bound on it.
        const unpin = dir.pin(sel.ref);
        try {
          const local = await dir.local(sel.ref);
          out.path = local.path;
          out.bytes = local.bytes;
        } catch (err) {
          unpin();
          throw err;
        }
        const pin = ++this.pinSeq;
        const timer = setTimeout(() => this.unpin(pin), PIN_MAX_MS);
        timer.unref();
        this.pins.set(pin, () => {
          clearTimeout(timer);
          unpin();
        });
        out.pin = pin;
      }
      return out;
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 500;
      return { ok: false, status, message: (err as Error)?.message ?? String(err) };
    }
  }

  /** `unpin` from Python: `load_model` is done with a version's files. */
  unpin(pin: unknown): void {
    if (typeof pin !== 'number') return;
    const release = this.pins.get(pin);
    this.pins.delete(pin);
    release?.();
  }

  /** `list_models`: every model and version served now (`python_client.metadata`, and the preload without a cache). */
  private listModels(): Record<string, unknown> {
    const dir = this.o.models;
    if (!dir) return { ok: false, status: 500, message: 'this predictor has no models' };
    return { ok: true, models: dir.models().map((m) => ({ name: m.name, versions: m.versions.map((v) => ({ version: v.version, timestamp: v.timestamp })) })) };
  }

  /** A request from Python: `model_call` (run a model), `resolve_model` / `list_models` (`python_client`). */
  private async runModel(frame: BridgeFrame): Promise<{ header: Record<string, unknown>; parts: Uint8Array[] }> {
    const h = frame.header;
    if (h.op === 'resolve_model') return { header: await this.resolveModel(h), parts: [] };
    if (h.op === 'list_models') return { header: this.listModels(), parts: [] };
    const client = this.o.client;
    if (!client) return { header: { ok: false, message: 'this predictor has no model client' }, parts: [] };
    if (h.op === 'model_signature') {
      // A model not loaded yet (model caching): its signature is known once it is.
      try {
        const version = h.version === 'latest' || h.version === undefined ? undefined : String(h.version);
        const m = client.describeModel ? await client.describeModel(h.model as string, version) : client.metadata(h.model as string, version);
        return { header: { ok: true, inputs: m.inputs, outputs: m.outputs }, parts: [] };
      } catch (err) {
        const status = err instanceof HttpError ? err.status : undefined;
        return { header: { ok: false, ...(status ? { status } : {}), message: (err as Error)?.message ?? String(err) }, parts: [] };
      }
    }
    try {
      const inputs = (h.inputs as WireTensor[]).map((t) => tensorFromWire(t, frame.parts));
      const version = h.version === 'latest' || h.version === undefined ? undefined : String(h.version);
      const run = await client.runTensors(inputs, h.model as string, version);
      const parts: Uint8Array[] = [];
      const outputs = run.outputs.map((t) => tensorToWire(t, parts));
      return { header: { ok: true, model: run.model, version: run.version, outputs }, parts };
    } catch (err) {
      const status = err instanceof HttpError ? err.status : undefined;
      return { header: { ok: false, ...(status ? { status } : {}), message: (err as Error)?.message ?? String(err) }, parts: [] };
    }
  }
}

/**
 * The `predict` frame of a request: the payload by kind (raw JSON bytes for Python's json.loads), and
 * the query and headers only when the predictor reads them (`uses`, from the worker's `ready`).
 */
function requestFrame(args: BackendPredictArgs, uses: readonly string[]): { header: Record<string, unknown>; parts: Uint8Array[] } {
  const parts: Uint8Array[] = [];
  const header: Record<string, unknown> = { op: 'predict', id: 0, payload: payloadOf(args, parts), debug: args.debug, rid: args.requestId };
  if (uses.includes('query_params')) header.query = pairsOf(args.query);
  if (uses.includes('headers')) header.headers = pairsOf(args.headers);
  return { header, parts };
}

/** One request of a `predict_batch` frame: as a `predict` frame's fields, its parts appended to the batch's. */
function requestItem(args: BackendPredictArgs, uses: readonly string[], parts: Uint8Array[]): Record<string, unknown> {
  const own: Uint8Array[] = [];
  const payload = payloadOf(args, own);
  const base = parts.length;
  parts.push(...own);
  const shift = (o: Record<string, unknown>): Record<string, unknown> => (typeof o.buf === 'number' ? { ...o, buf: o.buf + base } : o);
  const shifted = payload.kind === 'form' ? { ...payload, fields: (payload.fields as Record<string, unknown>[]).map(shift) } : shift(payload);
  const item: Record<string, unknown> = { payload: shifted, debug: args.debug, rid: args.requestId };
  if (uses.includes('query_params')) item.query = pairsOf(args.query);
  if (uses.includes('headers')) item.headers = pairsOf(args.headers);
  return item;
}

/** `[key, value]` pairs of a multi-valued map (a repeated key gives several pairs). */
function pairsOf(map: Readonly<Record<string, string | string[] | undefined>>): [string, string][] {
  const out: [string, string][] = [];
  for (const k in map) {
    const v = map[k];
    if (v === undefined) continue;
    if (Array.isArray(v)) for (const x of v) out.push([k, x]);
    else out.push([k, v]);
  }
  return out;
}

function payloadOf(args: BackendPredictArgs, parts: Uint8Array[]): Record<string, unknown> {
  const p = args.payload;
  const type = String(args.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (typeof p === 'string') {
    parts.push(Buffer.from(p, 'utf8'));
    return { kind: 'text', buf: 0 };
  }
  if (p instanceof Uint8Array) {
    parts.push(p);
    return { kind: 'bytes', buf: 0 };
  }
  if (FORM_TYPES.includes(type) && p !== null && typeof p === 'object') {
    const fields: Record<string, unknown>[] = [];
    for (const [name, value] of Object.entries(p as Record<string, unknown>)) {
      for (const v of Array.isArray(value) ? value : [value]) {
        if (typeof v === 'string') fields.push({ name, value: v });
        else {
          const f = v as FormFile;
          parts.push(f.data);
          fields.push({ name, filename: f.filename, content_type: f.contentType, buf: parts.length - 1 });
        }
      }
    }
    return { kind: 'form', fields };
  }
  // JSON: the bytes as received when the replica has them, so Python parses exactly what was sent.
  parts.push(args.body && args.body.byteLength > 0 ? args.body : Buffer.from(JSON.stringify(p ?? null), 'utf8'));
  return { kind: 'json', buf: 0 };
}
